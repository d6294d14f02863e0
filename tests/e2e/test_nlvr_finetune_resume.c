/* finetune nlvr resumes exactly through the shared loop: a small synth world,
 * a tiny random pretraining model (converted as NLVR.py loads it), 2 epochs
 * straight == stopped mid-epoch 2 (--max-steps 3) then --resume: model/ and
 * model_best/ byte-identical, and the log has an "epoch" record with
 * val_acc and test_acc per epoch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char dir[64], model[128], yaml[160];

static int cli(const char *args) { return xv_test_cli_ok(dir, args); }

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
    xv_test_remove_dir(dir);
    return xv_test_finish("test_nlvr_finetune_resume");
}
