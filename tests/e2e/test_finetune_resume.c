/* Fine-tuning is a run like pretraining, on a tiny X-VLM and a tiny world:
 * - retrieval, 4 epochs straight == stopped mid-epoch 2 (--max-steps) then
 *   --resume: the final and best models are byte-identical, and so are the
 *   per-epoch records (losses, the official test_* keys, best);
 * - the xvlm binary killed with SIGKILL once the first epoch's checkpoint is
 *   written, then `--resume`, continues from that epoch and ends
 *   byte-identical too;
 * - the xvlm binary sent SIGTERM mid-epoch finishes the step, writes its
 *   checkpoint, exits 1 saying how to resume, and `--resume` ends
 *   byte-identical too;
 * - a fresh run into a folder holding checkpoints is refused;
 * - grounding writes log.jsonl (updates, epochs with test_d, the closing
 *   best record), loss_curves.png, at most keep_last checkpoints, model/ and
 *   model_best/ with config.json, weights.safetensors and vocab.txt.
 * One thread, a few seconds. */
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

#include "core/threads.h"
#include "testutil.h"
#include "train/finetune.h"

enum { EPOCHS = 4, STEPS_PER_EPOCH = 6 }; /* 24 images x 2 captions / batch 8 */
static char root[64], world[128], model[128];

static void write_yaml(const char *path, const char *task) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    const bool ret = !strcmp(task, "retrieval");
    fprintf(f,
            "train_file: ['%s/%s_train.json']\ntest_file: '%s/%s_test.json'\nimage_root: '%s'\n"
            "%s: 8\nk_test: 4\nmax_tokens: 20\n"
            "optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01}\n"
            "schedular: {sched: linear, lr: 1e-3, epochs: %d, num_warmup_steps: 0.1}\n",
            world, task, world, task, world, ret ? "batch_size_train" : "batch_size", ret ? EPOCHS : 2);
    fclose(f);
}

static xv_status finetune(const char *task, const char *cfg, const char *out, const char *resume,
                          int64_t max_steps, xv_finetune_result *r) {
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = cfg, o.init = model, o.output_dir = out, o.resume = resume, o.max_steps = max_steps;
    o.seed = 5, o.eval_before = false, o.progress = false;
    return xv_finetune_run(task, &o, r);
}

/* The log's records of `kind`, each line as written, joined. */
static char *records(const char *dir, const char *kind) {
    char path[512], want[64], *line = NULL;
    size_t cap = 0, n = 0;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(want, sizeof want, "\"kind\": \"%s\"", kind);
    FILE *f = fopen(path, "rb");
    char *all = calloc(1, 1);
    while (f && all && getline(&line, &cap, f) > 0)
        if (strstr(line, want)) {
            char *more = realloc(all, n + strlen(line) + 1);
            if (!more) break;
            all = more;
            strcpy(all + n, line);
            n += strlen(line);
        }
    free(line);
    if (f) fclose(f);
    return all;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p++) n++;
    return n;
}

static void expect_same_run(const char *a, const char *b, const char *what) {
    CHECK(xv_test_same_file(a, b, "model/weights.safetensors"), "%s: final weights differ", what);
    CHECK(xv_test_same_file(a, b, "model_best/weights.safetensors"), "%s: best weights differ", what);
    char *ea = records(a, "epoch"), *eb = records(b, "epoch"), *ua = records(a, "image"), *ub = records(b, "image");
    CHECK(ea && eb && count(ea, "\n") == EPOCHS && !strcmp(ea, eb), "%s: epoch records differ:\n%s---\n%s", what,
          ea, eb);
    CHECK(count(ua, "\n") == EPOCHS * STEPS_PER_EPOCH && count(ub, "\n") == EPOCHS * STEPS_PER_EPOCH,
          "%s: one update record per step (%d, %d)", what, count(ua, "\n"), count(ub, "\n"));
    free(ea), free(eb), free(ua), free(ub);
}

static void test_stop_resume(const char *cfg, const char *straight) {
    char out[256];
    snprintf(out, sizeof out, "%s/stopped", root);
    xv_finetune_result r;
    CHECK_OK(finetune("retrieval", cfg, out, NULL, STEPS_PER_EPOCH + 2, &r));
    CHECK(r.steps == STEPS_PER_EPOCH + 2, "stopped after %lld steps", (long long)r.steps);
    CHECK(finetune("retrieval", cfg, out, NULL, 0, &r) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "earlier run"),
          "a fresh run into a folder with checkpoints is refused: %s", xv_error_message());
    CHECK_OK(finetune("retrieval", cfg, out, "", 0, &r));
    CHECK(r.start_step == STEPS_PER_EPOCH + 2 && r.steps == EPOCHS * STEPS_PER_EPOCH, "resumed at %lld, ended at %lld",
          (long long)r.start_step, (long long)r.steps);
    expect_same_run(straight, out, "stopped mid-epoch and resumed");
}

/* `xvlm finetune retrieval` into `out` as a child process (stderr to
 * err_path when given); its pid, <= 0 (a failed CHECK) when fork fails. */
static pid_t spawn(const char *bin, const char *cfg, const char *out, const char *err_path) {
    pid_t pid = fork();
    if (pid == 0) {
        const int fd = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
        if (fd >= 0) dup2(fd, 2);
        char *argv[] = {(char *)bin, "finetune", "retrieval", "--config", (char *)cfg, "--init", model,
                        "--output-dir", (char *)out, "--threads", "1", "--seed", "5", "--no-eval-before", "--quiet",
                        NULL};
        execv(bin, argv);
        _exit(127);
    }
    CHECK(pid > 0, "fork");
    return pid;
}

/* The same command with --resume, to its end. */
static xv_test_cli_result resume(const char *cfg, const char *out) {
    char args[1024];
    snprintf(args, sizeof args,
             "finetune retrieval --config '%s' --init '%s' --output-dir '%s' --threads 1 --seed 5 --no-eval-before "
             "--resume",
             cfg, model, out);
    return xv_test_cli(root, args, NULL);
}

/* The binary, killed once the first epoch's checkpoint exists. */
static void test_kill_resume(const char *bin, const char *cfg, const char *straight) {
    char out[256], ckpt[512];
    snprintf(out, sizeof out, "%s/killed", root);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/checkpoint_%09d.safetensors", out, STEPS_PER_EPOCH);
    const pid_t pid = spawn(bin, cfg, out, NULL);
    if (pid <= 0) return;
    struct stat s;
    const struct timespec ms = {0, 1000000};
    for (int i = 0; i < 120000 && stat(ckpt, &s) != 0; i++) nanosleep(&ms, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) printf("note: the run ended before the kill (status %d)\n", status);
    xv_test_cli_result r = resume(cfg, out);
    const char *log = r.err;
    const char *at = strstr(log, "at step ");
    const long from = at ? strtol(at + 8, NULL, 10) : -1;
    CHECK(r.status == 0 && from >= STEPS_PER_EPOCH, "resumed (from step %ld, at least the first epoch's %d): %s",
          from, STEPS_PER_EPOCH, log);
    printf("killed run resumed from step %ld\n", from);
    xv_test_cli_free(&r);
    expect_same_run(straight, out, "killed and resumed");
}

/* The binary stopped by SIGTERM mid-epoch: it finishes the step, writes a
 * checkpoint, exits non-zero saying how to resume; --resume then ends
 * byte-identical to the straight run. The child is paused (SIGSTOP) while
 * the signal is sent, so it lands inside the run whatever the speed. */
static void test_term_resume(const char *bin, const char *cfg, const char *straight) {
    char out[256], log[512], err[512];
    snprintf(out, sizeof out, "%s/termed", root);
    snprintf(log, sizeof log, "%s/log.jsonl", out);
    snprintf(err, sizeof err, "%s/termed.stderr", root);
    const pid_t pid = spawn(bin, cfg, out, err);
    if (pid <= 0) return;
    const struct timespec ms = {0, 1000000};
    char *upd = NULL;
    for (int i = 0; i < 120000 && count(upd, "\n") < 2; i++) {
        free(upd);
        nanosleep(&ms, NULL);
        upd = records(out, "image");
    }
    free(upd);
    kill(pid, SIGSTOP);
    kill(pid, SIGTERM);
    kill(pid, SIGCONT);
    int status = 0;
    waitpid(pid, &status, 0);
    char *msg = xv_test_read_file(err, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 143 && msg && strstr(msg, "interrupted by SIGTERM at step") &&
              strstr(msg, "--resume"),
          "SIGTERM: exit 143 (128 + SIGTERM) with how to resume (status %d): %s", status, msg ? msg : "(none)");
    const char *at = msg ? strstr(msg, "at step ") : NULL;
    const long stopped = at ? strtol(at + 8, NULL, 10) : -1;
    char ckpt[512], model_dir[512];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/checkpoint_%09ld.safetensors", out, stopped);
    snprintf(model_dir, sizeof model_dir, "%s/model", out);
    CHECK(stopped >= 2 && stopped < EPOCHS * STEPS_PER_EPOCH && access(ckpt, R_OK) == 0 && access(model_dir, F_OK) != 0,
          "stopped at step %ld with its checkpoint and no final model", stopped);
    free(msg);
    xv_test_cli_result r = resume(cfg, out);
    at = strstr(r.err, "at step ");
    CHECK(r.status == 0 && at && strtol(at + 8, NULL, 10) == stopped, "resumed from the step it stopped at: %s",
          r.err);
    xv_test_cli_free(&r);
    expect_same_run(straight, out, "stopped by SIGTERM and resumed");
}

static void test_grounding_outputs(void) {
    char cfg[256], out[256], p[512];
    snprintf(cfg, sizeof cfg, "%s/grounding.yaml", root);
    snprintf(out, sizeof out, "%s/grounding", root);
    write_yaml(cfg, "grounding");
    xv_finetune_result r;
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = cfg, o.init = model, o.output_dir = out, o.seed = 5, o.progress = false, o.keep_last = 1;
    CHECK_OK(xv_finetune_run("grounding", &o, &r));
    const char *files[] = {"log.jsonl", "loss_curves.png", "result.json", "model/config.json",
                           "model/weights.safetensors", "model/vocab.txt", NULL};
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECK(access(p, R_OK) == 0, "grounding run wrote %s", p);
    }
    if (r.best_epoch >= 0) {
        snprintf(p, sizeof p, "%s/model_best/vocab.txt", out);
        CHECK(access(p, R_OK) == 0, "best epoch %lld: %s", (long long)r.best_epoch, p);
    }
    snprintf(p, sizeof p, "%s/checkpoints", out);
    DIR *d = opendir(p);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += !strncmp(e->d_name, "checkpoint_", 11);
    if (d) closedir(d);
    CHECK(n == 1, "keep_last 1: %d checkpoints", n);
    char *ep = records(out, "epoch"), *best = records(out, "best"), *upd = records(out, "region");
    CHECK(count(ep, "\n") == 2 && count(ep, "\"test_d\": ") == 2 && count(ep, "\"train_loss_giou\": ") == 2,
          "two epoch records with test_d and train_loss_giou:\n%s", ep);
    cJSON *j = best ? cJSON_Parse(best) : NULL;
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(j, "best_epoch");
    CHECK(count(best, "\n") == 1 && cJSON_IsNumber(be) && be->valuedouble == (double)r.best_epoch,
          "the closing best record names epoch %lld: %s", (long long)r.best_epoch, best);
    CHECK(count(upd, "\n") == r.steps && count(upd, "\"loss_bbox\": ") == r.steps, "one region record per step");
    cJSON_Delete(j);
    free(ep), free(best), free(upd);
}

int main(void) {
    xv_set_threads(1);
    if (!xv_test_scratch_dir("xv_ft_resume", root, sizeof root)) return xv_test_skip("no temporary folder");
    snprintf(world, sizeof world, "%s/world", root);
    snprintf(model, sizeof model, "%s/tiny", root);
    const char *bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN (the xvlm program) not set");
    char args[512], cfg[256], straight[256];
    snprintf(args, sizeof args, "synth --out '%s' --seed 2 --images 24 --test-images 4 --size 64 --captions 2", world);
    xv_test_cli_result s = xv_test_cli(root, args, NULL);
    CHECK(s.status == 0, "synth: %s", s.err);
    xv_test_cli_free(&s);
    mkdir(model, 0777);
    if (xv_test_failures || !xv_test_tiny_model_dir(model, 3, true)) return xv_test_finish("test_finetune_resume");

    snprintf(cfg, sizeof cfg, "%s/retrieval.yaml", root);
    snprintf(straight, sizeof straight, "%s/straight", root);
    write_yaml(cfg, "retrieval");
    xv_finetune_result r;
    CHECK_OK(finetune("retrieval", cfg, straight, NULL, 0, &r));
    CHECK(r.steps == EPOCHS * STEPS_PER_EPOCH && r.total_steps == r.steps, "%lld steps", (long long)r.steps);
    char *ep = records(straight, "epoch");
    const char *keys[] = {"test_txt_r1", "test_txt_r5", "test_txt_r10", "test_txt_r_mean", "test_img_r1",
                          "test_img_r5", "test_img_r10", "test_img_r_mean", "test_r_mean", "train_loss_itc",
                          "train_loss_itm", "train_lr", NULL};
    for (int i = 0; keys[i]; i++) {
        char k[64];
        snprintf(k, sizeof k, "\"%s\": ", keys[i]);
        CHECK(count(ep, k) == EPOCHS, "every epoch record has %s", keys[i]);
    }
    free(ep);
    if (xv_test_failures == 0) test_stop_resume(cfg, straight);
    if (xv_test_failures == 0) test_kill_resume(bin, cfg, straight);
    if (xv_test_failures == 0) test_term_resume(bin, cfg, straight);
    if (xv_test_failures == 0) test_grounding_outputs();
    if (xv_test_failures == 0) xv_test_remove_dir(root);
    return xv_test_finish("test_finetune_resume");
}
