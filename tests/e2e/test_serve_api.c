/* `xvlm serve` answers with the numbers of the commands: every endpoint
 * against `xvlm match`, `ground` and `search` (--json) on the same inputs, and
 * /v1/embed against the public API, on a tiny random model; images given as
 * a path under the root, base64 and a multipart upload; concurrent requests
 * (micro-batched together) get the numbers they get alone; the API key; a
 * SIGTERM lets the request in flight finish.
 *
 * Tolerance: |server - cli| <= 1e-5·max(1, |cli|). Both run the same fp32
 * calls; only the batch composition differs (requests run together), which
 * moves results by a few ulps, far below the bound, while a wrong image,
 * text or head moves them by 1e-2 or more. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "serve_client.h"
#include "testutil.h"
#include "xvlm.h"

static xv_test_serve_world W;
static int g_port;

static bool close_to(double got, double ref) { return fabs(got - ref) <= 1e-5 * fmax(1.0, fabs(ref)); }

/* `xvlm CMD ARGS --json`, parsed (NULL, with a failed CHECK, on failure). */
static cJSON *cli_json(const char *cmd, const char *args) {
    char full[4096];
    snprintf(full, sizeof full, "%s --model '%s' --threads 1 --json %s", cmd, W.model, args);
    xv_test_cli_result r = xv_test_cli(W.dir, full, NULL);
    cJSON *j = r.status == 0 ? cJSON_Parse(r.out) : NULL;
    CHECK(j, "xvlm %s: exit %d, %s", full, r.status, r.err);
    xv_test_cli_free(&r);
    return j;
}

/* POST json to the server, expecting `status`; the parsed answer. */
static cJSON *post(const char *path, const char *json, int status) {
    xv_http_response r;
    CHECK(xv_http_post_json(g_port, path, json, &r) == 0, "POST %s: no connection", path);
    CHECK(r.status == status, "POST %s %s: status %d (expected %d): %s", path, json, r.status, status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(j, "POST %s: the answer is not JSON: %s", path, r.body);
    xv_http_response_free(&r);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void check_field(const cJSON *got, const char *gkey, const cJSON *ref, const char *rkey, const char *what) {
    double g = num(got, gkey), r = num(ref, rkey);
    CHECK(close_to(g, r), "%s: %s %.9g, the CLI's %s %.9g", what, gkey, g, rkey, r);
}

static void check_array(const cJSON *got, const cJSON *ref, int n, const char *what) {
    CHECK(cJSON_GetArraySize(got) == n && cJSON_GetArraySize(ref) == n, "%s: %d values", what, n);
    for (int i = 0; i < n && i < cJSON_GetArraySize(got) && i < cJSON_GetArraySize(ref); i++) {
        double g = cJSON_GetArrayItem(got, i)->valuedouble, r = cJSON_GetArrayItem(ref, i)->valuedouble;
        CHECK(close_to(g, r), "%s[%d]: %.9g, the CLI's %.9g", what, i, g, r);
    }
}

static const char *const TEXTS[] = {"a red square on the left", "two blue circles", "the small green triangle"};

static void test_match(int img) {
    char args[1024], body[1024];
    snprintf(args, sizeof args, "--image '%s/img%d.jpg' --text '%s' --text '%s'", W.images, img, TEXTS[0], TEXTS[1]);
    cJSON *ref = cli_json("match", args);
    snprintf(body, sizeof body, "{\"image\": \"img%d.jpg\", \"texts\": [\"%s\", \"%s\"]}", img, TEXTS[0], TEXTS[1]);
    cJSON *got = post("/v1/match", body, 200);
    const cJSON *rr = cJSON_GetObjectItem(ref, "results"), *gr = cJSON_GetObjectItem(got, "results");
    CHECK(cJSON_GetArraySize(gr) == 2, "match: 2 results");
    for (int t = 0; t < 2 && ref && got && t < cJSON_GetArraySize(gr); t++) {
        const cJSON *g = cJSON_GetArrayItem(gr, t), *r = cJSON_GetArrayItem(rr, t);
        check_field(g, "probability", r, "itm_prob", "match");
        check_field(g, "logit", r, "itm_logit", "match");
        check_field(g, "itc", r, "itc", "match");
    }
    CHECK(num(got, "width") == num(ref, "width") && num(got, "height") == num(ref, "height"), "match: image size");
    cJSON_Delete(got);
    /* One text: its numbers at the top, as the example. */
    snprintf(body, sizeof body, "{\"image\": \"img%d.jpg\", \"text\": \"%s\"}", img, TEXTS[0]);
    got = post("/v1/match", body, 200);
    check_field(got, "probability", cJSON_GetArrayItem(rr, 0), "itm_prob", "match (one text)");
    check_field(got, "logit", cJSON_GetArrayItem(rr, 0), "itm_logit", "match (one text)");
    cJSON_Delete(got);
    cJSON_Delete(ref);
}

static void test_ground(void) {
    char args[1024], body[1024];
    snprintf(args, sizeof args, "--image '%s/img2.jpg' --text '%s' --text '%s'", W.images, TEXTS[2], TEXTS[0]);
    cJSON *ref = cli_json("ground", args);
    snprintf(body, sizeof body, "{\"image\": \"img2.jpg\", \"texts\": [\"%s\", \"%s\"]}", TEXTS[2], TEXTS[0]);
    cJSON *got = post("/v1/ground", body, 200);
    const cJSON *rr = cJSON_GetObjectItem(ref, "results"), *gr = cJSON_GetObjectItem(got, "results");
    for (int t = 0; t < 2 && ref && got; t++) {
        const cJSON *g = cJSON_GetArrayItem(gr, t), *r = cJSON_GetArrayItem(rr, t);
        check_array(cJSON_GetObjectItem(g, "box"), cJSON_GetObjectItem(r, "box"), 4, "ground box");
        check_array(cJSON_GetObjectItem(g, "box_normalized"), cJSON_GetObjectItem(r, "box_normalized"), 4,
                    "ground box_normalized");
    }
    cJSON_Delete(got);
    cJSON_Delete(ref);
}

/* Hits in the same order with the same numbers. */
static void check_hits(const cJSON *got, const cJSON *ref, const char *what) {
    const cJSON *gr = cJSON_GetObjectItem(got, "results"), *rr = cJSON_GetObjectItem(ref, "results");
    CHECK(gr && cJSON_GetArraySize(gr) == cJSON_GetArraySize(rr) && cJSON_GetArraySize(rr) > 0, "%s: %d results", what,
          cJSON_GetArraySize(rr));
    for (int i = 0; gr && rr && i < cJSON_GetArraySize(rr) && i < cJSON_GetArraySize(gr); i++) {
        const cJSON *g = cJSON_GetArrayItem(gr, i), *r = cJSON_GetArrayItem(rr, i);
        CHECK(num(g, "index") == num(r, "index"), "%s: rank %d is entry %g, the CLI's %g", what, i + 1, num(g, "index"),
              num(r, "index"));
        check_field(g, "score", r, "score", what);
        check_field(g, "itc", r, "itc", what);
        const cJSON *rl = cJSON_GetObjectItem(r, "itm_logit");
        if (cJSON_IsNumber(rl)) check_field(g, "itm_logit", r, "itm_logit", what);
        else CHECK(cJSON_IsNull(cJSON_GetObjectItem(g, "itm_logit")), "%s: rank %d not re-ranked", what, i + 1);
    }
}

static void test_search_text(void) {
    char args[1024], body[512];
    snprintf(args, sizeof args, "--index '%s' --text '%s' --k 4 --rerank 2", W.index, TEXTS[1]);
    cJSON *ref = cli_json("search", args);
    snprintf(body, sizeof body, "{\"text\": \"%s\", \"k\": 4, \"rerank\": 2}", TEXTS[1]);
    cJSON *got = post("/v1/search", body, 200);
    check_hits(got, ref, "search text -> images");
    /* Results link to their pictures, which the server hands out. */
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(got, "results"), 0);
    const cJSON *url = cJSON_GetObjectItem(first, "url");
    CHECK(cJSON_IsString(url) && !strncmp(url->valuestring, "/images/img", 11), "search: a result url");
    if (cJSON_IsString(url)) {
        xv_http_response r;
        xv_http(g_port, "GET", url->valuestring, NULL, NULL, 0, &r);
        CHECK(r.status == 200 && r.len > 100 && (unsigned char)r.body[0] == 0xff, "GET %s: %d, %zu bytes",
              url->valuestring, r.status, r.len);
        CHECK(strstr(r.headers, "image/jpeg") != NULL, "GET %s: Content-Type image/jpeg", url->valuestring);
        xv_http_response_free(&r);
        /* ?size=N: a JPEG of at most N pixels on the longer side (SOF0 holds height, width). */
        char thumb[300];
        snprintf(thumb, sizeof thumb, "%s?size=16", url->valuestring);
        xv_http(g_port, "GET", thumb, NULL, NULL, 0, &r);
        const unsigned char *b = (const unsigned char *)r.body;
        int w = 0, h = 0;
        for (size_t i = 2; r.status == 200 && i + 9 < r.len; i++)
            if (b[i] == 0xff && b[i + 1] == 0xc0) {
                h = b[i + 5] << 8 | b[i + 6], w = b[i + 7] << 8 | b[i + 8];
                break;
            }
        CHECK(r.status == 200 && (w == 16 || h == 16) && w <= 16 && h <= 16 && w > 0 && h > 0,
              "GET %s: %d, a %dx%d JPEG", thumb, r.status, w, h);
        xv_http_response_free(&r);
        snprintf(thumb, sizeof thumb, "%s?size=1", url->valuestring);
        xv_http(g_port, "GET", thumb, NULL, NULL, 0, &r);
        CHECK(r.status == 400 && strstr(r.body, "size"), "GET %s: %d %s", thumb, r.status, r.body);
        xv_http_response_free(&r);
    }
    cJSON_Delete(got);
    cJSON_Delete(ref);
}

static char *base64_of_file(const char *path) {
    size_t len = 0;
    unsigned char *data = (unsigned char *)xv_test_read_file(path, &len);
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * (len + 2) / 3 + 4), *o = out;
    for (size_t i = 0; data && i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0) |
                     (i + 2 < len ? data[i + 2] : 0);
        *o++ = A[v >> 18 & 63], *o++ = A[v >> 12 & 63];
        *o++ = i + 1 < len ? A[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? A[v & 63] : '=';
    }
    *o = 0;
    free(data);
    return out;
}

static void test_search_image(void) {
    char args[1024], texts_path[400], image[400];
    snprintf(texts_path, sizeof texts_path, "%s/texts.txt", W.dir);
    snprintf(image, sizeof image, "%s/img1.jpg", W.images);
    xv_test_write_file(texts_path, "a red square on the left\ntwo blue circles\nthe small green triangle\n");
    snprintf(args, sizeof args, "--image '%s' --texts '%s' --k 3 --rerank 2", image, texts_path);
    cJSON *ref = cli_json("search", args);
    char *b64 = base64_of_file(image);
    size_t bl = strlen(b64) + 512;
    char *body = malloc(bl);
    snprintf(body, bl, "{\"image_base64\": \"%s\", \"texts\": [\"%s\", \"%s\", \"%s\"], \"k\": 3, \"rerank\": 2}", b64,
             TEXTS[0], TEXTS[1], TEXTS[2]);
    cJSON *got = post("/v1/search", body, 200);
    check_hits(got, ref, "search image -> texts");
    cJSON_Delete(got);
    cJSON_Delete(ref);
    free(body);
    free(b64);
}

/* The same match as a multipart upload (what an HTML form sends). */
static void test_upload(void) {
    char image[400], args[1024];
    snprintf(image, sizeof image, "%s/img3.jpg", W.images);
    snprintf(args, sizeof args, "--image '%s' --text '%s'", image, TEXTS[2]);
    cJSON *ref = cli_json("match", args);
    size_t len = 0;
    char *data = xv_test_read_file(image, &len);
    const char *B = "xvlmBoundary7MA4YWxk";
    char head[512], tail[512];
    int hn = snprintf(head, sizeof head,
                      "--%s\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n%s\r\n"
                      "--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n"
                      "Content-Type: image/jpeg\r\n\r\n",
                      B, TEXTS[2], B);
    int tn = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", B);
    size_t bl = (size_t)hn + len + (size_t)tn;
    char *body = malloc(bl);
    memcpy(body, head, (size_t)hn);
    memcpy(body + hn, data, len);
    memcpy(body + hn + len, tail, (size_t)tn);
    char headers[128];
    snprintf(headers, sizeof headers, "Content-Type: multipart/form-data; boundary=%s\r\n", B);
    xv_http_response r;
    xv_http(g_port, "POST", "/v1/match", headers, body, bl, &r);
    CHECK(r.status == 200, "multipart match: %d %s", r.status, r.body);
    cJSON *got = cJSON_Parse(r.body);
    check_field(got, "probability", cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "results"), 0), "itm_prob", "upload");
    check_field(got, "logit", cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "results"), 0), "itm_logit", "upload");
    cJSON_Delete(got);
    cJSON_Delete(ref);
    xv_http_response_free(&r);
    free(body);
    free(data);
}

/* /v1/embed against the public API's features. */
static void test_embed(void) {
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    char image[400];
    snprintf(image, sizeof image, "%s/img0.jpg", W.images);
    const char *ip = image;
    CHECK_OK(xvlm_model_load(W.model, NULL, &m));
    CHECK_OK(xvlm_ctx_new(m, &ctx));
    CHECK_OK(xvlm_encode_image_files(ctx, &ip, 1, NULL, &im));
    CHECK_OK(xvlm_encode_texts(ctx, TEXTS, 2, NULL, &tx));
    char body[512];
    snprintf(body, sizeof body, "{\"image\": \"img0.jpg\", \"texts\": [\"%s\", \"%s\"]}", TEXTS[0], TEXTS[1]);
    cJSON *got = post("/v1/embed", body, 200);
    const int d = (int)num(got, "dim");
    CHECK(d == 8, "embed: dim %d", d);
    const cJSON *imf = cJSON_GetObjectItem(got, "image_features"), *txf = cJSON_GetObjectItem(got, "text_features");
    for (int i = 0; im && tx && d == 8 && i < d; i++) {
        CHECK(close_to(cJSON_GetArrayItem(imf, i)->valuedouble, xvlm_images_features(im)[i]), "image feature %d", i);
        for (int t = 0; t < 2; t++)
            CHECK(close_to(cJSON_GetArrayItem(cJSON_GetArrayItem(txf, t), i)->valuedouble,
                           xvlm_texts_features(tx)[t * d + i]),
                  "text %d feature %d", t, i);
    }
    cJSON_Delete(got);
    xvlm_texts_free(tx), xvlm_images_free(im), xvlm_ctx_free(ctx), xvlm_model_free(m);
}

/* ---- concurrent requests: batched together, answered as alone ---- */
typedef struct {
    int img;
    double logit;
    int status;
} concurrent;

static void *concurrent_match(void *arg) {
    concurrent *c = arg;
    char body[256];
    snprintf(body, sizeof body, "{\"image\": \"img%d.jpg\", \"text\": \"%s\"}", c->img, TEXTS[c->img % 3]);
    xv_http_response r;
    xv_http_post_json(g_port, "/v1/match", body, &r);
    c->status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    c->logit = num(j, "logit");
    cJSON_Delete(j);
    xv_http_response_free(&r);
    return NULL;
}

static void test_concurrent(void) {
    enum { N = 12 };
    concurrent alone[N], together[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        alone[i] = (concurrent){.img = i % W.n_images};
        concurrent_match(&alone[i]);
        together[i] = alone[i];
    }
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, concurrent_match, &together[i]);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        CHECK(together[i].status == 200 && close_to(together[i].logit, alone[i].logit),
              "concurrent match %d: status %d, logit %.9g (alone %.9g)", i, together[i].status, together[i].logit,
              alone[i].logit);
    xv_http_response r;
    xv_http(g_port, "GET", "/metrics", NULL, NULL, 0, &r);
    CHECK(r.status == 200 && strstr(r.body, "xvlm_requests_total{route=\"/v1/match\"}"), "metrics: %.200s", r.body);
    CHECK(strstr(r.body, "xvlm_batch_size_bucket{le=\"1\"}") && strstr(r.body, "xvlm_queue_depth 0") &&
              strstr(r.body, "xvlm_request_seconds_count"),
          "metrics: batch sizes, queue depth, latency");
    /* Some of the concurrent ones ran in one batch: fewer batches of 1 than requests. */
    const char *b1 = strstr(r.body, "xvlm_batch_size_bucket{le=\"1\"} "), *cnt = strstr(r.body, "xvlm_batch_size_count ");
    const char *sum = strstr(r.body, "xvlm_batch_size_sum ");
    if (b1 && cnt && sum) {
        long ones = atol(b1 + strlen("xvlm_batch_size_bucket{le=\"1\"} ")), jobs = atol(sum + 20);
        CHECK(ones < jobs, "micro-batching: %ld batches of one for %ld requests", ones, jobs);
    }
    xv_http_response_free(&r);
}

static void test_plain_routes(void) {
    xv_http_response r;
    xv_http(g_port, "GET", "/health", NULL, NULL, 0, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"status\":\"ok\""), "health: %d %s", r.status, r.body);
    xv_http_response_free(&r);
    xv_http(g_port, "GET", "/", NULL, NULL, 0, &r);
    CHECK(r.status == 200 && strstr(r.headers, "text/html") && strstr(r.body, "<html"), "the page: %d", r.status);
    xv_http_response_free(&r);
    xv_http(g_port, "GET", "/v1/match", NULL, NULL, 0, &r);
    CHECK(r.status == 405 && strstr(r.body, "\"error\""), "GET /v1/match: %d %s", r.status, r.body);
    xv_http_response_free(&r);
    xv_http_post_json(g_port, "/v1/nothing", "{}", &r);
    CHECK(r.status == 404 && strstr(r.body, "\"code\":404"), "POST /v1/nothing: %d %s", r.status, r.body);
    xv_http_response_free(&r);
    cJSON *e = post("/v1/match", "{\"image\": \"img0.jpg\"}", 400);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "error"), "message"), "an error has a message");
    cJSON_Delete(e);
}

/* The key from --api-key-file: without it 401, with it served (by two
 * workers, without batching); then SIGTERM while a request is half sent: the
 * request is still answered. */
static void test_key_and_shutdown(const char *base_args) {
    char key_path[400], args[2048];
    snprintf(key_path, sizeof key_path, "%s/key.txt", W.dir);
    xv_test_write_file(key_path, "s3cret-key-0123\n");
    snprintf(args, sizeof args, "%s --api-key-file '%s' --workers 2 --batch 1", base_args, key_path);
    xv_test_server s;
    if (!xv_test_server_start(&s, args)) {
        CHECK(0, "the server with a key did not start");
        return;
    }
    const char *body = "{\"image\": \"img0.jpg\", \"text\": \"two blue circles\"}";
    xv_http_response r;
    xv_http_post_json(s.port, "/v1/match", body, &r);
    CHECK(r.status == 401, "no key: %d", r.status);
    xv_http_response_free(&r);
    xv_http(s.port, "POST", "/v1/match", "Content-Type: application/json\r\nAuthorization: Bearer s3cret-key-0124\r\n",
            body, strlen(body), &r);
    CHECK(r.status == 401, "a wrong key: %d", r.status);
    xv_http_response_free(&r);
    xv_http(s.port, "POST", "/v1/match", "Content-Type: application/json\r\nAuthorization: Bearer s3cret-key-0123\r\n",
            body, strlen(body), &r);
    CHECK(r.status == 200, "the key: %d %s", r.status, r.body);
    xv_http_response_free(&r);

    int fd = xv_http_connect(s.port);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/match HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: s3cret-key-0123\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      strlen(body));
    CHECK(fd >= 0 && write(fd, head, (size_t)hn) == hn && write(fd, body, 10) == 10, "a request half sent");
    usleep(200 * 1000);
    kill(s.pid, SIGTERM);
    usleep(200 * 1000);
    CHECK(write(fd, body + 10, strlen(body) - 10) == (ssize_t)(strlen(body) - 10), "the rest sent after SIGTERM");
    char answer[2048] = {0};
    size_t got = 0;
    ssize_t n;
    while (got + 1 < sizeof answer && (n = read(fd, answer + got, sizeof answer - 1 - got)) > 0) got += (size_t)n;
    close(fd);
    CHECK(!strncmp(answer, "HTTP/1.1 200", 12) && strstr(answer, "\"logit\""), "in flight at SIGTERM: %s", answer);
    int ws = 0;
    CHECK(waitpid(s.pid, &ws, 0) == s.pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "exit 0 after SIGTERM");
    s.pid = -1;
    xv_test_server_stop(&s);
}

int main(void) {
    if (!getenv("XV_BIN")) return xv_test_skip("$XV_BIN not set");
    if (!xv_test_serve_world_make(&W, "serve_api", 5)) return xv_test_finish("test_serve_api");
    char args[1200];
    xv_test_serve_world_args(&W, args, sizeof args);
    xv_test_server s;
    char batched[1400];
    snprintf(batched, sizeof batched, "%s --batch 8 --batch-wait-ms 20", args);
    if (xv_test_server_start(&s, batched)) {
        g_port = s.port;
        test_plain_routes();
        test_match(0);
        test_match(4);
        test_ground();
        test_search_text();
        test_search_image();
        test_upload();
        test_embed();
        test_concurrent();
        CHECK(xv_test_server_stop(&s) == 0, "the server exits 0 on SIGTERM");
    } else {
        CHECK(0, "the server did not start");
    }
    test_key_and_shutdown(args);
    xv_test_remove_dir(W.dir);
    return xv_test_finish("test_serve_api");
}
