/* `xvlm serve`: the model behind an HTTP endpoint (libmicrohttpd), JSON in and
 * out, with dynamic micro-batching and the web page (docs/serve.md).
 *
 * The server is a client of the public API (xvlm.h): the same calls as the
 * `match`, `search` and `ground` commands, so it gives their numbers. */
#ifndef XV_SERVE_SERVE_H
#define XV_SERVE_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "xvlm.h"

typedef struct {
    const char *host;         /* address to listen on (default 127.0.0.1) */
    int port;                 /* 0: any free port (printed) */
    const char *index;        /* an index of this model for text -> image search (NULL: none) */
    const char *image_root;   /* images named by path resolve inside it (NULL: paths refused) */
    const char *api_key_file; /* first line: the key /v1/... and /metrics need (NULL: no key) */
    int workers;              /* model threads, each with its own context (default 1) */
    int batch;                /* most requests of one kind run together (1: no micro-batching) */
    int batch_wait_ms;        /* how long a worker waits for a batch to fill */
    int queue;                /* requests waiting at most; more get 503 */
    int timeout_s;            /* a request's time limit; idle connections are closed after it */
    int max_connections;
    int64_t max_body;         /* request body bytes */
    int64_t max_pixels;       /* width x height of an image, checked from its header before decoding */
    int max_text_bytes;       /* bytes of one text */
    int max_texts;            /* texts in one request */
} xv_serve_opts;

xv_serve_opts xv_serve_opts_default(void);

/* Serves until SIGTERM or SIGINT, then finishes the requests in flight and
 * returns 0 (1 when it could not start; the reason is printed). Prints
 * "xvlm serve: listening on http://HOST:PORT/" on stdout once it accepts. */
int xv_serve_run(const xvlm_model *m, const xv_serve_opts *o);

#endif
