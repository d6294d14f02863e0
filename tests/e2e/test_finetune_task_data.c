/* `xvlm finetune` on data laid out as the official scripts expect it, run
 * from the folder that holds it (relative paths from the working directory):
 * - grounding (Grounding_bbox.yaml): train entries {image, text, ref_id}
 *   whose boxes come from the REFER index (refcoco_data), test_file a list of
 *   a val and a test file, scored per REFER split (val_d, testA_d, testB_d),
 *   result/epoch0.json with every ref_id;
 * - retrieval (Retrieval_coco.yaml): two train files read in full, val_file
 *   and test_file each scored with itm_eval's dict.
 * A tiny random model, two steps each: what is checked is the data path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/threads.h"
#include "refer_fixture.h"
#include "testutil.h"
#include "train/finetune.h"

static void make_world(void) {
    mkdir("images", 0777), mkdir("images/coco", 0777), mkdir("data", 0777), mkdir("data/finetune", 0777);
    mkdir("data/finetune/refcoco+", 0777);
    static const char *names[3] = {"images/coco/a.jpg", "images/coco/b.jpg", "images/coco/c.jpg"};
    for (int i = 0; i < 3; i++) CHECK(xv_test_tiny_image(names[i], 96, 80, i), "image %s", names[i]);
    const xv_test_ref refs[7] = {{1, 101, 1, "train"}, {2, 102, 2, "train"}, {3, 103, 3, "train"},
                                 {4, 104, 1, "train"}, {5, 105, 1, "val"},   {6, 106, 2, "testA"},
                                 {7, 107, 3, "testB"}};
    xv_test_write_refs("data/finetune/refcoco+/refs(unc).p", refs, 7);
    xv_test_write_file("data/finetune/refcoco+/instances.json",
                       "{\"images\": [{\"id\": 1, \"width\": 96, \"height\": 80}, {\"id\": 2, \"width\": 96,"
                       " \"height\": 80}, {\"id\": 3, \"width\": 96, \"height\": 80}], \"annotations\": ["
                       "{\"id\": 101, \"bbox\": [10, 10, 40, 30]}, {\"id\": 102, \"bbox\": [20, 5, 50, 60]},"
                       "{\"id\": 103, \"bbox\": [0, 0, 96, 80]}, {\"id\": 104, \"bbox\": [50, 40, 30, 30]},"
                       "{\"id\": 105, \"bbox\": [12, 8, 40, 30]}, {\"id\": 106, \"bbox\": [20, 5, 50, 60]},"
                       "{\"id\": 107, \"bbox\": [5, 5, 60, 60]}], \"categories\": []}");
    xv_test_write_file("data/finetune/refcoco+_train.json",
                       "[{\"image\": \"a.jpg\", \"text\": \"a dog\", \"ref_id\": 1},"
                       " {\"image\": \"b.jpg\", \"text\": \"the cat on the left\", \"ref_id\": 2},"
                       " {\"image\": \"c.jpg\", \"text\": \"a red car\", \"ref_id\": 3},"
                       " {\"image\": \"a.jpg\", \"text\": \"the man\", \"ref_id\": 4}]");
    xv_test_write_file("data/finetune/refcoco+_val.json", "[{\"image\": \"a.jpg\", \"text\": \"a dog\", \"ref_id\": 5}]");
    xv_test_write_file("data/finetune/refcoco+_test.json",
                       "[{\"image\": \"b.jpg\", \"text\": \"a cat\", \"ref_id\": 6},"
                       " {\"image\": \"c.jpg\", \"text\": \"a car\", \"ref_id\": 7}]");
    xv_test_write_file("data/finetune/dets.json", "{\"1\": [[0, 0, 10, 10]]}");
    xv_test_write_file("grounding.yaml",
                       "train_file: ['data/finetune/refcoco+_train.json']\n"
                       "test_file: ['data/finetune/refcoco+_val.json', 'data/finetune/refcoco+_test.json']\n"
                       "refcoco_data: 'data/finetune/'\ndet_file: 'data/finetune/dets.json'\n"
                       "coco_file: 'data/finetune/cocos.json'\nimage_root: 'images/coco/'\n"
                       "image_res: 64\nbatch_size: 2\n"
                       "optimizer: {opt: adamW, lr: 1e-4, weight_decay: 0.01}\n"
                       "schedular: {sched: linear, epochs: 1, num_warmup_steps: 0.1}\n");

    xv_test_write_file("data/finetune/coco_train_a.json",
                       "[{\"image\": \"a.jpg\", \"caption\": \"a dog\", \"image_id\": 1},"
                       " {\"image\": \"b.jpg\", \"caption\": \"a cat\", \"image_id\": 2}]");
    xv_test_write_file("data/finetune/coco_train_b.json",
                       "[{\"image\": \"c.jpg\", \"caption\": \"a car\", \"image_id\": 3},"
                       " {\"image\": \"a.jpg\", \"caption\": \"the man\", \"image_id\": 1}]");
    xv_test_write_file("data/finetune/coco_val.json",
                       "[{\"image\": \"a.jpg\", \"caption\": [\"a dog\", \"the man\"]},"
                       " {\"image\": \"b.jpg\", \"caption\": [\"a cat\"]}]");
    xv_test_write_file("data/finetune/coco_test.json",
                       "[{\"image\": \"c.jpg\", \"caption\": [\"a car\"]}, {\"image\": \"b.jpg\", \"caption\": "
                       "[\"a cat\"]}]");
    xv_test_write_file("retrieval.yaml",
                       "train_file: ['data/finetune/coco_train_a.json', 'data/finetune/coco_train_b.json']\n"
                       "val_file: 'data/finetune/coco_val.json'\ntest_file: 'data/finetune/coco_test.json'\n"
                       "image_root: 'images/coco/'\nimage_res: 64\nbatch_size_train: 4\nk_test: 2\n"
                       "optimizer: {opt: adamW, lr: 1e-4, weight_decay: 0.01}\n"
                       "schedular: {sched: linear, epochs: 1, num_warmup_steps: 0.1}\n");
}

static xv_finetune_opts opts_for(const char *config, const char *out, int64_t steps) {
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = config, o.init_dir = "tiny", o.output_dir = out, o.max_steps = steps, o.progress = false;
    return o;
}

static void test_grounding(void) {
    xv_finetune_opts o = opts_for("grounding.yaml", "out_grounding", 2);
    xv_finetune_result r;
    CHECK_OK(xv_finetune_run("grounding", &o, &r));
    const double val_d = xv_finetune_scores_get(&r.after, "val_d"), testA_d = xv_finetune_scores_get(&r.after, "testA_d"),
                 testB_d = xv_finetune_scores_get(&r.after, "testB_d");
    /* a split without expressions scores NaN */
    CHECK(r.steps == 2 && val_d >= 0 && val_d <= 1 && testA_d >= 0 && testA_d <= 1 && testB_d >= 0 && testB_d <= 1,
          "4 train expressions from REFER, batch 2; one test expression in each split");
    CHECK(isfinite(xv_finetune_scores_get(&r.before, "val_d")) && isfinite(r.metric_before),
          "the zero-shot model scored too");
    char *res = xv_test_read_file("out_grounding/result.json", NULL);
    CHECK(res && strstr(res, "\"val_d\"") && strstr(res, "\"testA_d\"") && strstr(res, "\"testB_d\""),
          "result.json carries Grounding_bbox.py's names: %s", res ? res : "(none)");
    free(res);
    char *ep = xv_test_read_file("out_grounding/result/epoch0.json", NULL);
    CHECK(ep && strstr(ep, "\"ref_id\":5") && strstr(ep, "\"ref_id\":6") && strstr(ep, "\"ref_id\":7"),
          "result/epoch0.json: every test ref_id: %s", ep ? ep : "(none)");
    free(ep);
    CHECK(access("out_grounding/result/zero_shot.json", F_OK) == 0, "the zero-shot result file");

    /* `xvlm evaluate grounding --refcoco-data`: the same REFER scoring from the command line */
    const char *bin = getenv("XV_BIN");
    if (bin) {
        xv_test_cli_result c = xv_test_cli(".", "evaluate grounding --model out_grounding/model --data "
                                                "data/finetune/refcoco+_test.json --image-root images/coco "
                                                "--refcoco-data data/finetune --out ev.json --threads 1", NULL);
        char *ev = xv_test_read_file("ev.json", NULL);
        CHECK(c.status == 0 && strstr(c.out, "testA_d") && strstr(c.out, "(1), testB_d") && ev &&
                  strstr(ev, "\"ref_id\":\t7") && strstr(ev, "\"val_d\":\tnull"),
              "evaluate with REFER: status %d, out %s, err %s, json %s", c.status, c.out, c.err, ev ? ev : "(none)");
        free(ev);
        xv_test_cli_free(&c);
    }

    /* a train ref_id the REFER index lacks: refused, the file named */
    xv_test_write_file("data/finetune/refcoco+_train.json", "[{\"image\": \"a.jpg\", \"text\": \"a\", \"ref_id\": 9}]");
    xv_status st = xv_finetune_run("grounding", &o, &r);
    CHECK(st != XV_OK && strstr(xv_error_message(), "data/finetune/refcoco+_train.json: entry 0: ref_id 9 is not in"),
          "unknown ref_id: %s", xv_error_message());
}

static void test_retrieval(void) {
    xv_finetune_opts o = opts_for("retrieval.yaml", "out_retrieval", 1);
    xv_finetune_result r;
    CHECK_OK(xv_finetune_run("retrieval", &o, &r));
    CHECK(r.steps == 1 && xv_finetune_scores_get(&r.after, "test_r_mean") == r.metric_after &&
              xv_finetune_scores_get(&r.after, "val_img_r10") == 100,
          "both train files (one batch of 4), val (2 images: R@10 100) and test scored");
    char *res = xv_test_read_file("out_retrieval/result.json", NULL);
    CHECK(res && strstr(res, "\"val\"") && strstr(res, "\"test\"") && strstr(res, "\"txt_r_mean\"") &&
              strstr(res, "\"img_r10\""),
          "result.json carries itm_eval's dicts: %s", res ? res : "(none)");
    free(res);
}

int main(void) {
    xv_set_threads(1);
    char dir[256], cwd[1024];
    if (!getcwd(cwd, sizeof cwd) || !xv_test_scratch_dir("xv_ft_task_data", dir, sizeof dir) || chdir(dir) != 0)
        return xv_test_finish("test_finetune_task_data");
    make_world();
    mkdir("tiny", 0777);
    CHECK(xv_test_tiny_model_dir("tiny", 5, true), "tiny model");
    if (xv_test_failures == 0) test_grounding();
    if (xv_test_failures == 0) test_retrieval();
    CHECK(chdir(cwd) == 0, "back to %s", cwd);
    if (xv_test_failures == 0) xv_test_remove_dir(dir);
    return xv_test_finish("test_finetune_task_data");
}
