/* The two domain-pretraining stages on a small synth world from a tiny
 * random pretraining model.
 *
 * NLVR text assignment (`xvlm finetune nlvr_pretrain`):
 * - the loss falls (the mean of the last fifth of the epochs below the
 *   first fifth's; on this tiny random model it does not reach chance ln 3
 *   within the budget, see the measured numbers below);
 * - model/ is the text-assignment model (ta_head, the paired layout) with
 *   vision_proj exactly as in the pretraining model (it gets no gradient);
 * - `finetune nlvr --init` that model/ loads it as the domain-pretrained
 *   checkpoint and trains;
 * - 2 epochs straight == --max-steps 3 then --resume, byte for byte.
 * Box-grounding domain pretraining (`xvlm finetune grounding_bbox_pretrain`):
 * - the box losses (L1 + GIoU) fall over the epochs;
 * - model/ keeps the pretraining layout and opens with `xvlm ground`;
 * - a model without bbox_head is refused, naming what is missing.
 * Weakly-supervised grounding (`xvlm finetune weak_grounding`): 2 epochs run,
 * each epoch record has the ITC/ITM losses, test_d and the baselines
 * (test_random_d, test_peak_in_box, test_box_share); result.json the
 * accuracy; a YAML without det_file is refused.
 * About 40 CPU-seconds. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "testutil.h"

static char dir[64], model[128];

static int cli(const char *args) { return xv_test_cli_ok(dir, args); }

/* The stage's YAML (the pretraining corpus keys NLVR_pretrain.py reads) for `epochs` epochs. */
static bool write_yaml(const char *path, int epochs) {
    char y[1200];
    snprintf(y, sizeof y,
             "train_file: ['%s/world/pretrain_captions.jsonl']\nimage_root: '%s/world'\ntrain_dataset_size: 8\n"
             "images: {image_key: image, is_image_rpath: True, caption_key: caption, tokenized: False,\n"
             "         batch_size: %d, num_workers: 1, crop_scale: [0.8, 1.0]}\n"
             "image_res: 64\nmax_words: 30\nmax_tokens: 30\n"
             "optimizer: {opt: adamW, lr: %g, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 0.003, epochs: %d, num_warmup_steps: 0.1}\n"
             "accelerator: {CLIP_GRAD_NORM: 1.0}\n",
             dir, dir, 8, 0.01, epochs);
    return xv_test_write_file(path, y);
}

/* The "epoch" records' train_<term> (summed over the terms given): *first and
 * *last the means over the first and the last fifth of the epochs (one
 * epoch is a few steps: a window evens out the noise of single batches).
 * Returns the number of epochs. */
static int epoch_losses(const char *out, const char *const *terms, double *first, double *last) {
    char path[256];
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    char *log = xv_test_read_file(path, NULL);
    double loss[512];
    int epochs = 0;
    for (char *line = log ? strtok(log, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
        CHECK(j && kind, "log record with a kind: %s", line);
        if (kind && !strcmp(kind, "epoch") && epochs < 512) {
            double l = 0;
            for (const char *const *t = terms; *t; t++) l += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, *t));
            CHECK(isfinite(l) && !cJSON_GetObjectItemCaseSensitive(j, "selection"),
                  "epoch record with the losses and no selection: %s", line);
            loss[epochs++] = l;
        } else if (kind) {
            CHECK(strcmp(kind, "best"), "no \"best\" record for a stage without evaluation");
        }
        cJSON_Delete(j);
    }
    free(log);
    const int k = epochs / 5 > 0 ? epochs / 5 : 1;
    *first = *last = 0;
    for (int i = 0; i < k && epochs; i++) *first += loss[i] / k, *last += loss[epochs - 1 - i] / k;
    return epochs;
}

/* Whether `name` holds the same bytes in both weight files. */
static bool same_tensor(const char *a, const char *b, const char *name) {
    xv_st_file *fa = NULL, *fb = NULL;
    bool same = false;
    if (xv_st_open(a, &fa) == XV_OK && xv_st_open(b, &fb) == XV_OK) {
        const xv_st_tensor *ta = xv_st_find(fa, name), *tb = xv_st_find(fb, name);
        float *va = ta ? malloc(sizeof(float) * (size_t)ta->numel) : NULL;
        float *vb = tb ? malloc(sizeof(float) * (size_t)tb->numel) : NULL;
        same = va && vb && ta->numel == tb->numel && xv_st_read_f32(fa, ta, va) == XV_OK &&
               xv_st_read_f32(fb, tb, vb) == XV_OK && !memcmp(va, vb, sizeof(float) * (size_t)ta->numel);
        free(va), free(vb);
    }
    xv_st_close(fa), xv_st_close(fb);
    return same;
}

/* Grounding_bbox_pretrain.py on the world's region corpus. */
static void box_stage(void) {
    char yaml[160], out[160], path[256], args[1024];
    snprintf(yaml, sizeof yaml, "%s/box.yaml", dir);
    snprintf(out, sizeof out, "%s/box", dir);
    char y[1200];
    const int epochs = 10;
    snprintf(y, sizeof y,
             "train_file_regions: ['%s/world/pretrain_regions.jsonl']\nimage_root: '%s/world'\n"
             "train_dataset_size: 240\n"
             "regions: {image_key: image, is_image_rpath: True, caption_key: caption, tokenized: False,\n"
             "          iter_perc: 1.0, batch_size: 12, max_images: 4, max_regions: 5, min_perc_in_image: 0.5,\n"
             "          num_workers: 1}\n"
             "calc_image_bbox_loss: False\nimage_res: 64\nmax_words: 40\nmax_tokens: 30\n"
             "optimizer: {opt: adamW, lr: 0.003, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 0.003, epochs: %d, num_warmup_steps: 0.1}\n"
             "accelerator: {CLIP_GRAD_NORM: 1.0}\n",
             dir, dir, epochs);
    if (!xv_test_write_file(yaml, y)) return;
    snprintf(args, sizeof args, "finetune grounding_bbox_pretrain --config %s --init %s --output-dir %s --seed 3 "
             "--threads 2 --quiet", yaml, model, out);
    if (cli(args)) return;
    static const char *const box_terms[] = {"train_loss_bbox", "train_loss_giou", NULL};
    double first = NAN, last = NAN;
    CHECK(epoch_losses(out, box_terms, &first, &last) == epochs, "%d epoch records", epochs);
    printf("box domain pretraining: train L1 + GIoU %.4f -> %.4f\n", first, last);
    /* a model that does not learn keeps its first epoch's loss within noise */
    /* measured 1.6471 -> 1.4514 (window means of 2 epochs of 12 steps); an untrained box head keeps its loss */
    CHECK(last < 0.92 * first, "the box losses fall: first window %.4f, last %.4f", first, last);
    snprintf(args, sizeof args, "ground --model %s/model --image %s/world/images/test_000000.jpg --text 'circle' "
             "--json", out, dir);
    cli(args);
    /* no bbox_head: the text-assignment model of the first stage */
    snprintf(path, sizeof path, "%s/refused", dir);
    snprintf(args, sizeof args, "finetune grounding_bbox_pretrain --config %s --init %s/ta/model --output-dir %s "
             "--quiet", yaml, dir, path);
    xv_test_cli_refused(dir, args, 1, "no bbox_head");
}

/* Grounding.py on the world's expressions: ITC + ITM, Grad-CAM evaluation over dets.json. */
static void weak_stage(void) {
    char yaml[160], out[160], path[256], args[1024], y[1200];
    snprintf(yaml, sizeof yaml, "%s/weak.yaml", dir);
    snprintf(out, sizeof out, "%s/weak", dir);
    snprintf(y, sizeof y,
             "train_file: ['%s/world/grounding_train.json']\ntest_file: ['%s/world/grounding_test.json']\n"
             "image_root: '%s/world'\ndet_file: '%s/world/dets.json'\nimage_res: 64\nbatch_size: 8\n"
             "block_num: 1\noptimizer: {opt: adamW, lr: 0.001, weight_decay: 0.01}\n"
             "schedular: {sched: linear, lr: 0.001, epochs: 2, num_warmup_steps: 0.1}\n",
             dir, dir, dir, dir);
    if (!xv_test_write_file(yaml, y)) return;
    snprintf(args, sizeof args, "finetune weak_grounding --config %s --init %s --output-dir %s --seed 3 "
             "--threads 2 --quiet", yaml, model, out);
    if (cli(args)) return;
    snprintf(path, sizeof path, "%s/result.json", out);
    char *res = xv_test_read_file(path, NULL);
    cJSON *r = res ? cJSON_Parse(res) : NULL;
    const double acc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "accuracy_after"));
    const double peak = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "peak_in_box_after"));
    CHECK(r && acc >= 0 && acc <= 1 && peak >= 0 && peak <= 1, "result.json: accuracy %g, peak_in_box %g", acc, peak);
    cJSON_Delete(r);
    free(res);
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    char *log = xv_test_read_file(path, NULL);
    const char *e = log ? strstr(log, "\"kind\": \"epoch\"") : NULL;
    CHECK(e && strstr(e, "\"train_loss_itc\"") && strstr(e, "\"test_d\"") && strstr(e, "\"test_random_d\"") &&
          strstr(e, "\"test_box_share\""), "epoch record with the losses, test_d and the baselines");
    free(log);
    /* the official det_file is required: the evaluation chooses among its proposals */
    snprintf(y, sizeof y, "train_file: ['%s/world/grounding_train.json']\ntest_file: ['%s/world/grounding_test.json']\n"
             "image_root: '%s/world'\nbatch_size: 8\n", dir, dir, dir);
    snprintf(path, sizeof path, "%s/weak_no_dets.yaml", dir);
    xv_test_write_file(path, y);
    snprintf(args, sizeof args, "finetune weak_grounding --config %s --init %s --output-dir %s/refused_weak --quiet",
             path, model, dir);
    xv_test_cli_refused(dir, args, 1, "\"det_file\" is missing");
}

int main(void) {
    char out[128], yaml[160], yaml2[160], straight[160], resumed[160], nlvr_out[160], path[256], path2[256],
        args[1024];
    CHECK(xv_test_scratch_dir("xv_domain_pretrain", dir, sizeof dir), "scratch dir");
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(out, sizeof out, "%s/ta", dir);
    snprintf(yaml, sizeof yaml, "%s/ta.yaml", dir);
    snprintf(yaml2, sizeof yaml2, "%s/ta2.yaml", dir);
    snprintf(straight, sizeof straight, "%s/straight", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed", dir);
    snprintf(nlvr_out, sizeof nlvr_out, "%s/nlvr", dir);
    const int epochs = 60;
    if (!xv_test_nlvr_world(dir, 8, 8, 1) || !write_yaml(yaml, epochs) || !write_yaml(yaml2, 2))
        return xv_test_finish("test_domain_pretrain");

    snprintf(args, sizeof args, "finetune nlvr_pretrain --config %s --init %s --output-dir %s --seed 3 --threads 2 "
             "--quiet", yaml, model, out);
    if (cli(args)) return xv_test_finish("test_domain_pretrain");
    double first = NAN, last = NAN;
    static const char *const ta_terms[] = {"train_loss", NULL};
    CHECK(epoch_losses(out, ta_terms, &first, &last) == epochs, "%d epoch records", epochs);
    printf("text assignment: train loss %.4f -> %.4f (chance ln 3 = 1.0986)\n", first, last);
    /* Deterministic for the seed and thread count: measured 1.1399 -> 1.1046 (window means of 12 epochs of
     * one step). The tiny random model starts miscalibrated above chance and has not learned to match
     * captions to images after 60 steps (it gets below chance only after a few hundred, measured 1.0174
     * after 150 steps on 4 images): this checks that the step trains the model at all, a broken gradient
     * path (ta_head alone) would keep the first window's loss. Text assignment from the pretrained demo
     * model: docs/nlvr-gradcam.md. */
    CHECK(last < first - 0.02, "the loss falls: first window %.4f, last %.4f", first, last);
    snprintf(path, sizeof path, "%s/model/weights.safetensors", out);
    snprintf(path2, sizeof path2, "%s/weights.safetensors", model);
    CHECK(same_tensor(path, path2, "vision_proj.weight") && same_tensor(path, path2, "vision_proj.bias"),
          "vision_proj unchanged by text assignment");
    CHECK(!same_tensor(path, path2, "vision_encoder.patch_embed.proj.weight"), "the Swin trained");
    snprintf(args, sizeof args, "inspect %s", path);
    xv_test_cli_result r = xv_test_cli(dir, args, NULL);
    CHECK(r.status == 0 && strstr(r.out, "ta_head.weight") && strstr(r.out, "text_encoder.encoder.layer.4."),
          "model/ holds ta_head and the paired layers (1 + 2*2): %s", r.err);
    xv_test_cli_free(&r);

    /* NLVR.py --load_nlvr_pretrain: the domain-pretrained model as the start of fine-tuning */
    snprintf(args, sizeof args, "finetune nlvr --config %s/nlvr.yaml --init %s/model --output-dir %s --seed 3 "
             "--threads 2 --quiet --no-eval-before", dir, out, nlvr_out);
    if (!cli(args)) {
        snprintf(path, sizeof path, "%s/model/weights.safetensors", nlvr_out);
        snprintf(args, sizeof args, "inspect %s", path);
        r = xv_test_cli(dir, args, NULL);
        CHECK(r.status == 0 && strstr(r.out, "cls_head.0.weight") && !strstr(r.out, "ta_head"),
              "the NLVR2 model has cls_head and no ta_head");
        xv_test_cli_free(&r);
    }

    /* resume: 2 epochs (12 steps) straight == 3 steps, then --resume */
    snprintf(args, sizeof args, "finetune nlvr_pretrain --config %s --init %s --output-dir %s --seed 4 "
             "--threads 1 --quiet", yaml2, model, straight);
    if (cli(args)) return xv_test_finish("test_domain_pretrain");
    snprintf(args, sizeof args, "finetune nlvr_pretrain --config %s --init %s --output-dir %s --seed 4 "
             "--threads 1 --quiet --max-steps 3", yaml2, model, resumed);
    if (cli(args)) return xv_test_finish("test_domain_pretrain");
    snprintf(args, sizeof args, "finetune nlvr_pretrain --config %s --init %s --output-dir %s --seed 4 "
             "--threads 1 --quiet --resume", yaml2, model, resumed);
    if (cli(args)) return xv_test_finish("test_domain_pretrain");
    CHECK(xv_test_same_file(straight, resumed, "model/weights.safetensors"), "resumed: final weights differ");
    box_stage();
    weak_stage();
    xv_test_remove_dir(dir);
    return xv_test_finish("test_domain_pretrain");
}
