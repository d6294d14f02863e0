/* `mpirun -np 2 xvlm finetune` and `xvlm evaluate` (docs/distributed.md) on a
 * tiny X-VLM and a tiny generated world:
 * - retrieval fine-tuning over 2 ranks learns: rank 0's loss of the last
 *   steps is below that of the first; each rank took half of the samples
 *   (steps per epoch = 48 pairs / 2 ranks / batch 4); only rank 0 wrote
 *   (one log line per step);
 * - stopped mid-epoch (--max-steps), then --resume, it ends byte-identical
 *   to the uninterrupted 2-rank run (final and best weights, epoch records);
 * - the gradient all-reduce overlapped with the backward (buckets of 4096
 *   floats here, so that many start while the walk goes on) gives the same
 *   bits as the all-reduce after the backward (XV_DIST_OVERLAP=0): with two
 *   ranks every element is a + b either way;
 * - `mpirun -np 2 xvlm evaluate retrieval` (the ITM re-rank split across the
 *   ranks and summed) prints the same recalls and writes the same score
 *   file as one process, with and without --config;
 * - grounding, VQA, captioning and NLVR2 fine-tuning over 2 ranks run to
 *   their end and write their model, result.json and result files;
 * - `xvlm evaluate TASK --config` of each of those models over 2 ranks, and
 *   grounding and NLVR2 over 3 (whose splits do not divide by 3: the
 *   DistributedSampler padding), each rank evaluating its share, prints the
 *   same official dict as one process, and writes the same result file
 *   (grounding: the same boxes within 1e-3 px; a text's padded length
 *   depends on its batch neighbours, which moves a box's last bits), and
 *   `xvlm evaluate weak-grounding` over 3 ranks prints what one process does.
 * Skipped when the build has no MPI or mpirun is absent. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

enum { EPOCHS = 2, STEPS_PER_EPOCH = 6 }; /* 24 images x 2 captions over 2 ranks, batch 4 per rank */
static char root[64], world[128], model[128];
static const char *bin, *mpirun;

static void write_yaml(const char *path, const char *task) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    const bool ret = !strcmp(task, "retrieval");
    fprintf(f,
            "train_file: ['%s/%s_train.json']\ntest_file: '%s/%s_test.json'\nimage_root: '%s'\n"
            "%s: 4\nk_test: 4\nmax_tokens: 20\n"
            "optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01}\n"
            "schedular: {sched: linear, lr: 1e-3, epochs: %d, num_warmup_steps: 0.1}\n",
            world, task, world, task, world, ret ? "batch_size_train" : "batch_size", EPOCHS);
    fclose(f);
}

/* `LAUNCHER xvlm ARGS > out 2> err` in root (launcher "": one process); its exit status. */
static int run_with(const char *launcher, const char *args, const char *out_name) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s'%s' %s > '%s/%s' 2> '%s/%s.err'", launcher, bin, args, root, out_name, root,
             out_name);
    const int rc = xv_test_run(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/%s.err'", root, out_name);
        xv_test_run(cmd);
    }
    return rc;
}

/* `[mpirun -np 2] xvlm ARGS > out 2> err` in root; its exit status. */
static int run(bool two, const char *args, const char *out_name) { return run_with(two ? mpirun : "", args, out_name); }

static int finetune(const char *task, const char *cfg, const char *out, const char *extra) {
    char args[2048];
    snprintf(args, sizeof args,
             "finetune %s --config '%s' --init '%s' --output-dir '%s' --threads 1 --seed 5 --no-eval-before --quiet %s",
             task, cfg, model, out, extra);
    return run(true, args, "finetune.out");
}

static char *file_in(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return xv_test_read_file(p, NULL);
}

/* The log's lines holding `what`, joined. */
static char *lines_with(const char *dir, const char *what) {
    char *log = file_in(dir, "log.jsonl"), *out = calloc(1, log ? strlen(log) + 1 : 1);
    for (char *l = log ? strtok(log, "\n") : NULL; l && out; l = strtok(NULL, "\n"))
        if (strstr(l, what)) strcat(strcat(out, l), "\n");
    free(log);
    return out;
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p++) n++;
    return n;
}

static double number(const char *json, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = json ? strstr(json, k) : NULL;
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

static void test_retrieval(const char *cfg) {
    char straight[256], halves[256], sequential[256], extra[64];
    snprintf(straight, sizeof straight, "%s/straight", root);
    snprintf(halves, sizeof halves, "%s/halves", root);
    snprintf(sequential, sizeof sequential, "%s/sequential", root);
    CHECK(finetune("retrieval", cfg, straight, "") == 0, "the 2-rank retrieval run failed");
    char *res = file_in(straight, "result.json"), *upd = lines_with(straight, "\"kind\": \"image\"");
    const double first = number(res, "loss_first"), last = number(res, "loss_last");
    printf("2-rank retrieval fine-tuning: loss %.4f -> %.4f\n", first, last);
    CHECK(last < first, "the loss did not fall: %g -> %g", first, last);
    CHECK(count(upd, "\n") == EPOCHS * STEPS_PER_EPOCH && number(res, "steps") == EPOCHS * STEPS_PER_EPOCH,
          "%d update records, %g steps: expected %d (each rank takes half of the pairs)", count(upd, "\n"),
          number(res, "steps"), EPOCHS * STEPS_PER_EPOCH);
    free(res), free(upd);

    setenv("XV_DIST_OVERLAP", "0", 1);
    CHECK(finetune("retrieval", cfg, sequential, "") == 0, "the run without overlap failed");
    unsetenv("XV_DIST_OVERLAP");
    CHECK(xv_test_same_file(straight, sequential, "model/weights.safetensors"),
          "overlapped and sequential all-reduce give different weights");

    snprintf(extra, sizeof extra, "--max-steps %d", STEPS_PER_EPOCH + 2);
    CHECK(finetune("retrieval", cfg, halves, extra) == 0, "the stopped run failed");
    CHECK(finetune("retrieval", cfg, halves, "--resume") == 0, "the resumed run failed");
    CHECK(xv_test_same_file(straight, halves, "model/weights.safetensors"), "final weights differ after --resume");
    CHECK(xv_test_same_file(straight, halves, "model_best/weights.safetensors"), "best weights differ after --resume");
    char *ea = lines_with(straight, "\"kind\": \"epoch\""), *eb = lines_with(halves, "\"kind\": \"epoch\"");
    CHECK(count(ea, "\n") == EPOCHS && ea && eb && !strcmp(ea, eb), "epoch records differ:\n%s---\n%s", ea, eb);
    free(ea), free(eb);
}

/* 1 and 2 ranks score the fine-tuned model alike. */
static void test_evaluate(const char *cfg) {
    char args[2048];
    snprintf(args, sizeof args, "evaluate retrieval --config '%s' --model '%s/straight/model' --threads 1 --json", cfg,
             root);
    CHECK(run(false, args, "eval1.out") == 0 && run(true, args, "eval2.out") == 0, "evaluate --config failed");
    char *one = file_in(root, "eval1.out"), *two = file_in(root, "eval2.out");
    CHECK(one && two && strstr(one, "\"r_mean\"") && !strcmp(one, two),
          "evaluate --config: 1 rank and 2 ranks differ:\n%s---\n%s", one, two);
    free(one), free(two);
    for (int k = 1; k <= 2; k++) {
        snprintf(args, sizeof args,
                 "evaluate retrieval --model '%s/straight/model' --data '%s/retrieval_test.json' --image-root '%s' "
                 "--k-test 4 --threads 1 --out '%s/scores%d.json'",
                 root, world, world, root, k);
        CHECK(run(k == 2, args, k == 1 ? "plain1.out" : "plain2.out") == 0, "evaluate (%d ranks) failed", k);
    }
    /* the recalls and the number of re-ranked pairs (the file also holds timings) */
    cJSON *j[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "scores%d.json", k + 1);
        char *text = file_in(root, name);
        j[k] = text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    static const char *const keys[] = {"itm", "itc", "itm_pairs"};
    for (int i = 0; i < 3; i++) {
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j[0], keys[i]));
        char *b = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j[1], keys[i]));
        CHECK(a && b && !strcmp(a, b), "evaluate --out: \"%s\" differs between 1 and 2 ranks: %s vs %s", keys[i],
              a ? a : "(none)", b ? b : "(none)");
        if (i == 0) printf("evaluate retrieval, 1 and 2 ranks: itm %s\n", a ? a : "(none)");
        cJSON_free(a), cJSON_free(b);
    }
    cJSON_Delete(j[0]), cJSON_Delete(j[1]);
}

static char mpirun3[1200]; /* the 3-rank launcher */

/* Grounding's result files: the same expressions in the same order, each box
 * within 1e-3 px (see the top). */
static void same_boxes(const char *one, const char *many, const char *what) {
    cJSON *a = one ? cJSON_Parse(one) : NULL, *b = many ? cJSON_Parse(many) : NULL;
    const int n = cJSON_GetArraySize(a);
    CHECK(n > 0 && n == cJSON_GetArraySize(b), "%s: %d and %d results", what, n, cJSON_GetArraySize(b));
    double worst = 0;
    for (int i = 0; i < n && n == cJSON_GetArraySize(b); i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
        const cJSON *bx = cJSON_GetObjectItemCaseSensitive(x, "bbox"), *by = cJSON_GetObjectItemCaseSensitive(y, "bbox");
        CHECK(cJSON_GetObjectItemCaseSensitive(x, "ref_id")->valuedouble ==
                  cJSON_GetObjectItemCaseSensitive(y, "ref_id")->valuedouble,
              "%s: result %d is another expression", what, i);
        for (int k = 0; k < 4; k++)
            worst = fmax(worst, fabs(cJSON_GetArrayItem(bx, k)->valuedouble - cJSON_GetArrayItem(by, k)->valuedouble));
    }
    CHECK(worst <= 1e-3, "%s: boxes differ by up to %g px", what, worst);
    printf("%s: %d boxes, largest difference %.2g px\n", what, n, worst);
    cJSON_Delete(a), cJSON_Delete(b);
}

/* `xvlm evaluate TASK --config CFG --model MODEL` by one process and by the
 * ranks of `launcher`: the same official dict, the same result file
 * (result/RESULT, NULL: none). */
static void same_evaluation(const char *task, const char *cfg, const char *model_dir, const char *result,
                            const char *launcher, int ranks) {
    char args[2048], dir[2][512], *dict[2], *file[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        snprintf(dir[k], sizeof dir[k], "%s/eval_%s_%d", root, task, k ? ranks : 1);
        snprintf(args, sizeof args, "evaluate %s --config '%s' --model '%s' --output-dir '%s' --threads 1 --json", task,
                 cfg, model_dir, dir[k]);
        CHECK(run_with(k ? launcher : "", args, k ? "evalN.out" : "eval1.out") == 0, "evaluate %s (%d ranks) failed",
              task, k ? ranks : 1);
        dict[k] = file_in(root, k ? "evalN.out" : "eval1.out");
        if (result) {
            char name[128];
            snprintf(name, sizeof name, "result/%s", result);
            file[k] = file_in(dir[k], name);
        }
    }
    CHECK(dict[0] && dict[1] && !strcmp(dict[0], dict[1]), "evaluate %s: 1 process and %d ranks differ:\n%s---\n%s",
          task, ranks, dict[0] ? dict[0] : "(none)", dict[1] ? dict[1] : "(none)");
    printf("evaluate %s, 1 process and %d ranks: %s", task, ranks, dict[0] ? dict[0] : "(none)\n");
    if (result && !strcmp(task, "grounding")) {
        same_boxes(file[0], file[1], "evaluate grounding");
    } else if (result) {
        CHECK(file[0] && file[1] && !strcmp(file[0], file[1]), "evaluate %s: result/%s differs between 1 process and "
              "%d ranks", task, result, ranks);
    }
    free(dict[0]), free(dict[1]), free(file[0]), free(file[1]);
}

static void test_grounding(void) {
    char cfg[256], out[256];
    snprintf(cfg, sizeof cfg, "%s/grounding.yaml", root);
    snprintf(out, sizeof out, "%s/grounding", root);
    write_yaml(cfg, "grounding");
    CHECK(finetune("grounding", cfg, out, "") == 0, "the 2-rank grounding run failed");
    const char *files[] = {"model/weights.safetensors", "result.json", "loss_curves.png", "result/epoch1.json", NULL};
    for (int i = 0; files[i]; i++) {
        char *f = file_in(out, files[i]);
        CHECK(f != NULL, "the grounding run wrote no %s", files[i]);
        free(f);
    }
    char *upd = lines_with(out, "\"kind\": \"region\""), *ep = lines_with(out, "\"kind\": \"epoch\"");
    CHECK(count(upd, "\n") > 0 && count(ep, "\n") == EPOCHS && count(ep, "\"test_d\": ") == EPOCHS,
          "grounding log: %d updates, epochs:\n%s", count(upd, "\n"), ep);
    free(upd), free(ep);
    char m[300];
    snprintf(m, sizeof m, "%s/model", out);
    same_evaluation("grounding", cfg, m, "grounding_bbox_eval.json", mpirun, 2);
    same_evaluation("grounding", cfg, m, "grounding_bbox_eval.json", mpirun3, 3);
    /* weak grounding: one Grad-CAM map per pass, so the same bits on any share */
    char args[2048], *one, *three;
    snprintf(args, sizeof args,
             "evaluate weak-grounding --model '%s' --data '%s/grounding_test.json' --image-root '%s' --dets "
             "'%s/dets.json' --threads 1",
             m, world, world, world);
    CHECK(run_with("", args, "weak1.out") == 0 && run_with(mpirun3, args, "weak3.out") == 0,
          "evaluate weak-grounding failed");
    one = file_in(root, "weak1.out"), three = file_in(root, "weak3.out");
    CHECK(one && three && strstr(one, "correct") && !strcmp(one, three),
          "evaluate weak-grounding: 1 process and 3 ranks differ:\n%s---\n%s", one ? one : "", three ? three : "");
    printf("evaluate weak-grounding, 1 process and 3 ranks: %s", one ? one : "(none)\n");
    free(one), free(three);
}

/* VQA, captioning and NLVR2 on the NLVR test world (its model has the
 * world's vocabulary), one epoch each. */
static void test_other_tasks(void) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, "%s/tasks", root);
    mkdir(dir, 0777);
    if (!xv_test_nlvr_world(dir, 24, 4, 1)) return;
    snprintf(p, sizeof p, "%s/vqa.yaml", dir);
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "train_file: ['%s/world/vqa_train.json']\ntest_file: ['%s/world/vqa_test.json']\n"
                   "vqa_root: '%s/world'\nvg_root: '%s/world'\nanswer_list: '%s/world/answer_list.json'\n"
                   "batch_size_train: 8\nk_test: 4\n", dir, dir, dir, dir, dir);
        fputs("optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
              "schedular: {sched: linear, lr: 1e-3, epochs: 1, num_warmup_steps: 0.1}\n", f);
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/captioning.yaml", dir);
    if ((f = fopen(p, "w"))) {
        fprintf(f, "train_file: ['%s/world/caption_train.json']\ntest_file: '%s/world/caption_test.json'\n"
                   "image_root: '%s/world'\nbatch_size_train: 8\nprompt: 'a picture of '\nmax_length: 10\n"
                   "min_length: 3\nnum_beams: 2\n", dir, dir, dir);
        fputs("optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
              "schedular: {sched: linear, lr: 1e-3, epochs: 1, num_warmup_steps: 0.1}\n", f);
        fclose(f);
    }
    static const char *const tasks[3] = {"vqa", "captioning", "nlvr"};
    for (int t = 0; t < 3; t++) {
        char cfg[512], init[512], out[512];
        snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, tasks[t]);
        snprintf(init, sizeof init, "%s/model", dir);
        snprintf(out, sizeof out, "%s/out_%s", dir, tasks[t]);
        char args[2048];
        snprintf(args, sizeof args,
                 "finetune %s --config '%s' --init '%s' --output-dir '%s' --threads 1 --seed 5 --no-eval-before --quiet",
                 tasks[t], cfg, init, out);
        CHECK(run(true, args, "task.out") == 0, "the 2-rank %s run failed", tasks[t]);
        char *res = file_in(out, "result.json"), *model_w = file_in(out, "model/config.json");
        CHECK(res && model_w && number(res, "steps") >= 1, "%s: result.json and model/ written: %s", tasks[t],
              res ? res : "(none)");
        free(res), free(model_w);
        static const char *const results[3] = {"vqa_eval.json", "test_eval.json", NULL};
        char m[600];
        snprintf(m, sizeof m, "%s/model", out);
        same_evaluation(tasks[t], cfg, m, results[t], mpirun, 2);
        if (t == 2) same_evaluation(tasks[t], cfg, m, NULL, mpirun3, 3);
    }
}

int main(void) {
    bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN not set");
    if (!xv_test_mpirun(3)) return xv_test_skip("no MPI in this build, or mpirun absent");
    snprintf(mpirun3, sizeof mpirun3, "%s", xv_test_mpirun(3));
    mpirun = xv_test_mpirun(2); /* the same static buffer: taken last */
    if (!xv_test_scratch_dir("xv_test_finetune_mpi", root, sizeof root)) return 1;
    setenv("XV_DIST_BUCKET_FLOATS", "4096", 1); /* the ranks inherit it from mpirun */
    snprintf(world, sizeof world, "%s/world", root);
    snprintf(model, sizeof model, "%s/tiny", root);
    char args[512], cfg[256];
    snprintf(args, sizeof args, "synth --out '%s' --seed 2 --images 24 --test-images 4 --size 64 --captions 2", world);
    CHECK(run(false, args, "synth.out") == 0, "synth failed");
    mkdir(model, 0777);
    if (xv_test_failures || !xv_test_tiny_model_dir(model, 3, true)) return xv_test_finish("test_finetune_mpi");
    snprintf(cfg, sizeof cfg, "%s/retrieval.yaml", root);
    write_yaml(cfg, "retrieval");
    if (xv_test_failures == 0) test_retrieval(cfg);
    if (xv_test_failures == 0) test_evaluate(cfg);
    if (xv_test_failures == 0) test_grounding();
    if (xv_test_failures == 0) test_other_tasks();
    if (xv_test_failures == 0) xv_test_remove_dir(root);
    return xv_test_finish("test_finetune_mpi");
}
