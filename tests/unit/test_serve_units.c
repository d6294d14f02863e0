/* The parts of `xvlm serve` below HTTP: the job queue's micro-batching
 * (batches of one kind in arrival order, capacity, the wait for a batch only
 * while requests are arriving, dropping jobs whose request gave up, close),
 * request fields -> job with their refusals, result links, and the metrics
 * text. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/fs.h"
#include "serve/job.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "serve/run.h"
#include "testutil.h"

static xv_job *queued(xv_queue *q, xv_job_kind kind) {
    xv_job *j = xv_job_new(kind);
    xv_queue_arriving(q, 1);
    CHECK(j && xv_queue_push(q, j), "push a job of kind %d", kind);
    return j;
}

/* The worker's side: answer and let go. */
static void finish(xv_queue *q, xv_job **jobs, int n) {
    for (int i = 0; i < n; i++) xv_queue_done(q, jobs[i]);
}

static void test_batches(void) {
    xv_queue *q = xv_queue_new(4, 8, 0);
    xv_job *a = queued(q, XV_JOB_MATCH), *b = queued(q, XV_JOB_GROUND), *c = queued(q, XV_JOB_MATCH);
    xv_job *d = queued(q, XV_JOB_MATCH);
    xv_job *e = xv_job_new(XV_JOB_MATCH);
    xv_queue_arriving(q, 1);
    CHECK(!xv_queue_push(q, e), "a full queue refuses");
    CHECK(xv_queue_depth(q) == 4, "depth %d", xv_queue_depth(q));
    xv_job *got[8];
    int n = xv_queue_take(q, got, 2);
    CHECK(n == 2 && got[0] == a && got[1] == c, "the oldest kind, in order, at most cap: %d", n);
    finish(q, got, n);
    n = xv_queue_take(q, got, 8);
    CHECK(n == 1 && got[0] == b, "then the next oldest kind (ground)");
    finish(q, got, n);
    /* d's request gives up (time limit): the worker drops it and waits on. */
    CHECK(!xv_queue_wait(q, d, 0.01), "a job nobody answers times out");
    xv_queue_release(q, d);
    xv_job *f = queued(q, XV_JOB_EMBED);
    n = xv_queue_take(q, got, 8);
    CHECK(n == 1 && got[0] == f && xv_queue_depth(q) == 0, "an abandoned job is dropped unrun (%d taken)", n);
    finish(q, got, n);
    CHECK(xv_queue_wait(q, f, 1.0), "an answered job is seen as done");
    xv_queue_release(q, a), xv_queue_release(q, b), xv_queue_release(q, c), xv_queue_release(q, f);
    xv_queue_release(q, e);
    xv_queue_close(q);
    CHECK(xv_queue_take(q, got, 8) == 0, "a closed empty queue gives no batch");
    xv_queue_free(q);
}

/* The wait for a batch: none for a lone request, up to batch_wait_ms while
 * another is arriving. */
typedef struct {
    xv_queue *q;
    xv_job *j;
} late_push;

static void *push_later(void *arg) {
    late_push *l = arg;
    usleep(30 * 1000);
    CHECK(xv_queue_push(l->q, l->j), "the late job is queued");
    return NULL;
}

static void test_batch_wait(void) {
    xv_queue *q = xv_queue_new(8, 4, 2000);
    xv_job *got[4];
    xv_job *a = queued(q, XV_JOB_MATCH);
    double t0 = xv_monotonic_seconds();
    int n = xv_queue_take(q, got, 4);
    CHECK(n == 1 && xv_monotonic_seconds() - t0 < 1.0, "a lone request runs at once (%.3f s)", xv_monotonic_seconds() - t0);
    finish(q, got, n);
    xv_queue_release(q, a);

    xv_job *b = queued(q, XV_JOB_MATCH);
    late_push l = {q, xv_job_new(XV_JOB_MATCH)};
    xv_queue_arriving(q, 1); /* a second request is being read */
    pthread_t th;
    pthread_create(&th, NULL, push_later, &l);
    t0 = xv_monotonic_seconds();
    n = xv_queue_take(q, got, 4);
    const double waited = xv_monotonic_seconds() - t0;
    pthread_join(th, NULL);
    CHECK(n == 2 && got[0] == b && got[1] == l.j && waited < 1.5,
          "the worker waited for the arriving request: %d jobs after %.3f s", n, waited);
    finish(q, got, n);
    xv_queue_release(q, b);
    xv_queue_release(q, l.j);
    xv_queue_free(q);
}

/* ---- request fields -> job ---- */
static int to_job(const char *json, xv_job_kind kind, const xv_request_limits *lim, xv_job **out,
                  xv_request_error *err) {
    cJSON *fields = cJSON_Parse(json);
    CHECK(fields, "test JSON %s", json);
    xv_job *j = xv_job_new(kind);
    *err = (xv_request_error){0};
    int rc = xv_request_to_job(fields, NULL, 0, lim, j, err);
    cJSON_Delete(fields);
    if (out) *out = j;
    else {
        xv_queue *q = xv_queue_new(1, 1, 0);
        xv_queue_release(q, j); /* frees it */
        xv_queue_free(q);
    }
    return rc;
}

static void refused(const char *json, xv_job_kind kind, const xv_request_limits *lim, int status, const char *says) {
    xv_request_error err;
    int rc = to_job(json, kind, lim, NULL, &err);
    CHECK(rc == status && err.status == status && strstr(err.message, says), "%s: %d \"%s\" (expected %d, \"%s\")",
          json, rc, err.message, status, says);
}

static void test_requests(const char *root) {
    const xv_request_limits lim = {.image_root = root, .max_pixels = 10000, .max_image_bytes = 1 << 20,
                                   .max_text_bytes = 20, .max_texts = 3};
    xv_job *j = NULL;
    xv_request_error err;
    CHECK(to_job("{\"image\": \"a.jpg\", \"texts\": [\"one\", \"two\"], \"k\": 3}", XV_JOB_MATCH, &lim, &j, &err) == 0,
          "a match request: %s", err.message);
    CHECK(j->n_texts == 2 && !strcmp(j->texts[1], "two") && j->k == 3 && j->rerank == 16 && j->image.width == 20 &&
              !strcmp(j->image_name, "a.jpg"),
          "its fields: %d texts, k %d, image %dx%d", j->n_texts, j->k, j->image.width, j->image.height);
    xv_queue *q = xv_queue_new(1, 1, 0);
    xv_queue_release(q, j);
    CHECK(to_job("{\"image\": \"a.jpg\", \"texts\": [\"x\"]}", XV_JOB_SEARCH_TEXT, &lim, &j, &err) == 0 &&
              j->kind == XV_JOB_SEARCH_IMAGE,
          "a search with an image ranks texts");
    xv_queue_release(q, j);
    xv_queue_free(q);

    refused("{\"text\": \"a\", \"texts\": [\"b\"]}", XV_JOB_EMBED, &lim, 400, "not both");
    refused("{\"texts\": [\"a\", 3]}", XV_JOB_EMBED, &lim, 400, "must be a string");
    refused("{\"texts\": [\"a\", \"b\", \"c\", \"d\"]}", XV_JOB_EMBED, &lim, 413, "more than 3 texts");
    refused("{\"text\": \"a text of more than twenty bytes\"}", XV_JOB_EMBED, &lim, 413, "longer than the limit of 20");
    refused("{\"text\": \"a\", \"k\": 0}", XV_JOB_SEARCH_TEXT, &lim, 400, "\"k\" must be a whole number");
    refused("{\"text\": \"a\", \"rerank\": 1.5}", XV_JOB_SEARCH_TEXT, &lim, 400, "\"rerank\"");
    refused("{\"texts\": [\"a\", \"b\"]}", XV_JOB_SEARCH_TEXT, &lim, 400, "a text query is one");
    refused("{\"text\": \"a\"}", XV_JOB_MATCH, &lim, 400, "give an image");
    refused("{\"image\": \"a.jpg\"}", XV_JOB_GROUND, &lim, 400, "give \"text\"");
    refused("{}", XV_JOB_EMBED, &lim, 400, "give texts");
    refused("[]", XV_JOB_EMBED, &lim, 400, "JSON object");
    refused("{\"image\": \"a.jpg\", \"image_base64\": \"AAAA\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 400, "give one image");
    refused("{\"image_base64\": \"not base64!\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 400, "image_base64");
    refused("{\"image\": \"../a.jpg\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 403, "outside the image root");
    refused("{\"image\": \"/etc/passwd\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 403, "/etc/passwd");
    refused("{\"image\": \"none.jpg\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 404, "none.jpg: no such file");
    refused("{\"image\": \"big.jpg\", \"text\": \"a\"}", XV_JOB_MATCH, &lim, 422, "big.jpg");
    const xv_request_limits no_root = {.max_pixels = 10000, .max_image_bytes = 1 << 20, .max_text_bytes = 20, .max_texts = 3};
    refused("{\"image\": \"a.jpg\", \"text\": \"a\"}", XV_JOB_MATCH, &no_root, 400, "--image-root");
}

static void test_urls(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/a b#.jpg", root);
    CHECK(xv_test_write_file(path, "x"), "%s", path);
    char *url = xv_image_url(root, path);
    CHECK(url && !strcmp(url, "/images/a%20b%23.jpg"), "an escaped link: %s", url ? url : "(null)");
    free(url);
    CHECK(xv_image_url(root, "/etc/passwd") == NULL, "no link outside the root");
    CHECK(xv_image_url(NULL, path) == NULL, "no link without a root");
}

static void test_metrics(void) {
    xv_metrics *m = xv_metrics_new();
    xv_metrics_request(m, "/v1/match", 200, 0.003);
    xv_metrics_request(m, "/v1/match", 413, 0.0005);
    xv_metrics_request(m, "/nowhere", 500, 20);
    xv_metrics_batch(m, 3);
    char *t = xv_metrics_text(m, 5, 2);
    CHECK(t && strstr(t, "xvlm_requests_total{route=\"/v1/match\"} 2\n") &&
              strstr(t, "xvlm_errors_total{route=\"/v1/match\",class=\"4xx\"} 1\n") &&
              strstr(t, "xvlm_errors_total{route=\"other\",class=\"5xx\"} 1\n") &&
              strstr(t, "xvlm_request_seconds_bucket{le=\"0.001\"} 1\n") &&
              strstr(t, "xvlm_request_seconds_bucket{le=\"0.005\"} 2\n") &&
              strstr(t, "xvlm_request_seconds_bucket{le=\"+Inf\"} 3\n") &&
              strstr(t, "xvlm_batch_size_bucket{le=\"2\"} 0\n") && strstr(t, "xvlm_batch_size_bucket{le=\"4\"} 1\n") &&
              strstr(t, "xvlm_queue_depth 5\n") && strstr(t, "xvlm_requests_in_flight 2\n") &&
              strstr(t, "xvlm_resident_memory_bytes "),
          "the Prometheus text:\n%s", t ? t : "(null)");
    free(t);
    xv_metrics_free(m);
}

int main(void) {
    test_batches();
    test_batch_wait();
    char dir[256], root[300], path[400];
    if (!xv_test_scratch_dir("serve_units", dir, sizeof dir)) return xv_test_finish("test_serve_units");
    snprintf(root, sizeof root, "%s/root", dir);
    CHECK(mkdir(root, 0755) == 0, "mkdir %s", root);
    snprintf(path, sizeof path, "%s/a.jpg", root);
    CHECK(xv_test_tiny_image(path, 20, 10, 1), "a.jpg");
    snprintf(path, sizeof path, "%s/big.jpg", root);
    CHECK(xv_test_tiny_image(path, 200, 100, 2), "big.jpg (20000 pixels, over the limit of 10000)");
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    CHECK(xv_test_tiny_image(path, 20, 10, 1), "an image outside the root");
    char *real = realpath(root, NULL);
    test_requests(real);
    test_urls(real);
    free(real);
    test_metrics();
    xv_test_remove_dir(dir);
    return xv_test_finish("test_serve_units");
}
