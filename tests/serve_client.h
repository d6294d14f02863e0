/* A small HTTP/1.1 client over loopback sockets, and a running `xvlm serve`
 * for tests and the load tool: the server is a child process answering on a
 * port it picked (--port 0). */
#ifndef XV_TEST_SERVE_CLIENT_H
#define XV_TEST_SERVE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    int status;  /* the HTTP status; 0 when the connection closed without an answer */
    char *body;  /* NUL-terminated (never NULL after a call), free with xv_http_response_free */
    size_t len;
    char *headers;
} xv_http_response;

/* A socket connected to 127.0.0.1:port, or -1. */
int xv_http_connect(int port);
/* One request on a fresh connection (Connection: close): `headers` are extra
 * header lines, each ending in \r\n (NULL: none); Content-Length is added for
 * a body. Returns 0 when an answer (or a close) was read, -1 when the
 * connection failed. */
int xv_http(int port, const char *method, const char *path, const char *headers, const void *body, size_t len,
            xv_http_response *out);
/* POST a JSON text. */
int xv_http_post_json(int port, const char *path, const char *json, xv_http_response *out);
void xv_http_response_free(xv_http_response *r);

typedef struct {
    pid_t pid;
    int port;
    int out_fd; /* the server's stdout */
} xv_test_server;

/* Start `$XV_BIN serve --port 0 ARGS` (ARGS quoted by the caller) and wait
 * (at most 60 s) for it to print the port it listens on. */
bool xv_test_server_start(xv_test_server *s, const char *args);
/* SIGTERM, then its exit status (-1 if it died of a signal). */
int xv_test_server_stop(xv_test_server *s);

/* ---- a served world for tests: a tiny random model, images, an index ---- */
typedef struct {
    char dir[256];         /* scratch folder holding it all */
    char model[300];       /* model folder */
    char images[300];      /* the image root: img0.jpg ... */
    char index[300];       /* an f32-token index of those images */
    int n_images;
} xv_test_serve_world;

/* Makes `n` test images of varied sizes and indexes them with `xvlm index`
 * (false, with a failed CHECK, when something cannot be made). */
bool xv_test_serve_world_make(xv_test_serve_world *w, const char *stem, int n);
/* The usual server options for it: --model, --index, --image-root, --threads 1. */
void xv_test_serve_world_args(const xv_test_serve_world *w, char *out, size_t cap);
#endif
