/* What the server counts, served as Prometheus text at GET /metrics:
 * requests and errors per endpoint, request latency and batch size
 * histograms, the queue depth and the process's resident memory. */
#ifndef XV_SERVE_METRICS_H
#define XV_SERVE_METRICS_H

#include <stddef.h>

typedef struct xv_metrics xv_metrics;

xv_metrics *xv_metrics_new(void);
void xv_metrics_free(xv_metrics *m);
/* One answered request: its route ("/v1/match", "static", ...), HTTP status and seconds. */
void xv_metrics_request(xv_metrics *m, const char *route, int status, double seconds);
/* One batch of n jobs run by a worker. */
void xv_metrics_batch(xv_metrics *m, int n);
/* The Prometheus text exposition (malloc'd; NULL when out of memory). */
char *xv_metrics_text(xv_metrics *m, int queue_depth, int in_flight);

#endif
