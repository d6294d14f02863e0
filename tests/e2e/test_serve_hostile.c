/* `xvlm serve` under hostile requests: a huge body (declared and chunked),
 * invalid JSON, bad base64, a PNG whose header claims 60000 x 60000 pixels,
 * paths climbing out of the image root (.., absolute, a symbolic link), an
 * over-long text, and a slow client holding a connection open. Each gets a
 * 4xx with a JSON error naming the problem (or is cut off), and the server
 * keeps answering other requests throughout. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/fs.h"
#include "serve_client.h"
#include "testutil.h"

static xv_test_serve_world W;
static int g_port;

/* The server still answers a good request. */
static void still_serving(const char *after) {
    xv_http_response r;
    xv_http_post_json(g_port, "/v1/match", "{\"image\": \"img0.jpg\", \"text\": \"two blue circles\"}", &r);
    CHECK(r.status == 200 && strstr(r.body, "\"logit\""), "after %s the server answers: %d %s", after, r.status, r.body);
    xv_http_response_free(&r);
}

/* POST `body`; expect `status` and an error message containing `says`. */
static void expect_refusal(const char *what, const char *headers, const char *body, size_t len, int status,
                           const char *says) {
    xv_http_response r;
    xv_http(g_port, "POST", "/v1/match", headers ? headers : "Content-Type: application/json\r\n", body, len, &r);
    CHECK(r.status == status && strstr(r.body, "\"error\"") && strstr(r.body, says),
          "%s: status %d (expected %d), body %.300s (expected to mention \"%s\")", what, r.status, status, r.body, says);
    xv_http_response_free(&r);
    still_serving(what);
}

static void expect_json_refusal(const char *what, const char *json, int status, const char *says) {
    expect_refusal(what, NULL, json, strlen(json), status, says);
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG signature, an IHDR (valid CRC) claiming 60000 x 60000 RGB, an IDAT
 * and IEND: 57 bytes that would decode into 10 GB. */
static size_t bomb_png(uint8_t *out) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, sig, 8);
    put32(out + 8, 13);
    memcpy(out + 12, "IHDR", 4);
    put32(out + 16, 60000);
    put32(out + 20, 60000);
    out[24] = 8, out[25] = 2, out[26] = 0, out[27] = 0, out[28] = 0;
    put32(out + 29, crc32_of(out + 12, 17));
    for (int c = 0; c < 2; c++) { /* empty IDAT, then IEND */
        uint8_t *k = out + 33 + 12 * c;
        put32(k, 0);
        memcpy(k + 4, c ? "IEND" : "IDAT", 4);
        put32(k + 8, crc32_of(k + 4, 4));
    }
    return 57;
}

static void test_bodies(void) {
    /* Declared too large: refused from the headers, before the body is read. */
    char *big = calloc(1, 200000);
    memset(big, ' ', 199999);
    expect_refusal("a 200 kB body", NULL, big, 199999, 413, "larger than the limit");
    /* Chunked past the limit: cut off. */
    int fd = xv_http_connect(g_port);
    const char *head = "POST /v1/match HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Content-Type: application/json\r\n\r\n";
    CHECK(fd >= 0 && send(fd, head, strlen(head), MSG_NOSIGNAL) > 0, "chunked: connect");
    bool cut = false;
    for (int i = 0; i < 64 && !cut; i++) { /* 64 x 8 kB chunks = 512 kB */
        char chunk[8192 + 16];
        int n = snprintf(chunk, sizeof chunk, "2000\r\n");
        memset(chunk + n, 'x', 8192);
        memcpy(chunk + n + 8192, "\r\n", 2);
        cut = send(fd, chunk, (size_t)n + 8194, MSG_NOSIGNAL) < 0;
    }
    char answer[512] = {0};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t got = recv(fd, answer, sizeof answer - 1, 0);
    CHECK(cut || got <= 0 || !strncmp(answer, "HTTP/1.1 4", 10), "chunked 512 kB: cut off or 4xx (got %.60s)", answer);
    close(fd);
    still_serving("a chunked body past the limit");
    free(big);

    expect_json_refusal("invalid JSON", "{\"image\": \"img0.jpg\", \"text\": ", 400, "invalid JSON");
    expect_json_refusal("a JSON list", "[1, 2]", 400, "JSON object");
    expect_json_refusal("a number as text", "{\"image\": \"img0.jpg\", \"text\": 7}", 400, "must be a string");
    expect_json_refusal("bad base64", "{\"image_base64\": \"iVBORw0KGgo*AAAA\", \"text\": \"a red square\"}", 400,
                        "image_base64");
    expect_json_refusal("base64 of no image", "{\"image_base64\": \"aGVsbG8gd29ybGQ=\", \"text\": \"a red square\"}", 422,
                        "image_base64");
    char *long_text = malloc(5000);
    int n = snprintf(long_text, 5000, "{\"image\": \"img0.jpg\", \"text\": \"");
    memset(long_text + n, 'a', 3000);
    snprintf(long_text + n + 3000, 100, "\"}");
    expect_json_refusal("a 3000-byte text", long_text, 413, "longer than the limit");
    free(long_text);
    expect_refusal("a text body", "Content-Type: text/plain\r\n", "hello", 5, 400, "invalid JSON at byte 0");
}

static void test_pixel_bomb(void) {
    uint8_t png[64];
    size_t len = bomb_png(png);
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char b64[128], *o = b64;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)png[i] << 16 | (i + 1 < len ? (unsigned)png[i + 1] << 8 : 0) | (i + 2 < len ? png[i + 2] : 0);
        *o++ = A[v >> 18 & 63], *o++ = A[v >> 12 & 63];
        *o++ = i + 1 < len ? A[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? A[v & 63] : '=';
    }
    *o = 0;
    char body[512];
    snprintf(body, sizeof body, "{\"image_base64\": \"%s\", \"text\": \"a red square\"}", b64);
    expect_json_refusal("a 60000x60000 PNG (base64)", body, 422, "60000");
    /* The same as an upload. */
    char mp[1024];
    int hn = snprintf(mp, sizeof mp,
                      "--B0undary\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\na red square\r\n"
                      "--B0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"bomb.png\"\r\n\r\n");
    memcpy(mp + hn, png, len);
    int tn = snprintf(mp + hn + len, sizeof mp - hn - len, "\r\n--B0undary--\r\n");
    expect_refusal("a 60000x60000 PNG (upload)", "Content-Type: multipart/form-data; boundary=B0undary\r\n", mp,
                   (size_t)hn + len + (size_t)tn, 422, "60000");
    /* And as a file under the root. */
    char path[400];
    snprintf(path, sizeof path, "%s/bomb.png", W.images);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(png, 1, len, f) == len && fclose(f) == 0, "write %s", path);
    expect_json_refusal("a 60000x60000 PNG (path)", "{\"image\": \"bomb.png\", \"text\": \"a red square\"}", 422, "60000");
}

static void test_paths(void) {
    char outside[400], link[400];
    snprintf(outside, sizeof outside, "%s/outside.jpg", W.dir);
    CHECK(xv_test_tiny_image(outside, 32, 32, 1), "an image outside the root");
    snprintf(link, sizeof link, "%s/escape.jpg", W.images);
    CHECK(symlink(outside, link) == 0, "symlink %s", link);
    expect_json_refusal("../ out of the root", "{\"image\": \"../outside.jpg\", \"text\": \"a red square\"}", 403,
                        "outside");
    expect_json_refusal("../../etc/passwd", "{\"image\": \"../../../../../../etc/passwd\", \"text\": \"a red square\"}",
                        403, "outside");
    expect_json_refusal("an absolute path", "{\"image\": \"/etc/passwd\", \"text\": \"a red square\"}", 403, "");
    expect_json_refusal("a symlink out of the root", "{\"image\": \"escape.jpg\", \"text\": \"a red square\"}", 403,
                        "outside");
    expect_json_refusal("a missing file", "{\"image\": \"nothere.jpg\", \"text\": \"a red square\"}", 404, "nothere");
    /* The picture route holds to the same root. */
    const char *urls[] = {"/images/../outside.jpg", "/images/escape.jpg", "/images/%2e%2e/outside.jpg",
                          "/images//etc/passwd"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        xv_http_response r;
        xv_http(g_port, "GET", urls[i], NULL, NULL, 0, &r);
        CHECK(r.status >= 400 && r.status < 500 && !strstr(r.body, "root:x:"), "GET %s: %d", urls[i], r.status);
        xv_http_response_free(&r);
    }
}

/* A client that sends half its headers and waits: the others are served
 * meanwhile, and the server closes it after its time limit (2 s here). */
static void test_slow_client(void) {
    int fd = xv_http_connect(g_port);
    const char *part = "POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Ty";
    CHECK(fd >= 0 && send(fd, part, strlen(part), MSG_NOSIGNAL) > 0, "slow client: connect");
    still_serving("a slow client connected");
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    const double t0 = xv_monotonic_seconds();
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    const double waited = xv_monotonic_seconds() - t0;
    CHECK(n <= 0 && waited < 8, "slow client: closed by the server after %.1f s (recv %zd)", waited, n);
    close(fd);
    still_serving("a slow client was cut off");
}

/* A body trickled a few bytes a second, each within the idle timeout: cut
 * off once the request's time limit (2 s) has passed. */
static void test_trickled_body(void) {
    int fd = xv_http_connect(g_port);
    const char *head = "POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000\r\n\r\n{\"text\": \"";
    CHECK(fd >= 0 && send(fd, head, strlen(head), MSG_NOSIGNAL) > 0, "trickle: connect");
    const double t0 = xv_monotonic_seconds();
    bool closed = false;
    while (!closed && xv_monotonic_seconds() - t0 < 8) {
        usleep(500 * 1000);
        closed = send(fd, "aaaa", 4, MSG_NOSIGNAL) < 0;
        if (!closed) { /* the server may have closed: a read sees it */
            char c;
            ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
            closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        }
    }
    const double took = xv_monotonic_seconds() - t0;
    CHECK(closed && took < 6, "a trickled body is cut off after the time limit (closed %d after %.1f s)", closed, took);
    close(fd);
    still_serving("a trickled body");
}

int main(void) {
    if (!getenv("XV_BIN")) return xv_test_skip("$XV_BIN not set");
    if (!xv_test_serve_world_make(&W, "serve_hostile", 2)) return xv_test_finish("test_serve_hostile");
    char args[1200], limited[1500];
    xv_test_serve_world_args(&W, args, sizeof args);
    snprintf(limited, sizeof limited, "%s --max-body 65536 --max-pixels 1000000 --max-text 2048 --timeout 2", args);
    xv_test_server s;
    if (xv_test_server_start(&s, limited)) {
        g_port = s.port;
        test_bodies();
        test_pixel_bomb();
        test_paths();
        test_slow_client();
        test_trickled_body();
        xv_http_response r;
        xv_http(g_port, "GET", "/metrics", NULL, NULL, 0, &r);
        CHECK(strstr(r.body, "xvlm_errors_total{route=\"/v1/match\",class=\"4xx\"} ") &&
                  !strstr(r.body, "xvlm_errors_total{route=\"/v1/match\",class=\"4xx\"} 0\n"),
              "metrics count the refusals");
        xv_http_response_free(&r);
        CHECK(xv_test_server_stop(&s) == 0, "the server exits 0 on SIGTERM");
    } else {
        CHECK(0, "the server did not start");
    }
    xv_test_remove_dir(W.dir);
    return xv_test_finish("test_serve_hostile");
}
