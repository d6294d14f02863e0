/* The `xvlm pretrain` command line ($XV_BIN): --help, usage errors (exit 2),
 * runtime errors with a message naming the problem (exit 1): a missing
 * config, a key of the wrong type, a fresh run into a folder holding another
 * run's checkpoints, a resume from an older checkpoint than the folder's
 * newest; and a short run's outputs (log, plot, model, checkpoints). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

static void write_yaml(const char *name, const char *data, const char *extra) {
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
            "schedular: {epochs: 2, num_warmup_steps: 1}\n%s",
            extra);
    fclose(f);
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
    write_yaml("ok.yaml", data, "");
    write_yaml("badtype.yaml", data, "optimizer: {lr: fast}\n");
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

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (xv_test_failures == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
    return xv_test_finish("test_cli_pretrain");
}
