/* Training checkpoints: round trip, keep-last-K, interrupted saves, corrupt files. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/safetensors.h"
#include "testutil.h"
#include "train/checkpoint.h"

/* A small model's worth of state, in one place. */
typedef struct {
    xv_params ps;
    xv_adamw opt;
    xv_lr_schedule sched;
    int64_t step, epoch, data_pos, region_pos;
    xv_rng data_rng, mask_rng;
    xv_ckpt_counter counters[2];
    xv_ckpt_rng rngs[2];
    xv_train_state st;
} world;

static void world_init(world *w, int64_t dim0) {
    memset(w, 0, sizeof *w);
    xv_params_init(&w->ps);
    xv_tensor *a = xv_params_add(&w->ps, "text_encoder.bert.embeddings.word_embeddings.weight",
                                 (const int64_t[]){dim0, 7}, 2);
    xv_params_add(&w->ps, "text_encoder.bert.embeddings.LayerNorm.weight", (const int64_t[]){7}, 1);
    xv_params_add(&w->ps, "temp", (const int64_t[]){1}, 0); /* a scalar */
    xv_params_alias(&w->ps, "text_encoder.cls.predictions.decoder.weight", a); /* tied: saved once */
    for (int i = 0; i < w->ps.n; i++) w->ps.items[i]->grad = calloc((size_t)w->ps.items[i]->numel, sizeof(float));
    xv_adamw_config cfg = xv_adamw_default();
    xv_adamw_init(&w->opt, &w->ps, &cfg, NULL);
    xv_schedule_init(&w->sched, 100, 10, false);
    w->counters[0] = (xv_ckpt_counter){"data.general", &w->data_pos};
    w->counters[1] = (xv_ckpt_counter){"data.region", &w->region_pos};
    w->rngs[0] = (xv_ckpt_rng){"data", &w->data_rng};
    w->rngs[1] = (xv_ckpt_rng){"mask", &w->mask_rng};
    w->st = (xv_train_state){.params = &w->ps, .opt = &w->opt, .sched = &w->sched, .step = &w->step,
                             .epoch = &w->epoch, .counters = w->counters, .n_counters = 2, .rngs = w->rngs,
                             .n_rngs = 2, .config = "{\"lr\": 1e-4, \"batch_size\": 128}"};
}

static void world_free(world *w) {
    xv_adamw_free(&w->opt);
    xv_params_free(&w->ps);
}

/* Some training-like history: random values everywhere, a few optimiser steps. */
static void world_advance(world *w, uint64_t seed, int updates) {
    for (int i = 0; i < w->ps.n; i++) xv_test_fill_uniform(w->ps.items[i]->data, w->ps.items[i]->numel, -1, 1, seed + (uint64_t)i);
    for (int u = 0; u < updates; u++) {
        for (int i = 0; i < w->ps.n; i++)
            xv_test_fill_uniform(w->ps.items[i]->grad, w->ps.items[i]->numel, -1, 1, seed * 100 + (uint64_t)(u * 7 + i));
        xv_adamw_step(&w->opt, xv_schedule_factor(&w->sched));
        xv_schedule_step(&w->sched);
    }
    w->step += updates;
    w->epoch = w->step / 3;
    w->data_pos = 128 * w->step + 5;
    w->region_pos = 48 * w->step + 1;
    xv_rng_seed(&w->data_rng, seed);
    xv_rng_seed(&w->mask_rng, seed + 1);
    for (int k = 0; k < (int)(seed % 13); k++) xv_rng_u32(&w->mask_rng);
}

/* Bitwise equality of everything the checkpoint covers. */
static bool world_equal(const world *a, const world *b) {
    bool eq = a->ps.n == b->ps.n && a->opt.n == b->opt.n;
    for (int i = 0; eq && i < a->ps.n; i++) {
        size_t bytes = sizeof(float) * (size_t)a->ps.items[i]->numel;
        eq = !strcmp(a->ps.items[i]->name, b->ps.items[i]->name) &&
             !memcmp(a->ps.items[i]->data, b->ps.items[i]->data, bytes) &&
             !memcmp(a->opt.slots[i].m, b->opt.slots[i].m, bytes) &&
             !memcmp(a->opt.slots[i].v, b->opt.slots[i].v, bytes) && a->opt.slots[i].step == b->opt.slots[i].step;
    }
    return eq && a->step == b->step && a->epoch == b->epoch && a->data_pos == b->data_pos &&
           a->region_pos == b->region_pos && !memcmp(&a->sched, &b->sched, sizeof a->sched) &&
           !memcmp(&a->data_rng, &b->data_rng, sizeof a->data_rng) &&
           !memcmp(&a->mask_rng, &b->mask_rng, sizeof a->mask_rng);
}

static char g_dir[64];

static int count_checkpoints(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, "checkpoint_", 11) == 0 && strstr(e->d_name, ".tmp") == NULL;
    if (d) closedir(d);
    return n;
}

/* Remove every file of the test directory. */
static void clear_dir(void) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void test_round_trip(void) {
    world a, b;
    world_init(&a, 11);
    world_init(&b, 11);
    world_advance(&a, 42, 3);
    world_advance(&b, 7, 1); /* b holds other values, which the load must replace */
    char path[256];
    CHECK_OK(xv_ckpt_save(g_dir, 0, &a.st, path, sizeof path));
    CHECK(strstr(path, "checkpoint_000000003.safetensors") != NULL, "file name %s", path);
    char *config = NULL;
    CHECK_OK(xv_ckpt_load(path, &b.st, &config));
    CHECK(world_equal(&a, &b), "restored state differs");
    CHECK(config && !strcmp(config, a.st.config), "config metadata %s", config ? config : "(null)");
    free(config);
    /* The file carries the official names and the optimiser state by name. */
    xv_st_file *f;
    CHECK_OK(xv_st_open(path, &f));
    if (f) {
        CHECK(xv_st_find(f, "text_encoder.bert.embeddings.word_embeddings.weight") &&
                  xv_st_find(f, "optim.m.temp") && xv_st_find(f, "optim.v.temp") && xv_st_find(f, "optim.step.temp") &&
                  xv_st_find(f, "train.rng.mask") && xv_st_find(f, "train.counter.data.general") &&
                  xv_st_find(f, "train.sched.pos"),
              "expected tensor names");
        CHECK(!xv_st_find(f, "text_encoder.cls.predictions.decoder.weight"), "tied alias saved once");
        CHECK(xv_st_count(f) == 3 + 3 * 3 + 2 + 3 + 2 + 2, "tensor count %d", xv_st_count(f));
        xv_st_close(f);
    }
    /* Saving without an optimiser and loading into one: the optimiser state is missing. */
    a.st.opt = NULL;
    CHECK_OK(xv_ckpt_write(path, &a.st));
    CHECK(xv_ckpt_load(path, &b.st, NULL) == XV_ERR_MISSING && strstr(xv_error_message(), "optim.m."),
          "missing optimiser state named: %s", xv_error_message());
    a.st.opt = &a.opt;
    unlink(path);
    world_free(&a);
    world_free(&b);
}

static void test_keep_last(void) {
    world a;
    world_init(&a, 3);
    for (int s = 1; s <= 5; s++) {
        world_advance(&a, (uint64_t)s, 1);
        CHECK_OK(xv_ckpt_save(g_dir, 2, &a.st, NULL, 0));
    }
    char p[256];
    snprintf(p, sizeof p, "%s/checkpoint_000000004.safetensors", g_dir);
    CHECK(count_checkpoints() == 2 && file_exists(p), "keep last 2: %d files", count_checkpoints());
    char latest[256];
    CHECK_OK(xv_ckpt_latest(g_dir, latest, sizeof latest));
    CHECK(strstr(latest, "checkpoint_000000005.safetensors") != NULL, "latest %s", latest);
    /* A run resumed from an older step keeps the file it just wrote. */
    a.step = 2;
    CHECK_OK(xv_ckpt_save(g_dir, 2, &a.st, NULL, 0));
    snprintf(p, sizeof p, "%s/checkpoint_000000002.safetensors", g_dir);
    CHECK(count_checkpoints() == 2 && file_exists(p), "the new (lower-step) file stays");
    clear_dir();
    world_free(&a);
}

static void die_on_xfsz(int sig) {
    (void)sig;
    raise(SIGKILL); /* the process dies in the middle of write() */
}

/* A save killed mid-way (SIGKILL from inside the writer's write(), via the
 * file-size limit) and a save that fails leave the previous checkpoint whole. */
static void test_interrupted_save(void) {
    world a, b;
    world_init(&a, 400); /* ~11 KB per tensor, ~45 KB per file: well past the 8 KB limit below */
    world_init(&b, 400);
    world_advance(&a, 9, 2);
    a.step = 100;
    char good[256];
    CHECK_OK(xv_ckpt_save(g_dir, 3, &a.st, good, sizeof good));
    world saved;
    world_init(&saved, 400);
    CHECK_OK(xv_ckpt_load(good, &saved.st, NULL));

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit lim = {8192, 8192};
        setrlimit(RLIMIT_FSIZE, &lim);
        signal(SIGXFSZ, die_on_xfsz);
        world_advance(&a, 10, 1); /* step 101, other values */
        xv_ckpt_save(g_dir, 1, &a.st, NULL, 0);
        _exit(0); /* not reached when the limit hits */
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    CHECK(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL, "writer killed mid-write (status %d)", wst);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/checkpoint_000000101.safetensors.tmp", g_dir);
    struct stat sb;
    CHECK(stat(tmp, &sb) == 0 && sb.st_size == 8192, "partial temp file left by the killed writer");
    char latest[256];
    CHECK_OK(xv_ckpt_latest(g_dir, latest, sizeof latest));
    CHECK(!strcmp(latest, good), "latest is still the previous checkpoint: %s", latest);
    CHECK_OK(xv_ckpt_load(latest, &b.st, NULL));
    CHECK(world_equal(&b, &saved), "previous checkpoint intact after the kill");

    /* Same limit with SIGXFSZ ignored: write() fails, the writer reports and cleans up. */
    pid = fork();
    if (pid == 0) {
        struct rlimit lim = {8192, 8192};
        setrlimit(RLIMIT_FSIZE, &lim);
        signal(SIGXFSZ, SIG_IGN);
        world_advance(&a, 11, 1);
        xv_status s = xv_ckpt_save(g_dir, 1, &a.st, NULL, 0);
        _exit(s == XV_ERR_IO && strstr(xv_error_message(), "saving checkpoint") ? 0 : 1);
    }
    waitpid(pid, &wst, 0);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "failed write reported as an I/O error");
    CHECK(!file_exists(tmp) && count_checkpoints() == 1, "temp file removed, no pruning after a failure");
    CHECK_OK(xv_ckpt_load(good, &b.st, NULL));
    CHECK(world_equal(&b, &saved), "previous checkpoint intact after a failed write");

    /* A directory that does not exist. */
    CHECK(xv_ckpt_save("/nonexistent-xvlm-dir", 1, &a.st, NULL, 0) == XV_ERR_IO, "missing dir refused");
    /* A later save of the interrupted step succeeds and replaces the leftovers. */
    world_advance(&a, 10, 1);
    CHECK_OK(xv_ckpt_save(g_dir, 1, &a.st, NULL, 0));
    CHECK(count_checkpoints() == 1 && !file_exists(good), "keep 1 after the retry");
    clear_dir();
    world_free(&a);
    world_free(&b);
    world_free(&saved);
}

static void *read_all(const char *path, size_t *n) {
    uint8_t *d = NULL;
    return xv_fs_read_file(path, INT64_C(1) << 30, &d, n) == XV_OK ? d : NULL;
}

static void write_all(const char *path, const void *buf, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(buf, 1, n, fp);
        fclose(fp);
    }
}

static void test_corrupt(void) {
    world a, b, keep;
    world_init(&a, 11);
    world_init(&b, 11);
    world_init(&keep, 11);
    world_advance(&a, 5, 2);
    world_advance(&b, 6, 1);
    world_advance(&keep, 6, 1); /* keep == b: b must stay like this after every refusal */
    char path[256], bad[256];
    CHECK_OK(xv_ckpt_save(g_dir, 0, &a.st, path, sizeof path));
    snprintf(bad, sizeof bad, "%s/bad.safetensors", g_dir);
    size_t n = 0;
    unsigned char *orig = read_all(path, &n);
    CHECK(orig && n > 64, "read back");
    if (!orig) return;
    unsigned char *buf = malloc(n);
    struct {
        const char *what;
        size_t len;    /* bytes kept */
        long flip;     /* byte to alter (-1: none) */
        xv_status code;
        const char *needle;
    } cases[] = {
        {"one data byte flipped", n, (long)n - 3, XV_ERR_FORMAT, "checksum mismatch"},
        {"truncated", n - 100, -1, XV_ERR_FORMAT, "bad.safetensors"},
        {"header length garbage", n, 3, XV_ERR_FORMAT, "bad.safetensors"},
        {"empty file", 0, -1, XV_ERR_FORMAT, "bad.safetensors"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(buf, orig, n);
        if (cases[c].flip >= 0) buf[cases[c].flip] ^= 0x5A;
        write_all(bad, buf, cases[c].len);
        xv_status s = xv_ckpt_load(bad, &b.st, NULL);
        printf("refused (%s): %s\n", cases[c].what, xv_error_message());
        CHECK(s == cases[c].code && strstr(xv_error_message(), cases[c].needle) &&
                  strstr(xv_error_message(), "loading checkpoint"),
              "%s: status %d, message: %s", cases[c].what, (int)s, xv_error_message());
        CHECK(world_equal(&b, &keep), "%s: state changed by a refused load", cases[c].what);
    }
    CHECK(xv_ckpt_load("/nonexistent-xvlm-dir/x.safetensors", &b.st, NULL) == XV_ERR_MISSING, "absent file");

    /* A valid safetensors file that is not a checkpoint. */
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    float x = 1;
    CHECK_OK(xv_st_writer_add(w, "temp", XV_ST_F32, NULL, 0, &x, false));
    CHECK_OK(xv_st_writer_write(w, bad));
    xv_st_writer_free(w);
    CHECK(xv_ckpt_load(bad, &b.st, NULL) == XV_ERR_FORMAT &&
              strstr(xv_error_message(), "not an xvlm training checkpoint"),
          "plain safetensors: %s", xv_error_message());

    /* A checkpoint of another model: shape, missing and unknown tensors named. */
    world other;
    world_init(&other, 12);
    CHECK(xv_ckpt_load(path, &other.st, NULL) == XV_ERR_SHAPE &&
              strstr(xv_error_message(), "word_embeddings.weight") && strstr(xv_error_message(), "[12,7]"),
          "shape mismatch: %s", xv_error_message());
    world_free(&other);
    world_init(&other, 11);
    xv_params_add(&other.ps, "itm_head.0.weight", (const int64_t[]){2}, 1);
    CHECK(xv_ckpt_load(path, &other.st, NULL) == XV_ERR_MISSING && strstr(xv_error_message(), "itm_head.0.weight"),
          "missing parameter: %s", xv_error_message());
    world_free(&other);
    CHECK_OK(xv_ckpt_write(bad, &a.st));
    world_init(&other, 11);
    xv_adamw_free(&other.opt);
    other.st.opt = NULL;
    xv_tensor *temp = xv_params_find(&other.ps, "temp");
    /* Drop "temp" from this model: the file's temp is then unknown. */
    other.ps.n--;
    CHECK(other.ps.items[other.ps.n] == temp, "temp is last");
    CHECK(xv_ckpt_load(bad, &other.st, NULL) == XV_ERR_FORMAT && strstr(xv_error_message(), "temp is not a parameter"),
          "unknown tensor: %s", xv_error_message());
    other.ps.n++;
    world_free(&other);
    CHECK(world_equal(&b, &keep), "b untouched");
    clear_dir();
    free(buf);
    free(orig);
    world_free(&a);
    world_free(&b);
    world_free(&keep);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_ckpt_test", g_dir, sizeof g_dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_round_trip();
    test_keep_last();
    test_interrupted_save();
    test_corrupt();
    rmdir(g_dir);
    return xv_test_finish("checkpoint");
}
