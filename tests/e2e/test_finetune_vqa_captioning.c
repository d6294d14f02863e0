/* Fine-tuning a random tiny X-VLM for VQA and captioning on a small
 * synthetic world (`xvlm synth`: vqa_*.json, answer_list.json,
 * caption_*.json in the official formats) lowers each training loss by a
 * stated fraction, writes the official result files, and leaves a model
 * folder that `xvlm vqa` / `xvlm caption` open. One thread, seconds. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/threads.h"
#include "testutil.h"
#include "train/finetune.h"

static void write_yaml(const char *path, const char *world, bool vqa, int epochs) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    if (vqa)
        fprintf(f, "train_file: ['%s/vqa_train.json']\ntest_file: ['%s/vqa_test.json']\nvqa_root: '%s'\n"
                   "vg_root: '%s'\nanswer_list: '%s/answer_list.json'\nbatch_size_train: 16\nk_test: 8\n",
                world, world, world, world, world);
    else
        fprintf(f, "train_file: ['%s/caption_train.json']\ntest_file: '%s/caption_test.json'\nimage_root: '%s'\n"
                   "batch_size_train: 16\nprompt: 'a picture of '\nlabel_smoothing: 0.1\nmax_length: 20\n"
                   "min_length: 5\nnum_beams: 2\n", world, world, world);
    fprintf(f, "max_tokens: 40\noptimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
               "schedular: {sched: linear, lr: 1e-3, epochs: %d, num_warmup_steps: 0.1}\n", epochs);
    fclose(f);
}

/* The result file is a JSON list of objects with both keys. */
static void check_results(const char *out, const char *name, const char *k1, const char *k2) {
    char path[512];
    snprintf(path, sizeof path, "%s/result/%s.json", out, name);
    char *text = xv_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *e = cJSON_IsArray(j) ? j->child : NULL;
    CHECK(e && cJSON_GetObjectItemCaseSensitive(e, k1) && cJSON_GetObjectItemCaseSensitive(e, k2),
          "%s: a JSON list of {%s, %s}", path, k1, k2);
    cJSON_Delete(j);
    free(text);
}

/* Hostile image names (issue 18): `world`/SPLIT_train.json with its first
 * entry's image replaced by `image`, fine-tuned from `model`: refused before
 * any step with `words` in the message (a decoy image lies in the root's
 * parent: taking it would train). An alarm fails a hang. */
static void hostile_train_file(const char *root, const char *world, const char *model, bool vqa, const char *image,
                               const char *words) {
    char path[512], cfg[512], out[512];
    snprintf(path, sizeof path, "%s/%s_train.json", world, vqa ? "vqa" : "caption");
    char *text = xv_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsArray(j) || !j->child) {
        CHECK(false, "%s: a list", path);
        cJSON_Delete(j);
        return;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(j->child, "image", cJSON_CreateString(image));
    text = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/hostile_%s.json", root, vqa ? "vqa" : "caption");
    xv_test_write_file(path, text);
    free(text);
    snprintf(cfg, sizeof cfg, "%s/hostile.yaml", root);
    write_yaml(cfg, world, vqa, 1);
    FILE *f = fopen(cfg, "a"); /* a later train_file replaces the first */
    if (f) fprintf(f, "train_file: ['%s']\n", path), fclose(f);
    snprintf(out, sizeof out, "%s/out_hostile", root);
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = cfg;
    o.init = model;
    o.output_dir = out;
    o.eval_before = false;
    o.progress = false;
    xv_finetune_result r;
    alarm(60);
    xv_status st = xv_finetune_run(vqa ? "vqa" : "captioning", &o, &r);
    alarm(0);
    CHECK(st != XV_OK && strstr(xv_error_message(), words), "%s image '%s' refused (%s): %s", vqa ? "VQA" : "caption",
          image, words, xv_error_message());
    xv_test_remove_dir(out);
}

int main(void) {
    const char *bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN (the xvlm program) not set");
    xv_set_threads(1);
    char root[64];
    if (!xv_test_scratch_dir("xv_ft_vqacap", root, sizeof root)) return xv_test_skip("cannot create a temporary folder");
    char world[256], model[256], cfg[256], out[2][256], cmd[1400];
    snprintf(world, sizeof world, "%s/world", root);
    snprintf(model, sizeof model, "%s/tiny", root);
    CHECK(xv_test_vqacap_world(root, 96), "the world");

    const char *tasks[2] = {"vqa", "captioning"};
    const int epochs[2] = {4, 4};
    xv_finetune_result r[2];
    for (int t = 0; t < 2 && xv_test_failures == 0; t++) {
        snprintf(cfg, sizeof cfg, "%s/%s.yaml", root, tasks[t]);
        snprintf(out[t], sizeof out[t], "%s/out_%s", root, tasks[t]);
        write_yaml(cfg, world, t == 0, epochs[t]);
        xv_finetune_opts o = xv_finetune_opts_default();
        o.config_path = cfg;
        o.init = model;
        o.output_dir = out[t];
        o.seed = (uint64_t)xv_test_env_num("XV_LEARN_SEED", 1);
        o.eval_before = false;
        o.progress = false;
        CHECK_OK(xv_finetune_run(tasks[t], &o, &r[t]));
        fprintf(stderr, "%s: %lld steps %.1f s, loss %.4f -> %.4f (%.2f), metric %.4f\n", tasks[t],
                (long long)r[t].steps, r[t].seconds_train, r[t].first_loss, r[t].last_loss,
                r[t].last_loss / r[t].first_loss, r[t].metric_after);
    }
    if (xv_test_failures == 0) {
        /* measured (one thread, seed 1): VQA 14.35 -> 7.54 (0.53), captioning 5.21 -> 3.65 (0.70) */
        CHECK(r[0].last_loss < 0.7 * r[0].first_loss, "VQA loss (Σ w·NLL / questions) falls by 30 %%");
        CHECK(r[1].last_loss < 0.85 * r[1].first_loss, "captioning loss (smoothed LM) falls by 15 %%");
        CHECK(isfinite(r[0].metric_after) && r[0].metric_after >= 0 && r[0].metric_after <= 100, "a VQA accuracy");
        CHECK(isfinite(r[1].metric_after) && r[1].metric_after >= 0, "a CIDEr-D");
        check_results(out[0], "epoch3", "question_id", "answer");
        check_results(out[1], "epoch3", "image_id", "caption");
        /* `xvlm evaluate TASK --config` on the fine-tuned folders: the official
         * --evaluate result files and the same scores as the last epoch's */
        for (int t = 0; t < 2; t++) {
            snprintf(cfg, sizeof cfg, "%s/%s.yaml", root, tasks[t]);
            snprintf(cmd, sizeof cmd, "evaluate %s --config '%s' --model '%s/model' --output-dir '%s/eval' --json "
                     "--threads 1", tasks[t], cfg, out[t], out[t]);
            cJSON *j = xv_test_cli_json(root, cmd);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, t == 0 ? "acc" : "CIDEr");
            CHECK(cJSON_IsNumber(v) && fabs(v->valuedouble - r[t].metric_after) < 1e-9,
                  "evaluate %s: %g, the fine-tuning's last evaluation %g", tasks[t], cJSON_IsNumber(v) ? v->valuedouble : NAN,
                  r[t].metric_after);
            if (t == 0) {
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "answer_prior_acc");
                CHECK(cJSON_IsNumber(p) && p->valuedouble > 0 && p->valuedouble <= 100, "an answer-prior accuracy");
            }
            cJSON_Delete(j);
            snprintf(cmd, sizeof cmd, "%s/eval", out[t]);
            check_results(cmd, t == 0 ? "vqa_eval" : "test_eval", t == 0 ? "question_id" : "image_id",
                          t == 0 ? "answer" : "caption");
        }
        /* a pretraining model is not a VQA model to evaluate */
        snprintf(cmd, sizeof cmd, "evaluate vqa --config '%s/vqa.yaml' --model '%s' --threads 1", root, model);
        xv_test_cli_refused(root, cmd, 1, "is a pretraining model");
        /* the fine-tuned folders serve the inference commands */
        snprintf(cmd, sizeof cmd, "'%s' vqa --model '%s/model' --image '%s/images/test_000000.jpg' --question "
                 "'what colour is the star?' --answers '%s/answer_list.json' --threads 1 >/dev/null", bin, out[0],
                 world, world);
        CHECK(system(cmd) == 0, "%s", cmd);
        snprintf(cmd, sizeof cmd, "'%s' caption --model '%s/model' --image '%s/images/test_000000.jpg' --threads 1 "
                 ">/dev/null", bin, out[1], world);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    if (xv_test_failures == 0) {
        char decoy[300], abs_decoy[300], fifo[300];
        snprintf(decoy, sizeof decoy, "%s/decoy.jpg", root);
        CHECK(xv_test_tiny_image(decoy, 64, 64, 1), "decoy in the root's parent");
        snprintf(abs_decoy, sizeof abs_decoy, "%s", decoy);
        snprintf(fifo, sizeof fifo, "%s/images/fifo.jpg", world);
        CHECK(mkfifo(fifo, 0600) == 0, "FIFO in the world");
        hostile_train_file(root, world, model, true, "../decoy.jpg", "entry 0: ");
        hostile_train_file(root, world, model, true, "../decoy.jpg", "outside the image root");
        hostile_train_file(root, world, model, true, abs_decoy, "outside the image root");
        hostile_train_file(root, world, model, false, "../decoy.jpg", "outside the image root");
        hostile_train_file(root, world, model, true, "images/fifo.jpg", "FIFO");
    }
    if (xv_test_failures == 0) xv_test_remove_dir(root);
    else fprintf(stderr, "kept %s for inspection\n", root);
    return xv_test_finish("test_finetune_vqa_captioning");
}
