/* finetune nlvr resumes exactly through the shared loop: a small synth world,
 * a tiny random pretraining model (converted as NLVR.py loads it), 2 epochs
 * straight == stopped mid-epoch 2 (--max-steps 3) then --resume: model/ and
 * model_best/ byte-identical, and the log has an "epoch" record with
 * val_acc and test_acc per epoch; `xvlm evaluate nlvr` of model/ gives the
 * accuracies of result.json (it crashed once: no training set, no graph) and
 * refuses a model without cls_head. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char dir[64], model[128], yaml[160];

static int cli(const char *args) { return xv_test_cli_ok(dir, args); }

/* official[split].acc of a {"val": {"acc": x}, "test": {...}} dict; NaN when absent. */
static double acc(const cJSON *official, const char *split) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(official, split), "acc");
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* evaluate nlvr of `run`/model == the run's result.json "after"; a pretraining model is refused. */
static void check_evaluate(const char *run) {
    char args[1024], path[256];
    snprintf(args, sizeof args, "evaluate nlvr --config %s --model %s/model --threads 1 --json", yaml, run);
    cJSON *got = xv_test_cli_json(dir, args);
    snprintf(path, sizeof path, "%s/result.json", run);
    char *text = xv_test_read_file(path, NULL);
    cJSON *result = text ? cJSON_Parse(text) : NULL, *after = cJSON_GetObjectItem(result, "after");
    CHECK(got && after, "evaluate nlvr printed a dict and %s has \"after\"", path);
    for (int k = 0; got && after && k < 2; k++) {
        const char *split = k ? "test" : "val";
        CHECK(acc(got, split) == acc(after, split) && !isnan(acc(got, split)), "evaluate nlvr %s acc %g, result.json %g",
              split, acc(got, split), acc(after, split));
    }
    cJSON_Delete(got), cJSON_Delete(result), free(text);
    snprintf(args, sizeof args, "evaluate nlvr --config %s --model %s", yaml, model);
    xv_test_cli_refused(dir, args, 1, "not an NLVR2 model (no cls_head)");
}

static int finetune(const char *out, const char *extra) {
    char args[1024];
    snprintf(args, sizeof args, "finetune nlvr --config %s --init %s --output-dir %s --seed 3 --threads 1 --quiet "
             "--no-eval-before %s", yaml, model, out, extra);
    return cli(args);
}

int main(void) {
    char straight[160], resumed[160], path[256];
    CHECK(xv_test_scratch_dir("xv_nlvr_resume", dir, sizeof dir), "scratch dir");
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(yaml, sizeof yaml, "%s/nlvr.yaml", dir);
    snprintf(straight, sizeof straight, "%s/straight", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed", dir);
    if (!xv_test_nlvr_world(dir, 16, 8, 2)) return xv_test_finish("test_nlvr_finetune_resume");
    if (finetune(straight, "") || finetune(resumed, "--max-steps 3") || finetune(resumed, "--resume"))
        return xv_test_finish("test_nlvr_finetune_resume");
    CHECK(xv_test_same_file(straight, resumed, "model/weights.safetensors"), "resumed: final weights differ");
    CHECK(xv_test_same_file(straight, resumed, "model_best/weights.safetensors"), "resumed: best weights differ");
    snprintf(path, sizeof path, "%s/log.jsonl", straight);
    char *log = xv_test_read_file(path, NULL);
    int epochs = 0;
    for (const char *p = log; p && (p = strstr(p, "\"kind\": \"epoch\"")); p++) {
        const char *end = strchr(p, '\n');
        const char *v = strstr(p, "\"val_acc\": "), *t = strstr(p, "\"test_acc\": ");
        CHECK(v && t && (!end || (v < end && t < end)), "epoch record %d has val_acc and test_acc", epochs);
        epochs++;
    }
    CHECK(epochs == 2, "2 epoch records in %s (%d)", path, epochs);
    free(log);
    check_evaluate(straight);
    xv_test_remove_dir(dir);
    return xv_test_finish("test_nlvr_finetune_resume");
}
