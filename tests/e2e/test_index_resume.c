/* `xvlm index` on 1,000 small images (one thread: the tiny model's ops are
 * too small to share, and the runs stay fast on a busy machine): shows progress, survives SIGKILL, stops
 * on SIGTERM within seconds (exit status 143, saying so, no temp file left, every chunk complete), and a
 * rerun continues from the finished chunks without encoding them again (the
 * counts come from the command's summary), skipping a missing and a corrupt
 * image once; the resumed index is byte-identical in features, sizes and paths
 * to one built without interruption. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "core/fs.h"
#include "io/safetensors.h"

#define N_IMAGES 1000
#define BATCH 16
#define MISSING_AT 5   /* list positions of the two bad entries */
#define CORRUPT_AT 500

static char g_dir[64];

static int count_chunks(const char *parts) {
    DIR *d = opendir(parts);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += !strncmp(e->d_name, "chunk-", 6) && l > 12 && !strcmp(e->d_name + l - 12, ".safetensors");
    }
    closedir(d);
    return n;
}

/* Whether the parts folder holds a temp file (a chunk written halfway). */
static bool has_temp_file(const char *parts) {
    DIR *d = opendir(parts);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) found |= strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return found;
}

/* Start `xvlm index`, send it `sig` once `kill_at` chunks exist; returns the
 * chunks present after it ended (-1 if it finished first), its wait status in
 * *status and the seconds from the signal to its end in *took. */
static int run_and_signal(const char *bin, char *const argv[], const char *parts, int kill_at, int sig,
                          const char *err_path, int *status, double *took) {
    pid_t pid = fork();
    if (pid == 0) {
        FILE *e = freopen(err_path, "w", stderr);
        FILE *o = freopen("/dev/null", "w", stdout);
        (void)e;
        (void)o;
        execv(bin, argv);
        _exit(127);
    }
    for (;;) {
        if (waitpid(pid, status, WNOHANG) == pid) return -1; /* finished before the signal */
        if (count_chunks(parts) >= kill_at) break;
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
    const double t0 = xv_monotonic_seconds();
    kill(pid, sig);
    waitpid(pid, status, 0);
    *took = xv_monotonic_seconds() - t0;
    return count_chunks(parts);
}

static long long field(const char *s, const char *key) {
    const char *p = s ? strstr(s, key) : NULL;
    return p ? atoll(p + strlen(key)) : -1;
}

static int same_tensor(const xv_st_file *a, const xv_st_file *b, const char *name) {
    const xv_st_tensor *x = xv_st_find(a, name), *y = xv_st_find(b, name);
    return x && y && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
}

int main(void) {
    const char *bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN not set");
    CHECK(xv_test_scratch_dir("xv_index_resume", g_dir, sizeof g_dir), "mkdtemp");
    char model[128], list[128], index[128], parts[160], clean[128], err[128], path[192];
    snprintf(model, sizeof model, "%s/model", g_dir);
    snprintf(list, sizeof list, "%s/list.txt", g_dir);
    snprintf(index, sizeof index, "%s/resumed.index", g_dir);
    snprintf(parts, sizeof parts, "%s.parts", index);
    snprintf(clean, sizeof clean, "%s/straight.index", g_dir);
    snprintf(err, sizeof err, "%s/stderr1.txt", g_dir);
    mkdir(model, 0755);
    if (!xv_test_tiny_model_dir(model, 3, 1)) return xv_test_finish("test_index_resume");
    snprintf(path, sizeof path, "%s/img", g_dir);
    mkdir(path, 0755);
    FILE *f = fopen(list, "w");
    int made = 0;
    for (int i = 0, k = 0; k < N_IMAGES + 2; k++) {
        if (k == MISSING_AT) {
            fprintf(f, "img/missing.jpg\n");
        } else if (k == CORRUPT_AT) {
            snprintf(path, sizeof path, "%s/img/corrupt.jpg", g_dir);
            FILE *c = fopen(path, "wb");
            fputs("\x89PNG\r\n\x1a\n truncated", c);
            fclose(c);
            fprintf(f, "img/corrupt.jpg\n");
        } else {
            snprintf(path, sizeof path, "%s/img/%04d.jpg", g_dir, i);
            /* Large enough that decoding and resizing take a while: the kill
             * must land mid-run. */
            made += xv_test_tiny_image(path, 96 + i % 17, 72 + (i * 7) % 13, i);
            fprintf(f, "img/%04d.jpg\n", i++);
        }
    }
    fclose(f);
    CHECK(made == N_IMAGES, "%d images written", made);

    char batch[8];
    snprintf(batch, sizeof batch, "%d", BATCH);
    char *const argv[] = {(char *)bin, "index", "--model", model, "--images", list, "--out", index,
                          "--batch", batch, "--threads", "1", NULL};
    int status = 0;
    double took = 0;
    int chunks = run_and_signal(bin, argv, parts, 3, SIGKILL, err, &status, &took);
    CHECK(chunks >= 3, "interrupted after %d chunks (the run must not finish before the kill)", chunks);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "killed by SIGKILL");
    char *e1 = xv_test_read_file(err, NULL);
    CHECK(e1 && strstr(e1, "images (") && strstr(e1, "missing.jpg"), "progress and the skip warning shown: %s",
          e1 ? e1 : "");
    free(e1);
    CHECK(access(index, F_OK) != 0, "no index before completion");

    /* SIGTERM: the run resumes the killed one, then stops between chunks. */
    const int killed_chunks = chunks;
    chunks = run_and_signal(bin, argv, parts, killed_chunks + 2, SIGTERM, err, &status, &took);
    char *et = xv_test_read_file(err, NULL);
    CHECK(chunks >= killed_chunks + 2 && WIFEXITED(status) && WEXITSTATUS(status) == 143 && took < 5 && et &&
              strstr(et, "by SIGTERM: interrupted with") && strstr(et, "the same command resumes"),
          "SIGTERM after %d chunks: exit 143 (status %d) in %.2f s (< 5), saying so: %s", chunks, status, took,
          et ? et : "");
    free(et);
    CHECK(!has_temp_file(parts) && access(index, F_OK) != 0, "no temp file and no index after SIGTERM");

    char cmd[1024], out2[128], err2[128];
    /* Another setting cannot continue this run. */
    snprintf(err2, sizeof err2, "%s/stderr_other.txt", g_dir);
    snprintf(cmd, sizeof cmd, "'%s' index --model '%s' --images '%s' --out '%s' --tokens none --threads 1 2> '%s'", bin,
             model, list, index, err2);
    CHECK(xv_test_run(cmd) == 1, "another --tokens setting refused");
    char *eo = xv_test_read_file(err2, NULL);
    CHECK(eo && strstr(eo, "delete that folder"), "says why: %s", eo ? eo : "");
    free(eo);

    /* Rerun: continue, encode only what is left. */
    snprintf(out2, sizeof out2, "%s/stdout2.txt", g_dir);
    snprintf(err2, sizeof err2, "%s/stderr2.txt", g_dir);
    snprintf(cmd, sizeof cmd, "'%s' index --model '%s' --images '%s' --out '%s' --batch %d --threads 1 > '%s' 2> '%s'", bin, model,
             list, index, BATCH, out2, err2);
    CHECK(xv_test_run(cmd) == 0, "resumed run succeeds");
    char *o2 = xv_test_read_file(out2, NULL), *e2 = xv_test_read_file(err2, NULL);
    int done_inputs = chunks * BATCH;
    long long skipped_before = (done_inputs > MISSING_AT) + (done_inputs > CORRUPT_AT);
    long long reused = field(o2, "reused "), encoded = field(o2, "encoded "), skipped = field(o2, "skipped ");
    printf("killed after %d chunks; rerun: %s", chunks, o2 ? o2 : "(no output)\n");
    CHECK(reused == done_inputs - skipped_before, "reused %lld = images of the %d finished chunks (%lld)", reused,
          chunks, done_inputs - skipped_before);
    CHECK(encoded == N_IMAGES - reused, "encoded only the rest: %lld = %d - %lld", encoded, N_IMAGES, reused);
    CHECK(skipped == 2 && field(o2, "indexed ") == N_IMAGES, "2 skipped, %d indexed", N_IMAGES);
    char want[64];
    snprintf(want, sizeof want, "resuming: %d of %d", done_inputs, N_IMAGES + 2);
    CHECK(e2 && strstr(e2, want), "rerun says '%s': %s", want, e2 ? e2 : "");
    CHECK(access(parts, F_OK) != 0, "parts folder removed at the end");
    free(o2);
    free(e2);

    /* The same index straight through (same batches: a BLAS call on another
     * batch size may round differently in the last bit). */
    snprintf(cmd, sizeof cmd, "'%s' index --model '%s' --images '%s' --out '%s' --batch %d --threads 1 > /dev/null 2>&1", bin, model,
             list, clean, BATCH);
    CHECK(xv_test_run(cmd) == 0, "uninterrupted run");
    xv_st_file *a = NULL, *b = NULL;
    CHECK_OK(xv_st_open(index, &a));
    CHECK_OK(xv_st_open(clean, &b));
    if (a && b) {
        CHECK(same_tensor(a, b, "features") && same_tensor(a, b, "sizes") && same_tensor(a, b, "paths") &&
                  same_tensor(a, b, "path_offsets"),
              "resumed index = uninterrupted index");
        const xv_st_tensor *ft = xv_st_find(a, "features");
        CHECK(ft && ft->shape[0] == N_IMAGES, "%d entries", N_IMAGES);
    }
    xv_st_close(a);
    xv_st_close(b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!xv_test_failures) xv_test_run(cmd);
    return xv_test_finish("test_index_resume");
}
