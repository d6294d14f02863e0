/* `xvlm pretrain` resumes exactly, on a tiny X-VLM and a tiny generated world
 * (xvlm synth through the library; the real data loader with 2 image workers
 * and 1 region worker; bad lines added to both training files):
 * - N steps straight == N/2 steps, then --resume to N: the final checkpoints
 *   (parameters, AdamW moments and steps, schedule, random streams, loader
 *   positions) and the final model files are byte-identical, and the logs
 *   hold the same losses;
 * - the xvlm binary ($XV_BIN) killed with SIGKILL at random moments, then
 *   resumed each time with --resume, leaves only whole checkpoints (every one
 *   verifies) and ends byte-identical to the straight run;
 * - the bad data is skipped with a warning and its counters reach the log. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/threads.h"
#include "data/synth.h"
#include "testutil.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/pretrain_run.h"
#include "xvlm.h"

/* One thread (in process and for the binary): a model this small gains
 * nothing from a second one, and an OpenMP team spinning on a machine shared
 * with other tests (ctest -j) can make it many times slower. */
enum { N = 40, THREADS = 1 };
static char root[64];

static void path_of(char *buf, size_t n, const char *a, const char *b) { snprintf(buf, n, "%s/%s", a, b); }


static void append(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The generated world plus bad records, and the run's YAML. */
static void make_data(char *yaml, size_t n) {
    char data[256], p[512];
    path_of(data, sizeof data, root, "world");
    xv_synth_params sp = xv_synth_default_params();
    sp.seed = 5, sp.train_images = 40, sp.test_images = 1, sp.size = 48, sp.min_objects = sp.max_objects = 2;
    sp.flip_invariant = true, sp.threads = 1, sp.progress = false;
    xv_synth_stats stats;
    CHECK_OK(xv_synth_generate(&sp, data, &stats));
    path_of(p, sizeof p, data, "pretrain_captions.jsonl");
    append(p, "{\"image\": \"images/train_000001.jpg\", \"caption\": [\"a broken line\"\n"
              "{\"image\": \"images/no_such_file.jpg\", \"caption\": \"a missing image\"}\n");
    path_of(p, sizeof p, data, "pretrain_regions.jsonl");
    append(p, "{\"image\": \"images/train_000002.jpg\", \"elems\": [{\"bb\": [40, 40, 0, 9], \"caption\": \"flat\"}]}\n");
    path_of(yaml, n, root, "tiny.yaml");
    int vocab;
    FILE *f = xv_test_pretrain_yaml_open(data, "pretrain_", yaml, 40, &vocab);
    CHECK(vocab > 100, "vocab.txt has %d tokens", vocab);
    if (!f) return;
    fprintf(f,
            "images: {image_key: image, is_image_rpath: True, caption_key: caption, batch_size: 8, num_workers: 2}\n"
            "regions: {image_key: image, is_image_rpath: True, caption_key: caption, iter_perc: 0.5,\n"
            "          batch_size: 8, max_images: 4, max_regions: 3, min_perc_in_image: 0.5, num_workers: 1}\n");
    xv_test_tiny_pretrain_model_yaml(f, vocab);
    fputs("ckpt_frequent_step: 3\nckpt_frequent: 1\n"
          "optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
          "schedular: {sched: linear, lr: 1e-3, epochs: 20, num_warmup_steps: 4}\n", f);
    fclose(f);
}

static void run_lib(const char *yaml, const char *out, const char *resume, int64_t max_steps) {
    xv_pretrain_run_opts o = xv_pretrain_run_opts_default();
    o.config_path = yaml;
    o.output_dir = out;
    o.resume = resume;
    o.max_steps = max_steps;
    o.seed = 7;
    o.progress = false;
    xv_pretrain_run_result r;
    CHECK_OK(xv_pretrain_run(&o, &r));
    CHECK(r.steps_done == max_steps && !r.interrupted, "%s: %lld steps done, expected %lld", out,
          (long long)r.steps_done, (long long)max_steps);
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void expect_same_outputs(const char *a, const char *b, const char *what) {
    char pa[512], pb[512], name[64];
    snprintf(name, sizeof name, "checkpoints/checkpoint_%09d.safetensors", N);
    path_of(pa, sizeof pa, a, name);
    path_of(pb, sizeof pb, b, name);
    CHECK(same_file(pa, pb), "%s: final checkpoints differ (%s vs %s)", what, pa, pb);
    path_of(pa, sizeof pa, a, "model/weights.safetensors");
    path_of(pb, sizeof pb, b, "model/weights.safetensors");
    CHECK(same_file(pa, pb), "%s: final model weights differ", what);
    path_of(pa, sizeof pa, a, "model/config.json");
    path_of(pb, sizeof pb, b, "model/config.json");
    CHECK(same_file(pa, pb), "%s: final model configs differ", what);
}

/* The (step, kind, losses, grad norm, lr) of every log record, as text. */
static char *log_digest(const char *out) {
    char p[512];
    path_of(p, sizeof p, out, "log.jsonl");
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *d = calloc(cap, 1), *line = NULL;
    size_t lcap = 0;
    while (d && getline(&line, &lcap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const char *keys[] = {"step", "kind", "loss_itc", "loss_itm", "loss_mlm", "loss_bbox", "loss_giou", "grad_norm",
                              "lr"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys && len + 64 < cap; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
            if (cJSON_IsString(v)) len += (size_t)snprintf(d + len, cap - len, "%s ", v->valuestring);
            else if (cJSON_IsNumber(v)) len += (size_t)snprintf(d + len, cap - len, "%.9g ", v->valuedouble);
        }
        if (len + 2 < cap) d[len++] = '\n';
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return d;
}

static int64_t last_counter(const char *out, const char *name) {
    char p[512];
    path_of(p, sizeof p, out, "log.jsonl");
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    char *line = NULL, *last = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        free(last);
        last = strdup(line);
    }
    free(line);
    fclose(f);
    cJSON *j = cJSON_Parse(last);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"), name);
    int64_t r = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(j);
    free(last);
    return r;
}

/* Start `xvlm pretrain` writing to `out`, stderr appended to `err`. */
static pid_t spawn(const char *bin, const char *yaml, const char *out, const char *err, bool resume) {
    char steps[16];
    snprintf(steps, sizeof steps, "%d", N);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, 2);
        char *argv[] = {(char *)bin, "pretrain", "--config", (char *)yaml, "--output-dir", (char *)out,
                        "--max-steps", steps, "--threads", "1", "--seed", "7", "--quiet",
                        resume ? "--resume" : NULL, NULL};
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Every checkpoint file verifies; at most max_kept remain (keep_last 3, plus
 * one when a kill fell between writing a new file and deleting the oldest;
 * none when it came before the first). */
static void verify_checkpoints(const char *out, int min_kept, int max_kept) {
    char dir[512];
    path_of(dir, sizeof dir, out, "checkpoints");
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        const size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) continue; /* an unfinished write, never read */
        n++;
        CHECK(xv_ckpt_verify(p) == XV_OK, "checkpoint %s does not verify: %s", p, xv_error_message());
    }
    if (d) closedir(d);
    CHECK(n >= min_kept && n <= max_kept, "%d checkpoints kept in %s (%d..%d)", n, dir, min_kept, max_kept);
}

/* run_ms: how long the straight run took, to spread the kills over a run. */
static void test_kill_resume(const char *bin, const char *yaml, const char *straight, long run_ms) {
    char out[512], err[512];
    path_of(out, sizeof out, root, "killed");
    path_of(err, sizeof err, root, "killed.stderr");
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("kill delays from seed %u\n", seed);
    srand(seed);
    int kills = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        pid_t pid = spawn(bin, yaml, out, err, attempt > 0);
        /* a delay drawn over about the whole run: some kills land before the
         * first checkpoint, some between checkpoints, some while writing one */
        const long delay_ms = 20 + rand() % (run_ms + 1);
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            kills++;
            printf("attempt %d: killed after %ld ms\n", attempt, delay_ms);
            verify_checkpoints(out, 0, 4);
        } else {
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "attempt %d exited with %d before the kill",
                  attempt, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            printf("attempt %d: finished before the kill (%ld ms)\n", attempt, delay_ms);
            break;
        }
    }
    /* the last resume runs to the end */
    int status = 0;
    waitpid(spawn(bin, yaml, out, err, true), &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the final resume exited with %d",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("%d kills\n", kills);
    verify_checkpoints(out, 1, 3);
    expect_same_outputs(straight, out, "killed and resumed");
    char *da = log_digest(straight), *db = log_digest(out);
    CHECK(da && db && !strcmp(da, db), "the killed run's log differs from the straight run's");
    free(da), free(db);
    /* the bad lines were warned about on stderr */
    uint8_t *text = NULL;
    size_t n;
    CHECK_OK(xv_fs_read_file(err, INT64_C(1) << 30, &text, &n));
    CHECK(text && strstr((const char *)text, "no_such_file.jpg") != NULL, "stderr warns about the missing image:\n%s",
          text ? (const char *)text : "");
    free(text);
}

int main(void) {
    const char *bin = getenv("XV_BIN");
    if (!xv_test_scratch_dir("xv_test_pretrain_resume", root, sizeof root)) return 1;
    xv_set_threads(THREADS);
    char yaml[512], straight[512], halves[512];
    make_data(yaml, sizeof yaml);
    path_of(straight, sizeof straight, root, "straight");
    path_of(halves, sizeof halves, root, "halves");

    const double t0 = xv_monotonic_seconds();
    run_lib(yaml, straight, NULL, N);
    const long run_ms = (long)((xv_monotonic_seconds() - t0) * 1000);
    run_lib(yaml, halves, NULL, N / 2);
    run_lib(yaml, halves, "", N);
    expect_same_outputs(straight, halves, "N/2 + resume + N/2");
    char *da = log_digest(straight), *db = log_digest(halves);
    CHECK(da && db && strlen(da) > 100 && !strcmp(da, db), "logs differ:\n--- straight\n%s--- halves\n%s",
          da ? da : "", db ? db : "");
    free(da), free(db);
    verify_checkpoints(straight, 1, 3);
    char model_dir[600];
    path_of(model_dir, sizeof model_dir, straight, "model");
    xv_model *m = NULL;
    CHECK_OK(xv_model_load_dir(model_dir, false, &m)); /* the layout `xvlm forward` reads */
    CHECK(m && m->parts.mlm && m->parts.itc && m->parts.itm && m->parts.bbox, "the final model has every part");
    xv_model_free(m);
    /* ... and the folder every other command opens as it is: the run's vocab.txt is in it */
    xvlm_model *um = NULL;
    CHECK(xvlm_model_load(model_dir, NULL, &um) == XVLM_OK, "xvlm_model_load(%s): %s", model_dir, xvlm_last_error());
    xvlm_model_free(um);

    /* 40 steps of 8 pairs read the 42 image-text lines 7 times: both bad lines were skipped and counted */
    CHECK(last_counter(straight, "images.bad_json") >= 1, "images.bad_json in the log: %lld",
          (long long)last_counter(straight, "images.bad_json"));
    CHECK(last_counter(straight, "images.missing_image") >= 1, "images.missing_image in the log: %lld",
          (long long)last_counter(straight, "images.missing_image"));
    CHECK(last_counter(halves, "images.missing_image") == last_counter(straight, "images.missing_image"),
          "the counters resume too");

    /* --max-steps 0: the initialised model alone, a start for `xvlm finetune objects` */
    char init_only[512], init_model[600];
    path_of(init_only, sizeof init_only, root, "init_only");
    run_lib(yaml, init_only, NULL, 0);
    path_of(init_model, sizeof init_model, init_only, "model");
    CHECK_OK(xv_model_load_dir(init_model, false, &m));
    CHECK(m && m->parts.mlm && m->parts.itc && m->parts.itm && m->parts.bbox, "the initial model has every part");
    xv_model_free(m);
    CHECK(!xv_test_same_file(straight, init_only, "model/weights.safetensors"), "0 steps wrote the trained weights");

    if (bin) test_kill_resume(bin, yaml, straight, run_ms);
    else printf("XV_BIN not set: the SIGKILL part is skipped (run through ctest)\n");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (xv_test_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
    return xv_test_finish("test_pretrain_resume");
}
