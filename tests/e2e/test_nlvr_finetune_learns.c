/* A tiny NLVR2 model learns: `xvlm synth` writes a small world with its
 * two-image statements (nlvr_train/dev/test.json), a tiny random pretraining
 * model is converted as NLVR.py loads it, and `xvlm finetune nlvr` trains it
 * on the statements. The mean training loss of the last epoch must fall well
 * below the first epoch's (32 statements, 20 epochs, below chance level ln 2), and
 * the run (the shared fine-tuning loop) writes log.jsonl with one "epoch"
 * record per epoch, result.json and model_best/ that `xvlm nlvr` opens.
 * About 40 CPU-seconds. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

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
    snprintf(yaml, sizeof yaml, "%s/nlvr.yaml", dir);
    if (!xv_test_nlvr_world(dir, 32, 16, 20)) return xv_test_finish("test_nlvr_finetune_learns");
    snprintf(args, sizeof args, "finetune nlvr --config %s --init %s --output-dir %s --seed 3 --threads 2 --quiet", yaml,
             model, out);
    if (run(dir, args)) return xv_test_finish("test_nlvr_finetune_learns");

    snprintf(path, sizeof path, "%s/log.jsonl", out);
    char *log = xv_test_read_file(path, NULL);
    double first = NAN, last = NAN;
    int epochs = 0;
    for (char *line = log ? strtok(log, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "kind"));
        CHECK(j && kind, "log record with a kind: %s", line);
        if (!kind || strcmp(kind, "epoch")) { /* the update records and the closing "best" one */
            cJSON_Delete(j);
            continue;
        }
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
    /* Deterministic for the seed and thread count: measured 0.7288 -> 0.3825 (the shared loop). A model that
     * does not learn stays at chance, ln 2 = 0.6931 (the labels are balanced), within noise of its first epoch. */
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
