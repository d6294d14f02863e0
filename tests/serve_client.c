/* Loopback HTTP client and the server child process (serve_client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve_client.h"
#include "testutil.h"

int xv_http_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n, len -= (size_t)n;
    }
    return true;
}

/* Reads until the server closes; splits status line, headers and body. */
static void read_answer(int fd, xv_http_response *out) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !end) {
        out->body = buf;
        out->len = len;
        out->headers = strdup("");
        return;
    }
    out->status = atoi(buf + 9);
    *end = 0;
    out->headers = strdup(buf);
    out->len = len - (size_t)(end + 4 - buf);
    out->body = malloc(out->len + 1);
    memcpy(out->body, end + 4, out->len);
    out->body[out->len] = 0;
    free(buf);
}

int xv_http(int port, const char *method, const char *path, const char *headers, const void *body, size_t len,
            xv_http_response *out) {
    *out = (xv_http_response){0};
    int fd = xv_http_connect(port);
    if (fd < 0) return -1;
    char head[2048];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     headers ? headers : "");
    if (body) n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    /* The server may answer (413) and close before the whole body is sent. */
    if (send_all(fd, head, (size_t)n) && body) send_all(fd, body, len);
    read_answer(fd, out);
    close(fd);
    return 0;
}

int xv_http_post_json(int port, const char *path, const char *json, xv_http_response *out) {
    return xv_http(port, "POST", path, "Content-Type: application/json\r\n", json, strlen(json), out);
}

void xv_http_response_free(xv_http_response *r) {
    free(r->body);
    free(r->headers);
    *r = (xv_http_response){0};
}

bool xv_test_server_start(xv_test_server *s, const char *args) {
    *s = (xv_test_server){.pid = -1, .out_fd = -1};
    const char *bin = getenv("XV_BIN");
    if (!bin) {
        fprintf(stderr, "xv_test_server_start: $XV_BIN is not set\n");
        return false;
    }
    size_t cl = strlen(bin) + strlen(args) + 64;
    char *cmd = malloc(cl);
    snprintf(cmd, cl, "exec '%s' serve --port 0 %s", bin, args);
    fprintf(stderr, "+ %s\n", cmd);
    int p[2];
    if (pipe(p) != 0) {
        free(cmd);
        return false;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    close(p[1]);
    s->pid = pid;
    s->out_fd = p[0];
    /* The first line says where it listens. */
    char line[512];
    size_t len = 0;
    while (len + 1 < sizeof line) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 60000) <= 0) break;
        ssize_t n = read(p[0], line + len, 1);
        if (n <= 0) break;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = 0;
    const char *colon = strrchr(line, ':');
    if (!strstr(line, "listening on http://") || !colon) {
        fprintf(stderr, "xv_test_server_start: the server did not start (said: \"%s\")\n", line);
        xv_test_server_stop(s);
        return false;
    }
    s->port = atoi(colon + 1);
    return s->port > 0;
}

int xv_test_server_stop(xv_test_server *s) {
    int status = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int ws;
        if (waitpid(s->pid, &ws, 0) == s->pid && WIFEXITED(ws)) status = WEXITSTATUS(ws);
    }
    if (s->out_fd >= 0) close(s->out_fd);
    s->pid = -1;
    s->out_fd = -1;
    return status;
}

bool xv_test_serve_world_make(xv_test_serve_world *w, const char *stem, int n) {
    *w = (xv_test_serve_world){.n_images = n};
    if (!xv_test_scratch_dir(stem, w->dir, sizeof w->dir)) return false;
    snprintf(w->model, sizeof w->model, "%s/model", w->dir);
    snprintf(w->images, sizeof w->images, "%s/images", w->dir);
    snprintf(w->index, sizeof w->index, "%s/images.index", w->dir);
    bool ok = mkdir(w->model, 0755) == 0 && mkdir(w->images, 0755) == 0 && xv_test_tiny_model_dir(w->model, 11, true);
    for (int i = 0; ok && i < n; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/img%d.jpg", w->images, i);
        ok = xv_test_tiny_image(path, 40 + 13 * i, 70 - 7 * (i % 5), i);
    }
    char args[1200];
    snprintf(args, sizeof args, "--model '%s' --images '%s' --out '%s' --tokens f32 --threads 1", w->model, w->images,
             w->index);
    int rc = ok ? xv_test_cli_status(w->dir, "index", args, NULL, 0) : -1;
    CHECK(ok && rc == 0, "the served world in %s (xvlm index exit %d)", w->dir, rc);
    return ok && rc == 0;
}

void xv_test_serve_world_args(const xv_test_serve_world *w, char *out, size_t cap) {
    snprintf(out, cap, "--model '%s' --index '%s' --image-root '%s' --threads 1", w->model, w->index, w->images);
}
