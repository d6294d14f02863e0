/* The HTTP side of `xvlm serve` on libmicrohttpd (serve.h): routes, request
 * bodies and their limits, the API key, static files, the worker threads and
 * the graceful shutdown. One thread per connection: a request's thread parses
 * it into a job, queues it and waits for a worker's answer. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "form.h"
#include "metrics.h"
#include "request.h"
#include "run.h"
#include "serve.h"
#include "thumbnail.h"
#include "web_assets.h"

xv_serve_opts xv_serve_opts_default(void) {
    return (xv_serve_opts){
        .host = "127.0.0.1",
        .port = 8080,
        .workers = 1,
        .batch = 8,
        .batch_wait_ms = 5,
        .queue = 64,
        .timeout_s = 30,
        .max_connections = 256,
        .max_body = INT64_C(16) << 20,
        .max_pixels = INT64_C(50) << 20,
        .max_text_bytes = 2048,
        .max_texts = 256,
    };
}

typedef struct {
    const xv_serve_opts *o;
    struct MHD_Daemon *daemon;
    xv_queue *queue;
    xv_metrics *metrics;
    xv_run_env env;
    xv_request_limits limits;
    char *api_key; /* NULL: no key needed */
    atomic_int in_flight;
} server;

/* A request, from its first header to its answer (MHD's per-connection pointer). */
typedef struct {
    double started;
    const char *route;
    int status; /* the answer's, for the metrics */
    bool answered;
    bool arriving; /* counted by xv_queue_arriving until queued or gone */
    char *body;
    size_t len, cap;
    xv_form form; /* a multipart/form-data body, parsed */
} request;

static const char *route_of(const char *url) {
    static const char *const api[] = {"/v1/embed", "/v1/search", "/v1/match", "/v1/ground", "/health", "/metrics"};
    for (size_t i = 0; i < sizeof api / sizeof *api; i++)
        if (!strcmp(url, api[i])) return api[i];
    return strncmp(url, "/v1/", 4) ? "static" : "other";
}

/* ---- answers ---- */

static enum MHD_Result reply(request *r, struct MHD_Connection *c, int status, const char *type, const void *data,
                             size_t len, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->answered = true;
    return ok;
}

/* Takes a malloc'd JSON body (NULL: out of memory). */
static enum MHD_Result reply_json(request *r, struct MHD_Connection *c, int status, char *json) {
    static const char no_memory[] = "{\"error\": {\"code\": 503, \"message\": \"out of memory\"}}";
    if (!json) return reply(r, c, 503, "application/json", no_memory, sizeof no_memory - 1, MHD_RESPMEM_PERSISTENT);
    return reply(r, c, status, "application/json", json, strlen(json), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result reply_error(request *r, struct MHD_Connection *c, int status, const char *message) {
    return reply_json(r, c, status, xv_error_json(status, message));
}

/* ---- the API key ---- */

/* Equal strings, in a time that depends on the key's length only. */
static bool same_key(const char *given, const char *key) {
    const size_t gl = strlen(given), kl = strlen(key);
    unsigned diff = (unsigned)(gl ^ kl);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(gl ? given[i % gl] : 0) ^ (unsigned char)key[i];
    return diff == 0;
}

static bool authorised(const server *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h && auth && !strncmp(auth, "Bearer ", 7)) h = auth + 7;
    return h && same_key(h, s->api_key);
}

/* ---- /v1/... ---- */

static xv_job_kind kind_of(const char *route) {
    if (!strcmp(route, "/v1/embed")) return XV_JOB_EMBED;
    if (!strcmp(route, "/v1/search")) return XV_JOB_SEARCH_TEXT;
    if (!strcmp(route, "/v1/match")) return XV_JOB_MATCH;
    return XV_JOB_GROUND;
}

static enum MHD_Result model_request(server *s, struct MHD_Connection *c, request *r) {
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const bool multipart = type && !strncasecmp(type, "multipart/form-data", 19);
    /* Anything but a form is read as JSON, whatever its Content-Type says
     * (curl -d sends application/x-www-form-urlencoded). */
    cJSON *fields = NULL;
    if (multipart) {
        int bad = xv_form_parse(c, r->body, r->len, s->o->max_body, &r->form, &fields);
        if (bad) return reply_error(r, c, bad, bad == 413 ? "the uploaded image is larger than the body limit"
                                               : bad == 400 ? "malformed multipart/form-data body"
                                                            : "out of memory");
    } else {
        const char *end = NULL;
        fields = cJSON_ParseWithLengthOpts(r->body ? r->body : "", r->len, &end, false);
        if (!fields) {
            char msg[160];
            snprintf(msg, sizeof msg, "invalid JSON at byte %td of the body", end && r->body ? end - r->body : (ptrdiff_t)0);
            return reply_error(r, c, 400, msg);
        }
    }
    xv_job *job = xv_job_new(kind_of(r->route));
    if (!job) {
        cJSON_Delete(fields);
        return reply_error(r, c, 503, "out of memory");
    }
    xv_request_error err = {0};
    int bad = xv_request_to_job(fields, r->form.upload, r->form.upload_len, &s->limits, job, &err);
    cJSON_Delete(fields);
    enum MHD_Result ok;
    if (bad) {
        ok = reply_error(r, c, err.status, err.message);
    } else {
        r->arriving = false; /* the push takes it off the arriving count */
        if (!xv_queue_push(s->queue, job)) {
            ok = reply_error(r, c, 503, "the server is busy (request queue full); try again");
        } else if (!xv_queue_wait(s->queue, job, s->o->timeout_s)) {
            ok = reply_error(r, c, 503, "the request took longer than the server's time limit");
        } else {
            ok = reply_json(r, c, job->status, job->body);
            job->body = NULL;
        }
    }
    xv_queue_release(s->queue, job);
    return ok;
}

/* ---- GET ---- */

static enum MHD_Result health(server *s, struct MHD_Connection *c, request *r) {
    xvlm_model_info info;
    xvlm_model_get_info(s->env.model, &info);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "model", info.id);
    cJSON_AddNumberToObject(o, "image_res", info.image_res);
    cJSON_AddNumberToObject(o, "index_images", s->env.index ? (double)xvlm_images_count(s->env.index) : 0);
    cJSON_AddBoolToObject(o, "api_key", s->api_key != NULL);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return reply_json(r, c, 200, json);
}

static enum MHD_Result metrics(server *s, struct MHD_Connection *c, request *r) {
    char *text = xv_metrics_text(s->metrics, xv_queue_depth(s->queue), atomic_load(&s->in_flight));
    if (!text) return reply_error(r, c, 503, "out of memory");
    return reply(r, c, 200, "text/plain; version=0.0.4", text, strlen(text), MHD_RESPMEM_MUST_FREE);
}

/* GET /images/PATH[?size=N]: an image file under the image root (result
 * pictures), or a smaller JPEG copy of it. */
static enum MHD_Result image_file(server *s, struct MHD_Connection *c, request *r, const char *name) {
    if (!s->limits.image_root) return reply_error(r, c, 404, "the server has no --image-root");
    const xv_fs_root policy = {.root = s->limits.image_root, .allow_outside_root = false};
    char *path = NULL;
    xv_fs_name_verdict v = xv_fs_resolve(&policy, name, &path);
    if (v != XV_FS_NAME_OK) /* naming no server folder */
        return reply_error(r, c, v == XV_FS_NAME_OUTSIDE_ROOT ? 403 : 404,
                           v == XV_FS_NAME_OUTSIDE_ROOT ? "outside the image root" : "no such image");
    uint8_t *data = NULL;
    size_t len = 0;
    xv_status st = xv_fs_read_file(path, s->limits.max_image_bytes, &data, &len);
    free(path);
    if (st != XV_OK) return reply_error(r, c, 404, "not a readable image file");
    const char *size = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "size");
    if (size) { /* ?size=N: a JPEG at most N pixels on its longer side */
        const long n = strtol(size, NULL, 10);
        uint8_t *jpeg = NULL;
        size_t jl = 0;
        if (n < 16 || n > 2048) st = xv_error(XV_ERR_INVALID_ARG, "size must be a number of pixels in [16, 2048]");
        else st = xv_thumbnail_jpeg(data, len, name, s->limits.max_pixels, (int)n, &jpeg, &jl);
        free(data);
        if (st != XV_OK) return reply_error(r, c, st == XV_ERR_INVALID_ARG ? 400 : 422, xv_error_message());
        return reply(r, c, 200, "image/jpeg", jpeg, jl, MHD_RESPMEM_MUST_FREE);
    }
    const char *type = len >= 8 && !memcmp(data, "\x89PNG", 4)     ? "image/png"
                       : len >= 3 && !memcmp(data, "\xff\xd8\xff", 3) ? "image/jpeg"
                                                                     : "application/octet-stream";
    return reply(r, c, 200, type, data, len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result static_file(request *r, struct MHD_Connection *c, const char *url) {
    if (!strcmp(url, "/")) url = "/index.html";
    for (const xv_web_asset *a = xv_web_assets; a->path; a++)
        if (!strcmp(a->path, url)) return reply(r, c, 200, a->content_type, a->data, a->size, MHD_RESPMEM_PERSISTENT);
    return reply_error(r, c, 404, "no such page");
}

/* ---- the request callback ---- */

static enum MHD_Result dispatch(server *s, struct MHD_Connection *c, request *r, const char *url, const char *method) {
    const bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    const bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
    if (!strcmp(r->route, "/health")) return get ? health(s, c, r) : reply_error(r, c, 405, "use GET");
    if (!strcmp(r->route, "static") && strncmp(url, "/images/", 8))
        return get ? static_file(r, c, url) : reply_error(r, c, 405, "use GET");
    if (!authorised(s, c)) return reply_error(r, c, 401, "a valid API key is needed (Authorization: Bearer KEY)");
    if (!strcmp(r->route, "/metrics")) return get ? metrics(s, c, r) : reply_error(r, c, 405, "use GET");
    if (!strcmp(r->route, "static")) return get ? image_file(s, c, r, url + 8) : reply_error(r, c, 405, "use GET");
    if (!strcmp(r->route, "other")) return reply_error(r, c, 404, "no such endpoint");
    return post ? model_request(s, c, r) : reply_error(r, c, 405, "use POST with a JSON body");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    server *s = cls;
    request *r = *con_cls;
    if (!r) { /* the headers are in; the body (if any) follows in later calls */
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->started = xv_monotonic_seconds();
        r->route = route_of(url);
        *con_cls = r;
        atomic_fetch_add(&s->in_flight, 1);
        if (!strncmp(r->route, "/v1/", 4)) { /* a model request on its way */
            r->arriving = true;
            xv_queue_arriving(s->queue, 1);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoll(cl, NULL, 10) > s->o->max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "the body is larger than the limit of %lld bytes", (long long)s->o->max_body);
            return reply_error(r, c, 413, msg);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->answered) { /* refused already: drop the rest */
            *upload_data_size = 0;
            return MHD_YES;
        }
        if ((int64_t)(r->len + *upload_data_size) > s->o->max_body) return MHD_NO; /* chunked and too long: cut off */
        /* A body trickled in slower than the time limit allows: cut off (the
         * idle timeout alone would let a byte every few seconds through). */
        if (xv_monotonic_seconds() - r->started > s->o->timeout_s) return MHD_NO;
        if (r->len + *upload_data_size + 1 > r->cap) {
            size_t cap = (r->len + *upload_data_size + 1) * 2;
            char *grown = realloc(r->body, cap);
            if (!grown) return MHD_NO;
            r->body = grown, r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, *upload_data_size);
        r->len += *upload_data_size;
        r->body[r->len] = 0;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->answered) return MHD_YES;
    return dispatch(s, c, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    server *s = cls;
    request *r = *con_cls;
    if (!r) return;
    if (r->arriving) xv_queue_arriving(s->queue, -1);
    xv_metrics_request(s->metrics, r->route, r->answered ? r->status : 400, xv_monotonic_seconds() - r->started);
    xv_form_free(&r->form);
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- workers ---- */

typedef struct {
    server *s;
    xvlm_ctx *ctx;
    int threads; /* xvlm_get_threads() of the thread that started the server */
    pthread_t thread;
    bool started;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    server *s = w->s;
    /* The thread count (--threads) is per thread in OpenMP: a new thread
     * starts from the default (all cores) until it sets its own. */
    xvlm_set_threads(w->threads);
    xv_job **jobs = calloc((size_t)s->o->batch, sizeof *jobs);
    int n;
    while (jobs && (n = xv_queue_take(s->queue, jobs, s->o->batch)) > 0) {
        xv_metrics_batch(s->metrics, n);
        xv_run_batch(w->ctx, &s->env, jobs, n);
        for (int i = 0; i < n; i++) xv_queue_done(s->queue, jobs[i]);
    }
    free(jobs);
    return NULL;
}

/* ---- start, serve, stop ---- */

static char *read_api_key(const char *path) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (xv_fs_read_file(path, 4096, &data, &len) != XV_OK) {
        fprintf(stderr, "xvlm serve: --api-key-file: %s\n", xv_error_message());
        return NULL;
    }
    char *key = (char *)data;
    key[strcspn(key, "\r\n")] = 0;
    if (strlen(key) < 8) {
        fprintf(stderr, "xvlm serve: --api-key-file %s: the key (its first line) must have at least 8 characters\n", path);
        free(key);
        return NULL;
    }
    return key;
}

static struct MHD_Daemon *start_daemon(server *s) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->o->port)};
    if (inet_pton(AF_INET, s->o->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "xvlm serve: --host %s: not an IPv4 address (e.g. 127.0.0.1, 0.0.0.0)\n", s->o->host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->o->timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->o->max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!d) fprintf(stderr, "xvlm serve: cannot listen on %s:%d (in use, or not allowed)\n", s->o->host, s->o->port);
    return d;
}

/* Until SIGTERM/SIGINT; then stop accepting and let the requests in flight
 * finish (at most the request time limit). */
static void serve_until_signal(server *s, const sigset_t *signals) {
    int sig = 0;
    sigwait(signals, &sig);
    fprintf(stderr, "xvlm serve: %s: finishing %d request(s) in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            atomic_load(&s->in_flight));
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    const double until = xv_monotonic_seconds() + s->o->timeout_s;
    while (atomic_load(&s->in_flight) > 0 && xv_monotonic_seconds() < until) usleep(10 * 1000);
}

int xv_serve_run(const xvlm_model *m, const xv_serve_opts *o) {
    server s = {.o = o, .env = {.model = m}};
    worker *workers = calloc((size_t)o->workers, sizeof *workers);
    char *root = NULL;
    int rc = 1;
    /* The signals are taken by sigwait() in this thread only: block them
     * before any thread starts (threads inherit the mask). SIGPIPE from a
     * client that went away is ignored. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    xvlm_images *index = NULL;
    if (!workers) goto done;
    if (o->image_root && !(root = realpath(o->image_root, NULL))) {
        fprintf(stderr, "xvlm serve: --image-root %s: no such folder\n", o->image_root);
        goto done;
    }
    if (o->api_key_file && !(s.api_key = read_api_key(o->api_key_file))) goto done;
    if (o->index) {
        if (xvlm_index_open(m, o->index, &index) != XVLM_OK) {
            fprintf(stderr, "xvlm serve: --index: %s\n", xvlm_last_error());
            goto done;
        }
        if (xvlm_images_count(index) == 0) {
            fprintf(stderr, "xvlm serve: --index %s: the index is empty\n", o->index);
            goto done;
        }
    }
    s.env.index = index;
    s.env.image_root = root;
    s.limits = (xv_request_limits){.image_root = root, .max_pixels = o->max_pixels, .max_image_bytes = o->max_body,
                                   .max_text_bytes = o->max_text_bytes, .max_texts = o->max_texts};
    s.queue = xv_queue_new(o->queue, o->batch, o->batch_wait_ms);
    s.metrics = xv_metrics_new();
    if (!s.queue || !s.metrics) goto done;
    for (int i = 0; i < o->workers; i++) {
        workers[i].s = &s;
        workers[i].threads = xvlm_get_threads();
        if (xvlm_ctx_new(m, &workers[i].ctx) != XVLM_OK) {
            fprintf(stderr, "xvlm serve: %s\n", xvlm_last_error());
            goto done;
        }
        workers[i].started = pthread_create(&workers[i].thread, NULL, work, &workers[i]) == 0;
        if (!workers[i].started) goto done;
    }
    if (!(s.daemon = start_daemon(&s))) goto done;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("xvlm serve: listening on http://%s:%u/\n", o->host, info ? (unsigned)info->port : (unsigned)o->port);
    fflush(stdout);
    serve_until_signal(&s, &signals);
    rc = 0;
done:
    if (s.queue) xv_queue_close(s.queue);
    for (int i = 0; workers && i < o->workers; i++) {
        if (workers[i].started) pthread_join(workers[i].thread, NULL);
        xvlm_ctx_free(workers[i].ctx);
    }
    if (s.daemon) MHD_stop_daemon(s.daemon);
    xv_queue_free(s.queue);
    xv_metrics_free(s.metrics);
    xvlm_images_free(index);
    free(s.api_key);
    free(root);
    free(workers);
    return rc;
}
