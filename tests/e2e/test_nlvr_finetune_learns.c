/* A tiny NLVR2 model learns: `xvlm synth` writes a small world with its
 * two-image statements (nlvr_train/dev/test.json), a tiny random pretraining
 * model is converted as NLVR.py loads it, and `xvlm finetune nlvr` trains it
 * on the statements. The mean training loss of the last epoch must fall well
 * below the first epoch's (32 statements, 20 epochs, below chance level ln 2), and
 * the run writes its per-epoch log, result.json and model_best/ that `xvlm
 * nlvr` opens. About 40 CPU-seconds. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static const char *const MODEL_JSON =
    "{\"vision\": {\"image_res\": 64, \"window_size\": 8, \"embed_dim\": 8, \"depths\": [2, 2, 1, 1],"
    " \"num_heads\": [1, 2, 2, 4], \"vision_width\": 64, \"patch_size\": 32},"
    " \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 64, \"vocab_size\": 256, \"max_position_embeddings\": 32, \"fusion_layer\": 1},"
    " \"embed_dim\": 8}";

static int run(const char *dir, const char *args) {
    xv_test_cli_result r = xv_test_cli(dir, args, NULL);
    CHECK(r.status == 0, "xvlm %s: exit %d: %s", args, r.status, r.err);
    int st = r.status;
    xv_test_cli_free(&r);
    return st;
}

int main(void) {
    char dir[64], world[128], model[128], out[128], yaml[160], path[256], args[1024];
    CHECK(xv_test_scratch_dir("xv_nlvr_learns", dir, sizeof dir), "scratch dir");
    snprintf(world, sizeof world, "%s/world", dir);
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(args, sizeof args, "synth --out %s --seed 5 --images 32 --test-images 16 --size 64", world);
    if (run(dir, args)) return xv_test_finish("test_nlvr_finetune_learns");
    CHECK(mkdir(model, 0755) == 0 && xv_test_model_dir_from_json(model, MODEL_JSON, 7), "model folder");
    char src[200], dst[200];
    snprintf(src, sizeof src, "%s/vocab.txt", world);
    snprintf(dst, sizeof dst, "%s/vocab.txt", model);
    char *vocab = xv_test_read_file(src, NULL);
    CHECK(vocab && xv_test_write_file(dst, vocab), "vocab.txt copied");
    free(vocab);
    snprintf(yaml, sizeof yaml, "%s/nlvr.yaml", dir);
    char y[1200];
    snprintf(y, sizeof y,
             "train_file: ['%s/nlvr_train.json']\nval_file: '%s/nlvr_dev.json'\ntest_file: '%s/nlvr_test.json'\n"
             "image_root: '%s'\nimage_res: 64\nbatch_size: 8\n"
             "optimizer: {opt: adamW, lr: 0.003, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 0.003, epochs: 20, num_warmup_steps: 0.1}\n",
             world, world, world, world);
    CHECK(xv_test_write_file(yaml, y), "nlvr.yaml");
    snprintf(args, sizeof args, "finetune nlvr --config %s --init %s --output-dir %s --seed 3 --threads 2 --quiet", yaml,
             model, out);
    if (run(dir, args)) return xv_test_finish("test_nlvr_finetune_learns");

    snprintf(path, sizeof path, "%s/log.jsonl", out);
    char *log = xv_test_read_file(path, NULL);
    double first = NAN, last = NAN;
    int epochs = 0;
    for (char *line = log ? strtok(log, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        double loss = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "train_loss"));
        double acc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "val_acc"));
        CHECK(j && isfinite(loss) && acc >= 0 && acc <= 1, "log line: %s", line);
        if (!epochs) first = loss;
        last = loss;
        epochs++;
        cJSON_Delete(j);
    }
    free(log);
    CHECK(epochs == 20, "20 epochs logged (%d)", epochs);
    printf("train loss %.4f -> %.4f\n", first, last);
    /* Deterministic for the seed and thread count: measured 0.7044 -> 0.6453. A model that does not learn stays at
     * chance, ln 2 = 0.6931 (the labels are balanced), within noise of its first epoch. */
    CHECK(last < 0.95 * first && last < 0.68, "the loss falls below chance: first epoch %.4f, last %.4f", first, last);

    snprintf(path, sizeof path, "%s/result.json", out);
    char *res = xv_test_read_file(path, NULL);
    cJSON *r = res ? cJSON_Parse(res) : NULL;
    double best = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "best_epoch"));
    CHECK(r && best >= 0 && best < 20, "result.json names the best epoch (%g)", best);
    cJSON_Delete(r);
    free(res);
    snprintf(args, sizeof args, "nlvr --model %s/model_best --left %s/images/test_000000.jpg --right "
             "%s/images/test_000001.jpg --text 'both images contain a circle' --json", out, world, world);
    run(dir, args);
    xv_test_remove_dir(dir);
    return xv_test_finish("test_nlvr_finetune_learns");
}
