/* Load test of `xvlm serve` (docs/serve.md): throughput and p50/p99 latency
 * of /v1/search and /v1/match at 1, 8 and 64 concurrent clients, with
 * micro-batching on (--batch 8) and off (--batch 1), on a tiny random model
 * and a small index it makes itself; then a long run of many requests
 * reading the server's resident memory from /metrics as it goes.
 *
 * It starts its own servers on 127.0.0.1 (port 0) and talks to nothing
 * else; every run stops after --requests requests or --seconds seconds,
 * whichever comes first.
 *
 * usage: load_serve [--requests N (300)] [--seconds S (10)] [--long N (10000)]
 *        (needs $XV_BIN: the xvlm program, e.g. XV_BIN=build/xvlm) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "serve_client.h"
#include "testutil.h"

typedef struct {
    int port;
    const char *path, *body;
    long limit;        /* requests in all */
    double deadline;   /* monotonic seconds */
    atomic_long *issued;
    double *latency;   /* this client's, at most `limit` */
    long n, errors;
} client;

static void *run_client(void *arg) {
    client *c = arg;
    while (atomic_fetch_add(c->issued, 1) < c->limit && xv_monotonic_seconds() < c->deadline) {
        const double t0 = xv_monotonic_seconds();
        xv_http_response r;
        if (xv_http_post_json(c->port, c->path, c->body, &r) != 0 || r.status != 200) c->errors++;
        c->latency[c->n++] = xv_monotonic_seconds() - t0;
        xv_http_response_free(&r);
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long done, errors;
    double seconds, p50, p99;
} result;

static result load(int port, const char *path, const char *body, int clients, long limit, double seconds) {
    atomic_long issued = 0;
    client *cs = calloc((size_t)clients, sizeof *cs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    const double t0 = xv_monotonic_seconds();
    for (int i = 0; i < clients; i++) {
        cs[i] = (client){.port = port, .path = path, .body = body, .limit = limit, .deadline = t0 + seconds,
                         .issued = &issued, .latency = calloc((size_t)limit, sizeof(double))};
        pthread_create(&th[i], NULL, run_client, &cs[i]);
    }
    result res = {0};
    for (int i = 0; i < clients; i++) pthread_join(th[i], NULL);
    res.seconds = xv_monotonic_seconds() - t0;
    double *all = calloc((size_t)limit, sizeof *all);
    for (int i = 0; i < clients; i++) {
        memcpy(all + res.done, cs[i].latency, (size_t)cs[i].n * sizeof *all);
        res.done += cs[i].n;
        res.errors += cs[i].errors;
        free(cs[i].latency);
    }
    qsort(all, (size_t)res.done, sizeof *all, by_value);
    if (res.done) {
        res.p50 = all[(res.done - 1) / 2];
        res.p99 = all[(long)((double)(res.done - 1) * 0.99)];
    }
    free(all);
    free(cs);
    free(th);
    return res;
}

/* xvlm_resident_memory_bytes from the server's /metrics, in MiB. */
static double server_rss_mib(int port) {
    xv_http_response r;
    double mib = -1;
    if (xv_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.body) {
        const char *m = strstr(r.body, "\nxvlm_resident_memory_bytes ");
        if (m) mib = atof(m + 28) / (1024.0 * 1024.0);
    }
    xv_http_response_free(&r);
    return mib;
}

static const char *const MATCH = "{\"image\": \"img1.jpg\", \"text\": \"two blue circles\"}";
static const char *const SEARCH = "{\"text\": \"the small green triangle\", \"k\": 5, \"rerank\": 4}";

int main(int argc, char **argv) {
    long requests = 300, long_run = 10000;
    double seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--requests")) requests = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--long")) long_run = atol(argv[i + 1]);
        else {
            fprintf(stderr, "load_serve: unknown option %s (see the comment at the top of bench/load_serve.c)\n", argv[i]);
            return 2;
        }
    }
    if (!getenv("XV_BIN")) {
        fprintf(stderr, "load_serve: set XV_BIN to the xvlm program (e.g. XV_BIN=build/xvlm)\n");
        return 2;
    }
    if (requests < 1 || seconds <= 0 || long_run < 0) {
        fprintf(stderr, "load_serve: --requests and --seconds must be positive, --long at least 0\n");
        return 2;
    }
    xv_test_serve_world w;
    if (!xv_test_serve_world_make(&w, "load_serve", 16)) return 1;
    char base[1200];
    xv_test_serve_world_args(&w, base, sizeof base);
    const char *modes[2] = {"--batch 8 --batch-wait-ms 2", "--batch 1"};
    const int clients[3] = {1, 8, 64};
    printf("tiny model (64 px Swin, 3-layer BERT), 16-image index, 1 worker, --threads 1; "
           "at most %ld requests or %.0f s per row\n\n", requests, seconds);
    printf("| endpoint | micro-batching | clients | requests | errors | req/s | p50 ms | p99 ms |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    int rc = 0;
    for (int m = 0; m < 2; m++) {
        char args[1400];
        snprintf(args, sizeof args, "%s %s --queue 128", base, modes[m]);
        xv_test_server s;
        if (!xv_test_server_start(&s, args)) return 1;
        for (int e = 0; e < 2; e++)
            for (int c = 0; c < 3; c++) {
                const char *path = e ? "/v1/match" : "/v1/search";
                result r = load(s.port, path, e ? MATCH : SEARCH, clients[c], requests, seconds);
                printf("| %s | %s | %d | %ld | %ld | %.0f | %.1f | %.1f |\n", path, m ? "off" : "on (8, 2 ms)",
                       clients[c], r.done, r.errors, (double)r.done / r.seconds, r.p50 * 1e3, r.p99 * 1e3);
                fflush(stdout);
                rc |= r.errors != 0;
            }
        if (m == 0 && long_run > 0) { /* the long run, on the batching server */
            load(s.port, "/v1/match", MATCH, 8, 500, seconds);
            const double before = server_rss_mib(s.port);
            result r = load(s.port, "/v1/match", MATCH, 8, long_run, 1e9);
            const double after = server_rss_mib(s.port);
            printf("\nlong run: %ld /v1/match requests from 8 clients in %.1f s, %ld errors; server resident memory "
                   "%.1f MiB after 500 warm-up requests, %.1f MiB after all\n\n",
                   r.done, r.seconds, r.errors, before, after);
            rc |= r.errors != 0;
        }
        xv_test_server_stop(&s);
    }
    xv_test_remove_dir(w.dir);
    return rc;
}
