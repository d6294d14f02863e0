/* Fine-tuning a random tiny X-VLM on a small synthetic world (`xvlm synth`)
 * lowers the training loss of both tasks by a stated fraction:
 * - retrieval (ITC with image ids + ITM with hard negatives);
 * - box grounding (L1 + GIoU), to below the loss of the best constant box.
 * And a model fine-tuned at another image_res than its own (32 -> 64 px,
 * window 4 -> 8) is loaded through the relative-position interpolation,
 * evaluated zero-shot and trained at the new resolution.
 * One thread, about 10 s (more on a loaded machine). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/threads.h"
#include "model/model.h"
#include "testutil.h"
#include "train/finetune.h"

/* A 32-px tiny X-VLM (every part, pretraining layout) for the synth vocab.
 * With an absolute position embedding (vision ape): without it the patch
 * tokens of a model trained from scratch carry no position (relative biases
 * only), the box head cannot tell where anything is and the grounding loss
 * stays at that of the best constant box (~1.44 on this world). */
static int tiny_model(const char *dir, const char *vocab_src, bool ape) {
    char js[1024];
    /* without ape two stages (8x8, 4x4 tokens): a 2x2 stage would have a 3x3
     * table, too small to interpolate (as in no official model) */
    snprintf(js, sizeof js,
        "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 16, \"depths\": %s,"
        " \"num_heads\": %s, \"vision_width\": %d, \"patch_size\": %d, \"ape\": %s},"
        " \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 64, \"vocab_size\": 192, \"max_position_embeddings\": 40, \"fusion_layer\": 1},"
        " \"embed_dim\": 16}", ape ? "[1, 1, 1]" : "[1, 1]", ape ? "[1, 2, 4]" : "[1, 2]", ape ? 64 : 32, ape ? 16 : 8,
        ape ? "true" : "false");
    char cmd[1400];
    mkdir(dir, 0777);
    int ok = xv_test_model_dir_from_json(dir, js, 7);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/vocab.txt'", vocab_src, dir);
    return ok && system(cmd) == 0;
}

/* batch 16, a constant lr after a short warmup-free start: the schedule
 * decays linearly over `epochs`, which the run covers in full. */
static void write_yaml(const char *path, const char *world, const char *task, int res, double lr, int epochs) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    const bool ret = !strcmp(task, "retrieval");
    fprintf(f,
            "train_file: ['%s/%s_train.json']\ntest_file: '%s/%s_test.json'\nimage_root: '%s'\n"
            "image_res: %d\n%s: 16\nk_test: 8\nmax_tokens: 40\n"
            "optimizer: {opt: adamW, lr: %g, weight_decay: 0.01, lr_mult: 2}\n"
            "schedular: {sched: linear, lr: %g, epochs: %d, num_warmup_steps: 0.1}\n",
            world, task, world, task, world, res, ret ? "batch_size_train" : "batch_size", lr, lr, epochs);
    fclose(f);
}

int main(void) {
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN (the xvlm program) not set");
    xv_test_learning_dirs d;
    if (!xv_test_learning_setup("xv_finetune", "retrieval.yaml", &d))
        return xv_test_skip("cannot create a temporary folder");
    const char *root = d.root, *world = d.world, *vocab = d.vocab;
    char model[300], cfg[300], out[300], cmd[1200];
    snprintf(model, sizeof model, "%s", d.model);
    xv_test_synth_world(world, "--seed 3 --images 200 --test-images 8 --size 64");
    CHECK(tiny_model(model, vocab, true), "tiny model in %s: %s", model, xv_error_message());

    const char *tasks[2] = {"retrieval", "grounding"};
    const int epochs[2] = {3, 40}; /* 186 and 1480 steps of batch 16 */
    xv_finetune_result r[2];
    for (int t = 0; t < 2 && xv_test_failures == 0; t++) {
        snprintf(cfg, sizeof cfg, "%s/%s.yaml", root, tasks[t]);
        snprintf(out, sizeof out, "%s/out_%s", root, tasks[t]);
        write_yaml(cfg, world, tasks[t], 32, 1e-3, epochs[t]);
        xv_finetune_opts o = xv_finetune_opts_default();
        o.config_path = cfg;
        o.init = model;
        o.output_dir = out;
        o.seed = (uint64_t)xv_test_env_num("XV_LEARN_SEED", 1);
        o.eval_before = false;
        o.progress = false;
        CHECK_OK(xv_finetune_run(t == 0 ? "retrieval" : "grounding", &o, &r[t]));
        fprintf(stderr, "%s: %lld steps %.1f s, loss %.4f -> %.4f (%.2f)\n", tasks[t], (long long)r[t].steps,
                r[t].seconds_train, r[t].first_loss, r[t].last_loss, r[t].last_loss / r[t].first_loss);
    }
    /* measured (one thread, seeds 1-4): retrieval 4.10..4.23 -> 3.41..3.42
     * (ratio 0.81..0.83); grounding 1.44..1.45 -> 1.22..1.27 (0.84..0.88),
     * where the best constant box scores ~1.44 (L1 0.59 + GIoU 0.86): the
     * model has learned where the described shape is, not only the mean box. */
    if (xv_test_failures == 0) {
        CHECK(r[0].last_loss < 0.90 * r[0].first_loss, "retrieval loss (ITC + ITM) falls by 10 %%");
        CHECK(r[1].last_loss < 0.93 * r[1].first_loss && r[1].last_loss < 1.36,
              "grounding loss (L1 + GIoU) falls by 7 %% and below the best constant box's 1.44");
    }

    /* At 64 px a model made for 32: window 4 -> 8, tables 7x7 -> 15x15. */
    snprintf(cfg, sizeof cfg, "%s/retrieval64.yaml", root);
    snprintf(out, sizeof out, "%s/out64", root);
    write_yaml(cfg, world, "retrieval", 64, 1e-3, 1);
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = cfg, o.init = model, o.output_dir = out, o.max_steps = 2, o.progress = false;
    xv_finetune_result r64;
    CHECK(xv_finetune_run("retrieval", &o, &r64) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "absolute position embedding"),
          "a model with ape is refused at another resolution: %s", xv_error_message());
    snprintf(model, sizeof model, "%s/tiny_no_ape", root);
    CHECK(tiny_model(model, vocab, false), "tiny model in %s: %s", model, xv_error_message());
    CHECK_OK(xv_finetune_run("retrieval", &o, &r64));
    CHECK(r64.steps == 2 && isfinite(r64.metric_before) && isfinite(r64.metric_after), "zero-shot and after at 64 px");
    xv_model *m64 = NULL;
    snprintf(cmd, sizeof cmd, "%s/model", out);
    CHECK_OK(xv_model_load_dir(cmd, false, &m64));
    const char *t0 = "vision_encoder.layers.0.blocks.0.attn.relative_position_bias_table";
    const xv_tensor *table = m64 ? xv_params_find(&m64->params, t0) : NULL;
    CHECK(m64 && m64->cfg.vision.image_res == 64 && m64->cfg.vision.window == 8 && table && table->shape[0] == 225,
          "the fine-tuned model is a 64-px, window-8 model");
    xv_model_free(m64);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "%s", cmd);
    return xv_test_finish("test_finetune_learns");
}
