/* The box head learns to localise (docs/demo.md, "Why the box head did not
 * learn"): a tiny X-VLM fine-tuned for grounding (L1 + GIoU only, the official
 * Grounding_bbox.py loop) on the one-object oracle world (`xvlm synth
 * --objects 1:1`: the expression names the only object) reaches an accuracy
 * at IoU >= 0.5 far above the best constant box. The model has what the demo
 * found it needs: absolute positions in its vision tokens (ape started as the
 * 2-D sine-cosine table) and an 8 x 8 final grid (patch 8 at 64 px).
 * 128-px world images seen at 64 px, 600 of them, 10 epochs; the text part
 * started as the demo's (init 0.07, no dropout). One thread, about 30 CPU-seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/threads.h"
#include "model/model.h"
#include "tasks/eval_data.h"
#include "tasks/metrics.h"
#include "testutil.h"
#include "train/finetune.h"
#include "train/pretrain_init.h"

static const char *MODEL_JSON =
    "{\"vision\": {\"image_res\": 64, \"window_size\": 4, \"embed_dim\": 32, \"depths\": [2, 2],"
    " \"num_heads\": [2, 4], \"vision_width\": 64, \"patch_size\": 8, \"ape\": true, \"ape_init\": \"sincos\"},"
    " \"text\": {\"hidden_size\": 64, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 128, \"vocab_size\": 192, \"max_position_embeddings\": 40, \"fusion_layer\": 1,"
    " \"initializer_range\": 0.07, \"hidden_dropout_prob\": 0.0, \"attention_probs_dropout_prob\": 0.0},"
    " \"embed_dim\": 16}";

/* dir/{config.json, weights.safetensors, vocab.txt}: a fresh model started as
 * pretraining starts one (so the ape holds the sine-cosine table). */
static bool fresh_model(const char *dir, const char *vocab_src) {
    xv_model_config c;
    xv_model *m = NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    mkdir(dir, 0777);
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    bool ok = xv_config_parse_json(MODEL_JSON, "oracle model", &c) == XV_OK &&
              xv_model_create(&c, &parts, &m) == XV_OK && xv_pretrain_init_weights(m, 5) == XV_OK &&
              xv_model_save(m, path) == XV_OK;
    xv_model_free(m);
    char *js = ok ? xv_config_to_json(&c) : NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = js ? fopen(path, "w") : NULL;
    ok = ok && f && fputs(js, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    free(js);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/vocab.txt'", vocab_src, dir);
    return ok && system(cmd) == 0;
}

int main(void) {
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN (the xvlm program) not set");
    xv_test_learning_dirs d;
    if (!xv_test_learning_setup("xv_oracle", "grounding.yaml", &d)) return xv_test_skip("cannot create a temporary folder");
    const char *root = d.root, *world = d.world, *model = d.model, *cfg = d.yaml, *out = d.out;
    char cmd[1200];
    xv_test_synth_world(world, "--seed 2 --images 600 --test-images 60 --size 128 --objects 1:1 --threads 1");
    CHECK(fresh_model(model, d.vocab), "fresh model in %s: %s", model, xv_error_message());
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL, "%s", cfg);
    if (f) {
        fprintf(f,
                "train_file: ['%s/grounding_train.json']\ntest_file: '%s/grounding_test.json'\n"
                "image_root: '%s'\n"
                "image_res: 64\nbatch_size: 16\ncareful_hflip: True\n"
                "optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
                "schedular: {sched: linear, lr: 1e-3, epochs: %d, num_warmup_steps: 20}\n",
                world, world, world, (int)xv_test_env_num("XV_ORACLE_EPOCHS", 10));
        fclose(f);
    }
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = cfg, o.init = model, o.output_dir = out, o.progress = false, o.eval_before = false;
    o.seed = (uint64_t)xv_test_env_num("XV_LEARN_SEED", 1);
    xv_finetune_result r;
    CHECK_OK(xv_finetune_run("grounding", &o, &r));

    /* the best constant box: the mean training box, scored on the same test split */
    xv_grounding_set tr = {0}, te = {0};
    double mean_box[4];
    char path[400];
    snprintf(path, sizeof path, "%s/grounding_train.json", world);
    CHECK_OK(xv_grounding_set_read(path, &(xv_fs_root){.root = world}, &tr));
    snprintf(path, sizeof path, "%s/grounding_test.json", world);
    CHECK_OK(xv_grounding_set_read(path, &(xv_fs_root){.root = world}, &te));
    CHECK_OK(xv_grounding_mean_box(&tr, "train", mean_box));
    int hits = 0;
    for (int64_t i = 0; i < te.n; i++) {
        const double W = te.size[i][0], H = te.size[i][1];
        const double b[4] = {mean_box[0] * W, mean_box[1] * H, mean_box[2] * W, mean_box[3] * H};
        hits += xv_iou_inclusive(te.bbox[i], b) >= 0.5;
    }
    const double mean_acc = 100.0 * hits / (double)(te.n > 0 ? te.n : 1);
    fprintf(stderr, "oracle grounding: %lld steps %.1f s, loss %.3f -> %.3f, accuracy %.1f %% (mean box %.1f %%), "
            "mean IoU %.3f\n", (long long)r.steps, r.seconds_train, r.first_loss, r.last_loss, r.metric_after,
            mean_acc, r.aux_after);
    /* measured (one thread, 10 epochs = 370 steps, 33 CPU-s): seed 1 26.7 %, seed 2 30.0 %
     * (mean IoU 0.40); the mean box 8.3 %. With the text at BERT's 0.02 init and dropout 0.1, and a
     * 64-px world, 15 epochs stayed at 3.3 % (which of the two mattered is not measured). */
    CHECK(r.metric_after >= 18.0 && r.metric_after >= 2.5 * mean_acc,
          "the box head localises: accuracy %.1f %% against the mean box's %.1f %%", r.metric_after, mean_acc);
    xv_grounding_set_free(&tr);
    xv_grounding_set_free(&te);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "%s", cmd);
    return xv_test_finish("test_grounding_oracle");
}
