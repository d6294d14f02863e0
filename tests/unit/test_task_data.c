/* The official task data: the REFER index (refs(unc).p, a Python pickle
 * written here byte by byte as Python 2's protocol 2 writes it, and
 * instances.json) gives grounding entries their box, image size and split;
 * lists of files are read in full; relative paths are taken from the working
 * directory; per-split scores follow grounding_eval_bbox; bad inputs are
 * refused with the file named. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks/eval_data.h"
#include "tasks/eval_grounding.h"
#include "tasks/refer.h"
#include "refer_fixture.h"
#include "testutil.h"

/* refs of ref_id 10 (val), 11 (testA), 12 (testB), 13 (train); the split of
 * ref 12 left out when `no_split`. */
static void write_refs(const char *path, bool no_split) {
    const xv_test_ref refs[4] = {
        {10, 100, 1, "val"}, {11, 101, 1, "testA"}, {12, 102, 2, no_split ? NULL : "testB"}, {1000, 103, 2, "train"}};
    xv_test_write_refs(path, refs, 4);
}

static const char *k_instances =
    "{\"images\": [{\"id\": 1, \"width\": 640, \"height\": 480}, {\"id\": 2, \"width\": 300, \"height\": 200}],"
    " \"annotations\": [{\"id\": 100, \"image_id\": 1, \"bbox\": [10, 20, 30, 40]},"
    " {\"id\": 101, \"image_id\": 1, \"bbox\": [0.5, 0, 50, 50]},"
    " {\"id\": 102, \"image_id\": 2, \"bbox\": [5, 5, 100, 60]},"
    " {\"id\": 103, \"image_id\": 2, \"bbox\": [1, 2, 3, 4]}], \"categories\": [{\"id\": 1, \"name\": \"dog\"}]}";

static void expect_error(xv_status st, const char *needle, const char *what) {
    CHECK(st != XV_OK && strstr(xv_error_message(), needle), "%s: status %d, message: %s (want '%s')", what, (int)st,
          xv_error_message(), needle);
}

static void test_refer(void) {
    mkdir("data", 0777), mkdir("data/refcoco+", 0777);
    write_refs("data/refcoco+/refs(unc).p", false);
    xv_test_write_file("data/refcoco+/instances.json", k_instances);
    xv_refer r;
    /* relative: from the working directory, as REFER(config['refcoco_data'], ...) */
    CHECK_OK(xv_refer_load("data/", "refcoco+", "unc", &r));
    const xv_refer_ref *a = xv_refer_find(&r, 12), *b = xv_refer_find(&r, 1000);
    CHECK(r.n == 4 && a && a->split == XV_REFER_TESTB && a->bbox[0] == 5 && a->bbox[2] == 100 && a->width == 300 &&
              a->height == 200 && a->image_id == 2,
          "ref 12: testB, the box of annotation 102, image 2's size");
    CHECK(b && b->split == XV_REFER_TRAIN && b->bbox[3] == 4, "ref 1000 (BININT): train, annotation 103");
    CHECK(xv_refer_find(&r, 10)->bbox[1] == 20 && xv_refer_find(&r, 11)->bbox[0] == 0.5 && !xv_refer_find(&r, 99),
          "refs found by id, an absent one is NULL");

    /* grounding entries, two test files concatenated as test_file lists are */
    xv_test_write_file("val.json", "[{\"image\": \"a.jpg\", \"text\": \"left dog\", \"ref_id\": 10},"
                                   " {\"image\": \"a.jpg\", \"text\": \"the cat\", \"ref_id\": 11}]");
    xv_test_write_file("test.json", "[{\"image\": \"b.jpg\", \"text\": \"a box\", \"ref_id\": 12}]");
    const char *files[2] = {"val.json", "test.json"};
    xv_grounding_set s;
    CHECK_OK(xv_grounding_set_read_files(files, 2, &(xv_fs_root){.root = "images/coco"}, &r, &s));
    CHECK(s.n == 3 && s.n_images == 2 && !strcmp(s.image_paths[1], "images/coco/b.jpg") && s.image[2] == 1,
          "both files in full, image_root joined");
    CHECK(s.ref_id[2] == 12 && s.split[2] == XV_REFER_TESTB && s.bbox[2][2] == 100 && s.size[2][0] == 300 &&
              s.split[0] == XV_REFER_VAL && s.split[1] == XV_REFER_TESTA && s.bbox[0][0] == 10,
          "boxes, sizes and splits from REFER");

    /* grounding_eval_bbox: fractions per split */
    double iou[3] = {0.7, 0.2, 0.5};
    double pred[3][4] = {{10, 20, 30, 40}, {0, 0, 10, 10}, {5, 5, 100, 60}};
    int size[3][2] = {{640, 480}, {640, 480}, {300, 200}};
    xv_eval_grounding_result res = {.n = 3, .iou = iou, .pred = pred, .size = size};
    xv_grounding_splits sp;
    xv_eval_grounding_splits(&s, &res, &sp);
    CHECK(sp.val_d == 1 && sp.testA_d == 0 && sp.testB_d == 1 && sp.n_val == 1 && fabs(sp.score - 2.0 / 3) < 1e-12,
          "val_d %g testA_d %g testB_d %g", sp.val_d, sp.testA_d, sp.testB_d);
    CHECK_OK(xv_eval_grounding_write_results("epoch0.json", &s, &res));
    char *text = xv_test_read_file("epoch0.json", NULL);
    CHECK(text && strstr(text, "\"ref_id\":12") && strstr(text, "\"pred\":[0.18333333333333332,0.175,0.3333"),
          "result file: ref_id and the relative (cx, cy, w, h): %s", text ? text : "(none)");
    free(text);
    xv_grounding_set_free(&s);

    /* refusals that name the file */
    xv_test_write_file("bad.json", "[{\"image\": \"b.jpg\", \"text\": \"a\", \"ref_id\": 12},"
                                   " {\"image\": \"b.jpg\", \"text\": \"b\", \"ref_id\": 99}]");
    const char *bad[2] = {"val.json", "bad.json"};
    expect_error(xv_grounding_set_read_files(bad, 2, NULL, &r, &s),
                 "bad.json: entry 1: ref_id 99 is not in the REFER index data/refcoco+/refs(unc).p", "unknown ref_id");
    xv_test_write_file("noref.json", "[{\"image\": \"b.jpg\", \"text\": \"a\"}]");
    expect_error(xv_grounding_set_read_files(&bad[0] + 0, 1, NULL, NULL, &s),
                 "val.json: entry 0: no \"bbox\": without the REFER index (refcoco_data)", "no box, no REFER");
    expect_error(xv_grounding_set_read(bad[1] + 0, NULL, &s), "bbox", "VLUE needs inline boxes");
    const char *noref[1] = {"noref.json"};
    expect_error(xv_grounding_set_read_files(noref, 1, NULL, &r, &s), "noref.json: entry 0: no integer \"ref_id\"",
                 "no ref_id");
    xv_refer_free(&r);

    write_refs("data/refcoco+/refs(unc).p", true);
    expect_error(xv_refer_load("data", "refcoco+", "unc", &r), "refs(unc).p: ref 2 (ref_id 12): no string \"split\"",
                 "a ref without split");
    xv_test_write_file("data/refcoco+/instances.json", "{\"images\": [], \"annotations\": []}");
    write_refs("data/refcoco+/refs(unc).p", false);
    expect_error(xv_refer_load("data", "refcoco+", "unc", &r), "ref_id 10: ann_id 100 is not among the annotations",
                 "an annotation missing from instances.json");
    expect_error(xv_refer_load("data", "refcoco", "unc", &r), "data/refcoco/refs(unc).p", "no such dataset folder");
}

static void test_forbidden_pickles(void) {
    xv_test_write_file("inst.json", k_instances);
    pk p = {.n = 0};
    pk_op(&p, 0x80), pk_op(&p, 2), pk_op(&p, 'c'), pk_raw(&p, "os\nsystem\n");
    pk_unicode(&p, "ls"), pk_op(&p, 0x85), pk_op(&p, 'R'), pk_op(&p, '.');
    pk_write("evil.p", &p);
    xv_refer r;
    expect_error(xv_refer_read("evil.p", "inst.json", &r), "evil.p", "a GLOBAL names the file");
    expect_error(xv_refer_read("evil.p", "inst.json", &r), "global 'os.system' is not allowed: a plain-data pickle",
                 "a GLOBAL is refused");
    p.n = 0;
    pk_op(&p, 0x80), pk_op(&p, 2), pk_unicode(&p, "x"), pk_op(&p, 'Q'), pk_op(&p, '.');
    pk_write("persid.p", &p);
    expect_error(xv_refer_read("persid.p", "inst.json", &r), "persistent id", "BINPERSID is refused");
    p.n = 0;
    pk_op(&p, 0x80), pk_op(&p, 2), pk_op(&p, 'B'), pk_le(&p, 1, 4), pk_raw(&p, "x"), pk_op(&p, '.');
    pk_write("bytes.p", &p);
    expect_error(xv_refer_read("bytes.p", "inst.json", &r), "opcode 0x42 ('B') is not one a plain-data pickle uses",
                 "bytes are not plain data here");
    p.n = 0;
    pk_op(&p, 0x80), pk_op(&p, 2), pk_op(&p, '}'), pk_op(&p, '.');
    pk_write("dict.p", &p);
    expect_error(xv_refer_read("dict.p", "inst.json", &r), "dict.p: expected a list of refs, found a dict",
                 "the root must be a list");
}

static void test_retrieval_lists(void) {
    xv_test_write_file("r1.json", "[{\"image\": \"a.jpg\", \"caption\": [\"one\", \"two\"]}]");
    xv_test_write_file("r2.json", "[{\"image\": \"b.jpg\", \"caption\": \"three\", \"image_id\": 7}]");
    const char *files[2] = {"r1.json", "r2.json"};
    xv_retrieval_set s;
    CHECK_OK(xv_retrieval_set_read_files(files, 2, NULL, &s));
    CHECK(s.n_images == 2 && s.n_texts == 3 && s.txt2img[2] == 1 && !strcmp(s.texts[2], "three") &&
              !strcmp(s.image_paths[1], "b.jpg"),
          "both files in full, paths as written (from the working directory)");
    xv_retrieval_set_free(&s);
    xv_test_write_file("r3.json", "[{\"image\": \"c.jpg\"}]");
    const char *bad[2] = {"r1.json", "r3.json"};
    expect_error(xv_retrieval_set_read_files(bad, 2, NULL, &s), "r3.json: entry 0: \"caption\"",
                 "errors name the second file and its own index");
}

static void test_dets(void) {
    xv_test_write_file("dets.json", "{\"2\": [[1, 2, 3, 4, 0.9, 7], [5, 6, 7, 8]], \"1\": []}");
    xv_dets d;
    CHECK_OK(xv_dets_read("dets.json", &d));
    const xv_dets_image *a = xv_dets_find(&d, 2), *b = xv_dets_find(&d, 1);
    CHECK(d.n == 2 && a && a->n == 2 && a->box[1][3] == 8 && a->box[0][2] == 3 && b && b->n == 0 &&
              !xv_dets_find(&d, 3),
          "proposals by image id, the first four numbers of each");
    xv_dets_free(&d);
    xv_test_write_file("dets.json", "{\"2\": [[1, 2, 3]]}");
    expect_error(xv_dets_read("dets.json", &d), "dets.json: \"2\"[0]: expected [x, y, w, h, ...]", "a short box");
    xv_test_write_file("dets.json", "{\"two\": []}");
    expect_error(xv_dets_read("dets.json", &d), "dets.json: key \"two\" is not an image id", "a key not an id");
}

int main(void) {
    char dir[256], cwd[1024];
    if (!getcwd(cwd, sizeof cwd) || !xv_test_scratch_dir("xv_task_data", dir, sizeof dir) || chdir(dir) != 0)
        return xv_test_finish("test_task_data");
    test_refer();
    test_forbidden_pickles();
    test_retrieval_lists();
    test_dets();
    CHECK(chdir(cwd) == 0, "back to %s", cwd);
    xv_test_remove_dir(dir);
    return xv_test_finish("test_task_data");
}
