/* The `xvlm pretrain` command line ($XV_BIN): --help, usage errors (exit 2),
 * runtime errors with a message naming the problem (exit 1): a missing
 * config, a key of the wrong type, a fresh run into a folder holding another
 * run's checkpoints, a resume from an older checkpoint than the folder's
 * newest; a short run's outputs (log, plot, model, checkpoints); SIGTERM to an
 * endless run (exit 143, checkpoint intact, no temp file, --resume goes on). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "data/synth.h"
#include "testutil.h"

static char root[64];
static char bin[1024];

/* Run `xvlm pretrain ARGS`, stderr into root/err.txt; returns the exit code. */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' pretrain %s > '%s/out.txt' 2> '%s/err.txt'", bin, args, root, root);
    printf("$ xvlm pretrain %s\n", args);
    fflush(stdout);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool output_has(const char *file, const char *needle) {
    char p[1100];
    snprintf(p, sizeof p, "%s/%s", root, file);
    uint8_t *text = NULL;
    size_t n;
    const char *buf = xv_fs_read_file(p, INT64_C(1) << 30, &text, &n) == XV_OK ? (const char *)text : "";
    bool found = strstr(buf, needle) != NULL;
    if (!found) printf("--- %s:\n%s\n", file, buf);
    free(text);
    return found;
}

static void write_yaml(const char *name, const char *data, int epochs, const char *extra) {
    char p[1100];
    snprintf(p, sizeof p, "%s/%s", root, name);
    int n_vocab; /* unused: the model below sets vocab_size itself */
    FILE *f = xv_test_pretrain_yaml_open(data, "pretrain_", p, 16, &n_vocab);
    if (!f) return;
    fprintf(f,
            "images: {image_key: image, is_image_rpath: True, batch_size: 4, num_workers: 1}\n"
            "regions: {image_key: image, is_image_rpath: True, batch_size: 4, max_images: 2, num_workers: 1}\n"
            "model_config:\n"
            "  vision: {image_res: 32, patch_size: 8, embed_dim: 8, depths: [1, 1], num_heads: [1, 2],\n"
            "           window_size: 4, vision_width: 16}\n"
            "  text: {hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32,\n"
            "         vocab_size: 200, max_position_embeddings: 24, fusion_layer: 1, encoder_width: 16}\n"
            "embed_dim: 8\nmax_tokens: 24\nmax_masks: 4\nckpt_frequent_step: 2\n"
            "schedular: {epochs: %d, num_warmup_steps: 1}\n%s",
            epochs, extra);
    fclose(f);
}

/* Whether `dir` (one level) holds a file whose name contains ".tmp". */
static bool has_temp_file(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp'", dir);
    return system(cmd) == 0;
}

/* SIGTERM to a run of endless steps, once its second checkpoint is written:
 * it exits within seconds with 143 (128 + SIGTERM), names the complete
 * checkpoint it leaves, leaves no temp file and no model, and --resume goes
 * on from that checkpoint. */
static void test_sigterm(void) {
    char out[600], ckpt[700], err[700];
    snprintf(out, sizeof out, "%s/sig", root);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/checkpoint_000000004.safetensors", out);
    snprintf(err, sizeof err, "%s/err.txt", root);
    char yaml[600];
    snprintf(yaml, sizeof yaml, "%s/endless.yaml", root);
    printf("$ xvlm pretrain --config endless.yaml (SIGTERM after the checkpoint of step 4)\n");
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(err, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(127);
        execl(bin, bin, "pretrain", "--config", yaml, "--output-dir", out, "--threads", "1", "--quiet", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (int i = 0; i < 60000 && access(ckpt, F_OK) != 0 && waitpid(pid, &status, WNOHANG) == 0; i++)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    const double t0 = xv_monotonic_seconds();
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    const double took = xv_monotonic_seconds() - t0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 143 && took < 5, "exit 143 (status %d) in %.2f s (< 5)", status,
          took);
    CHECK(output_has("err.txt", "interrupted by SIGTERM; the checkpoint of step") &&
              output_has("err.txt", "--resume"),
          "the message names the signal, the checkpoint and --resume");
    uint8_t *text = NULL;
    size_t n = 0;
    const char *at = xv_fs_read_file(err, 1 << 20, &text, &n) == XV_OK ? strstr((char *)text, "checkpoint of step ") : NULL;
    const long step = at ? strtol(at + 19, NULL, 10) : -1;
    free(text);
    char args[2048], sub[700];
    snprintf(sub, sizeof sub, "%s/checkpoints", out);
    CHECK(step >= 4 && !has_temp_file(out) && !has_temp_file(sub), "stopped at step %ld with no temp file left", step);
    snprintf(args, sizeof args, "%s/model", out);
    CHECK(access(args, F_OK) != 0, "no final model after an interrupted run");
    snprintf(args, sizeof args, "'%s' inspect '%s/checkpoint_%09ld.safetensors' > /dev/null 2>&1", bin, sub, step);
    CHECK(system(args) == 0, "the checkpoint of step %ld passes xvlm inspect", step);
    snprintf(args, sizeof args, "--config '%s' --output-dir '%s' --max-steps %ld --threads 1 --quiet --resume", yaml,
             out, step + 1);
    char want[64];
    snprintf(want, sizeof want, "at step %ld\n", step);
    CHECK(run(args) == 0 && output_has("err.txt", "resumed from") && output_has("err.txt", want),
          "--resume continues from step %ld", step);
}

int main(void) {
    const char *b = getenv("XV_BIN");
    if (!b) return xv_test_skip("XV_BIN not set (run through ctest)");
    snprintf(bin, sizeof bin, "%s", b);
    if (!xv_test_scratch_dir("xv_test_cli_pretrain", root, sizeof root)) return 1;
    char data[600];
    snprintf(data, sizeof data, "%s/world", root);
    xv_synth_params sp = xv_synth_default_params();
    sp.seed = 9, sp.train_images = 16, sp.test_images = 1, sp.size = 48, sp.threads = 1, sp.progress = false;
    xv_synth_stats stats;
    CHECK_OK(xv_synth_generate(&sp, data, &stats));
    write_yaml("ok.yaml", data, 2, "");
    write_yaml("badtype.yaml", data, 2, "optimizer: {lr: fast}\n");
    write_yaml("endless.yaml", data, 1000000, "");
    char args[4096];

    CHECK(run("--help") == 0 && output_has("out.txt", "usage: xvlm pretrain"), "--help");
    CHECK(run("") == 2 && output_has("err.txt", "--config FILE.yaml is required"), "no --config");
    CHECK(run("--config x.yaml --max-steps zero") == 2 && output_has("err.txt", "--max-steps"), "bad --max-steps");
    CHECK(run("--config x.yaml --bogus") == 2 && output_has("err.txt", "unknown option '--bogus'"), "unknown option");
    snprintf(args, sizeof args, "--config '%s/none.yaml' --output-dir '%s/o1'", root, root);
    CHECK(run(args) == 1 && output_has("err.txt", "none.yaml: cannot open"), "missing config");
    snprintf(args, sizeof args, "--config '%s/badtype.yaml' --output-dir '%s/o1'", root, root);
    CHECK(run(args) == 1 && output_has("err.txt", "\"optimizer.lr\" must be a number"), "wrong type named");

    /* a short run and its outputs */
    snprintf(args, sizeof args, "--config '%s/ok.yaml' --output-dir '%s/run' --max-steps 4 --threads 1 --quiet", root,
             root);
    CHECK(run(args) == 0 && output_has("err.txt", "done at step 4 of 8"), "short run");
    const char *outputs[] = {"log.jsonl", "loss_curves.png", "model/config.json", "model/weights.safetensors",
                             "checkpoints/checkpoint_000000002.safetensors",
                             "checkpoints/checkpoint_000000004.safetensors"};
    for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/run/%s", root, outputs[i]);
        CHECK(access(p, R_OK) == 0, "%s written", outputs[i]);
    }
    CHECK(run(args) == 1 && output_has("err.txt", "holds checkpoints of an earlier run"),
          "a fresh run refuses a folder with checkpoints");
    snprintf(args, sizeof args,
             "--config '%s/ok.yaml' --output-dir '%s/run' --max-steps 6 --threads 1 --quiet --resume "
             "'%s/run/checkpoints/checkpoint_000000002.safetensors'",
             root, root, root);
    CHECK(run(args) == 1 && output_has("err.txt", "holds a later checkpoint"), "resume from an older checkpoint");
    snprintf(args, sizeof args, "--config '%s/ok.yaml' --output-dir '%s/run' --max-steps 6 --threads 1 --quiet --resume",
             root, root);
    CHECK(run(args) == 0 && output_has("err.txt", "resumed from") && output_has("err.txt", "done at step 6 of 8"),
          "resume from the newest");
    snprintf(args, sizeof args,
             "--config '%s/ok.yaml' --output-dir '%s/run2' --max-steps 1 --threads 1 --quiet --init '%s/run/model'", root,
             root, root);
    CHECK(run(args) == 0, "--init from a run's model folder");

    test_sigterm();

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (xv_test_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
    return xv_test_finish("test_cli_pretrain");
}
