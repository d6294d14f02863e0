/* Counters and histograms behind GET /metrics (metrics.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

/* Routes counted separately; anything else counts as "other". */
static const char *const routes[] = {"/v1/embed", "/v1/search", "/v1/match", "/v1/ground", "/health",
                                     "/metrics",  "static",     "other"};
enum { N_ROUTES = sizeof routes / sizeof *routes };
/* Upper bounds of the latency buckets in seconds, and of the batch sizes. */
static const double latency_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
enum { N_LAT = sizeof latency_le / sizeof *latency_le };
static const int batch_le[] = {1, 2, 4, 8, 16, 32, 64};
enum { N_BATCH = sizeof batch_le / sizeof *batch_le };

struct xv_metrics {
    pthread_mutex_t lock;
    unsigned long long requests[N_ROUTES], errors_4xx[N_ROUTES], errors_5xx[N_ROUTES];
    unsigned long long latency[N_LAT + 1]; /* per bucket; the last is +Inf */
    double latency_sum;
    unsigned long long batches[N_BATCH + 1];
    unsigned long long batch_jobs;
};

xv_metrics *xv_metrics_new(void) {
    xv_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->lock, NULL);
    return m;
}

void xv_metrics_free(xv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int route_index(const char *route) {
    for (int i = 0; i < N_ROUTES - 1; i++)
        if (!strcmp(route, routes[i])) return i;
    return N_ROUTES - 1;
}

void xv_metrics_request(xv_metrics *m, const char *route, int status, double seconds) {
    const int r = route_index(route);
    int b = 0;
    while (b < N_LAT && seconds > latency_le[b]) b++;
    pthread_mutex_lock(&m->lock);
    m->requests[r]++;
    if (status >= 400 && status < 500) m->errors_4xx[r]++;
    if (status >= 500) m->errors_5xx[r]++;
    m->latency[b]++;
    m->latency_sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

void xv_metrics_batch(xv_metrics *m, int n) {
    int b = 0;
    while (b < N_BATCH && n > batch_le[b]) b++;
    pthread_mutex_lock(&m->lock);
    m->batches[b]++;
    m->batch_jobs += (unsigned long long)n;
    pthread_mutex_unlock(&m->lock);
}

/* A growing text buffer; `failed` once an allocation fails. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} text_buf;

__attribute__((format(printf, 2, 3))) static void put(text_buf *t, const char *fmt, ...) {
    for (int tries = 0; tries < 2 && !t->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) t->failed = 1;
        else if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        } else {
            size_t cap = (t->cap + (size_t)n + 1) * 2;
            char *s = realloc(t->s, cap);
            if (!s) t->failed = 1;
            else t->s = s, t->cap = cap;
        }
    }
}

static long resident_bytes(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

char *xv_metrics_text(xv_metrics *m, int queue_depth, int in_flight) {
    text_buf t = {0};
    pthread_mutex_lock(&m->lock);
    put(&t, "# HELP xvlm_requests_total Requests answered, by route.\n# TYPE xvlm_requests_total counter\n");
    for (int r = 0; r < N_ROUTES; r++) put(&t, "xvlm_requests_total{route=\"%s\"} %llu\n", routes[r], m->requests[r]);
    put(&t, "# HELP xvlm_errors_total Requests answered with an error status, by route and class.\n"
            "# TYPE xvlm_errors_total counter\n");
    for (int r = 0; r < N_ROUTES; r++) {
        put(&t, "xvlm_errors_total{route=\"%s\",class=\"4xx\"} %llu\n", routes[r], m->errors_4xx[r]);
        put(&t, "xvlm_errors_total{route=\"%s\",class=\"5xx\"} %llu\n", routes[r], m->errors_5xx[r]);
    }
    put(&t, "# HELP xvlm_request_seconds Time from a request's arrival to its answer.\n"
            "# TYPE xvlm_request_seconds histogram\n");
    unsigned long long cum = 0;
    for (int b = 0; b <= N_LAT; b++) {
        cum += m->latency[b];
        if (b < N_LAT) put(&t, "xvlm_request_seconds_bucket{le=\"%g\"} %llu\n", latency_le[b], cum);
        else put(&t, "xvlm_request_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    put(&t, "xvlm_request_seconds_sum %.6f\nxvlm_request_seconds_count %llu\n", m->latency_sum, cum);
    put(&t, "# HELP xvlm_batch_size Requests run through the model together.\n# TYPE xvlm_batch_size histogram\n");
    cum = 0;
    for (int b = 0; b <= N_BATCH; b++) {
        cum += m->batches[b];
        if (b < N_BATCH) put(&t, "xvlm_batch_size_bucket{le=\"%d\"} %llu\n", batch_le[b], cum);
        else put(&t, "xvlm_batch_size_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    put(&t, "xvlm_batch_size_sum %llu\nxvlm_batch_size_count %llu\n", m->batch_jobs, cum);
    pthread_mutex_unlock(&m->lock);
    put(&t, "# HELP xvlm_queue_depth Requests waiting for a worker.\n# TYPE xvlm_queue_depth gauge\n"
            "xvlm_queue_depth %d\n", queue_depth);
    put(&t, "# HELP xvlm_requests_in_flight Requests being received, queued or answered.\n"
            "# TYPE xvlm_requests_in_flight gauge\nxvlm_requests_in_flight %d\n", in_flight);
    put(&t, "# HELP xvlm_resident_memory_bytes Resident memory of the server process.\n"
            "# TYPE xvlm_resident_memory_bytes gauge\nxvlm_resident_memory_bytes %ld\n", resident_bytes());
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
