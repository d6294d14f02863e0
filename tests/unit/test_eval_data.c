/* Evaluation files (tasks/eval_data.h) and the chance level of retrieval. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/image.h"
#include "tasks/eval_data.h"
#include "tasks/eval_retrieval.h"
#include "testutil.h"

static char dir[64];

static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void test_retrieval_set(void) {
    const char *p = write_file("ret.json", "[{\"image\": \"images/a.jpg\", \"caption\": [\"one\", \"two\"]},\n"
                                           " {\"image\": \"/abs/b.jpg\", \"caption\": \"three\"},\n"
                                           " {\"image\": \"c.jpg\", \"caption\": [\"four\", \"five\", \"six\"]}]");
    xv_retrieval_set s;
    CHECK_OK(xv_retrieval_set_read(p, &(xv_fs_root){.root = "root"}, &s));
    CHECK(s.n_images == 3 && s.n_texts == 6, "3 images, 6 texts: %lld, %lld", (long long)s.n_images,
          (long long)s.n_texts);
    if (s.n_texts == 6) {
        const int64_t want[6] = {0, 0, 1, 2, 2, 2};
        for (int t = 0; t < 6; t++) CHECK(s.txt2img[t] == want[t], "txt2img[%d] = %lld", t, (long long)s.txt2img[t]);
        CHECK(!strcmp(s.texts[2], "three") && !strcmp(s.texts[5], "six"), "texts in file order");
        CHECK(!strcmp(s.image_paths[0], "root/images/a.jpg") && !strcmp(s.image_paths[1], "/abs/b.jpg"),
              "image_root joined to relative paths only: %s, %s", s.image_paths[0], s.image_paths[1]);
    }
    xv_retrieval_set_free(&s);

    /* Refusals name the file and the entry. */
    const char *bad[][2] = {
        {"[{\"image\": \"a.jpg\", \"caption\": [\"x\", 3]}]", "entry 0: \"caption\" holds a non-string"},
        {"[{\"image\": \"a.jpg\", \"caption\": \"x\"}, {\"caption\": \"y\"}]", "entry 1: expected an object"},
        {"[{\"image\": \"a.jpg\", \"caption\": {}}]", "must be a string or a list"},
        {"{\"image\": \"a.jpg\"}", "expected a JSON list"},
        {"[{\"image\": \"a.jpg\", \"caption\": []}]", "no images or no captions"},
        {"[{\"image\": ", "not valid JSON"},
    };
    for (int i = 0; i < 6; i++) {
        p = write_file("bad.json", bad[i][0]);
        xv_status st = xv_retrieval_set_read(p, NULL, &s);
        CHECK(st == XV_ERR_FORMAT && strstr(xv_error_message(), bad[i][1]) && strstr(xv_error_message(), "bad.json"),
              "bad retrieval file %d refused: %s", i, xv_error_message());
        CHECK(s.n_texts == 0 && s.texts == NULL, "a refused file leaves the set empty");
    }
    CHECK(xv_retrieval_set_read("/nonexistent/x.json", NULL, &s) == XV_ERR_IO, "missing file: %s",
          xv_error_message());
}

static void test_grounding_set(void) {
    const char *p = write_file(
        "g.json", "[{\"image\": \"i1.jpg\", \"text\": \"red circle\", \"bbox\": [10, 20, 30, 40], \"width\": 100,"
                  " \"height\": 200, \"ref_id\": 0},\n"
                  " {\"image\": \"i2.jpg\", \"text\": \"blue square\", \"bbox\": [0, 0, 50, 100], \"width\": 100,"
                  " \"height\": 200},\n"
                  " {\"image\": \"i1.jpg\", \"text\": \"big star\", \"bbox\": [50.5, 100, 50, 100], \"width\": 100,"
                  " \"height\": 200}]");
    xv_grounding_set s;
    CHECK_OK(xv_grounding_set_read(p, &(xv_fs_root){.root = "r/"}, &s));
    CHECK(s.n == 3 && s.n_images == 2, "3 expressions in 2 images: %lld, %lld", (long long)s.n,
          (long long)s.n_images);
    if (s.n == 3 && s.n_images == 2) {
        CHECK(s.image[0] == 0 && s.image[1] == 1 && s.image[2] == 0, "images by first appearance");
        CHECK(!strcmp(s.image_paths[0], "r/i1.jpg") && !strcmp(s.image_paths[1], "r/i2.jpg"), "paths: %s %s",
              s.image_paths[0], s.image_paths[1]);
        CHECK(s.bbox[2][0] == 50.5 && s.bbox[2][3] == 100 && s.size[1][0] == 100 && s.size[1][1] == 200,
              "boxes and sizes");
        double mb[4];
        CHECK_OK(xv_grounding_mean_box(&s, "g.json", mb));
        /* x: (0.1 + 0 + 0.505)/3, y: (0.1 + 0 + 0.5)/3, w: (0.3 + 0.5 + 0.5)/3, h: (0.2 + 0.5 + 0.5)/3 */
        const double want[4] = {0.605 / 3, 0.6 / 3, 1.3 / 3, 1.2 / 3};
        for (int k = 0; k < 4; k++) CHECK(fabs(mb[k] - want[k]) < 1e-12, "mean box[%d] = %.15g", k, mb[k]);
    }
    xv_grounding_set_free(&s);

    p = write_file("nosize.json", "[{\"image\": \"a.jpg\", \"text\": \"x\", \"bbox\": [1, 2, 3, 4]}]");
    CHECK_OK(xv_grounding_set_read(p, NULL, &s));
    double mb[4];
    CHECK(xv_grounding_mean_box(&s, "nosize.json", mb) == XV_ERR_MISSING &&
              strstr(xv_error_message(), "entry 0 has no \"width\""),
          "mean box without sizes refused: %s", xv_error_message());
    xv_grounding_set_free(&s);

    const char *bad[][2] = {
        {"[{\"image\": \"a.jpg\", \"text\": \"x\", \"bbox\": [1, 2, 3]}]", "entry 0: \"bbox\" must be"},
        {"[{\"image\": \"a.jpg\", \"text\": \"x\", \"bbox\": [1, 2, 0, 4]}]", "w, h > 0"},
        {"[{\"image\": \"a.jpg\", \"text\": \"x\", \"bbox\": [1, 2, 3, \"4\"]}]", "\"bbox\" must be"},
        {"[{\"image\": \"a.jpg\", \"text\": \"x\", \"bbox\": [1, 2, 3, 4]}, {\"image\": \"b.jpg\"}]",
         "entry 1: expected an object with strings"},
        {"[]", "no entries"},
    };
    for (int i = 0; i < 5; i++) {
        p = write_file("badg.json", bad[i][0]);
        xv_status st = xv_grounding_set_read(p, NULL, &s);
        CHECK(st == XV_ERR_FORMAT && strstr(xv_error_message(), bad[i][1]), "bad grounding file %d refused: %s", i,
              xv_error_message());
        CHECK(s.n == 0 && s.texts == NULL, "a refused file leaves the set empty");
    }
}

/* P(at least one of g marked among K of n) by the hypergeometric formula in
 * log space, an independent route to the same number. */
static double hit_prob(int64_t n, int64_t g, int64_t K) {
    if (n - g < K) return 1;
    double l = lgamma((double)(n - g + 1)) - lgamma((double)(n - g - K + 1)) - lgamma((double)(n + 1)) +
               lgamma((double)(n - K + 1));
    return 1 - exp(l);
}

static void test_chance(void) {
    /* 100 images with 5 captions each, as the demo's test split. */
    int64_t *t2i = malloc(sizeof *t2i * 500);
    for (int t = 0; t < 500; t++) t2i[t] = t / 5;
    xv_retrieval_result c;
    xv_retrieval_chance(100, 500, t2i, &c);
    CHECK(c.img_r1 == 1.0 && c.img_r5 == 5.0 && c.img_r10 == 10.0, "text->image chance K/100: %g %g %g", c.img_r1,
          c.img_r5, c.img_r10);
    /* lgamma differences lose ~1e-13 relative; 1e-9 percent is far above that. */
    CHECK(fabs(c.txt_r1 - 1.0) < 1e-9, "image->text R@1 = 5/500: %.12g", c.txt_r1);
    CHECK(fabs(c.txt_r5 - 100 * hit_prob(500, 5, 5)) < 1e-9, "R@5 %.12g vs %.12g", c.txt_r5,
          100 * hit_prob(500, 5, 5));
    CHECK(fabs(c.txt_r10 - 100 * hit_prob(500, 5, 10)) < 1e-9, "R@10 %.12g vs %.12g", c.txt_r10,
          100 * hit_prob(500, 5, 10));
    CHECK(fabs(c.r_mean - (c.txt_r1 + c.txt_r5 + c.txt_r10 + 16) / 6) < 1e-12, "r_mean");
    /* Uneven groups and a gallery smaller than K: image 0 has 1 text, image 1 has 3. */
    int64_t small[4] = {0, 1, 1, 1};
    xv_retrieval_chance(2, 4, small, &c);
    CHECK(c.img_r1 == 50 && c.img_r5 == 100 && c.img_r10 == 100, "text->image with 2 images: %g %g %g", c.img_r1,
          c.img_r5, c.img_r10);
    /* R@1: (1/4 + 3/4)/2 = 50 %; R@5 >= every text: 100 %. */
    CHECK(fabs(c.txt_r1 - 50) < 1e-12 && c.txt_r5 == 100 && c.txt_r10 == 100, "image->text: %g %g %g", c.txt_r1,
          c.txt_r5, c.txt_r10);
    free(t2i);
}

/* A retrieval file of one entry naming `image`, read under root/ (the decoy
 * lies in root's parent); returns the status, the set freed. */
static xv_status read_one(const char *json, bool allow_outside) {
    char root[128];
    snprintf(root, sizeof root, "%s/root", dir);
    xv_retrieval_set s;
    xv_status st = xv_retrieval_set_read(write_file("one.json", json),
                                         &(xv_fs_root){.root = root, .allow_outside_root = allow_outside}, &s);
    if (st == XV_OK) xv_retrieval_set_free(&s);
    return st;
}

/* The refusals of hostile input (issue 18): a path escaping the root (".."
 * and absolute), trailing bytes after the list, a "\u0000" in a path, and an
 * NLVR2 pair escaping the root, each refused naming the file and the entry
 * or line; a FIFO named as an image is kept by the reader but refused, at
 * once, by the image loader (an alarm fails a hang). */
static void test_refusals(void) {
    char path[256], json[512];
    snprintf(path, sizeof path, "%s/root", dir);
    mkdir(path, 0755);
    CHECK(xv_test_tiny_image(write_file("decoy.png", ""), 8, 8, 1), "decoy written");
    CHECK(xv_test_tiny_image(write_file("root/ok.png", ""), 8, 8, 2), "image written");
    snprintf(path, sizeof path, "%s/root/fifo.png", dir);
    CHECK(mkfifo(path, 0600) == 0, "FIFO made");

    CHECK(read_one("[{\"image\": \"ok.png\", \"caption\": \"x\"}]", false) == XV_OK, "inside the root");
    CHECK(read_one("[{\"image\": \"../decoy.png\", \"caption\": \"x\"}]", false) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "one.json: entry 0") && strstr(xv_error_message(), "outside the image root"),
          "'..' refused naming file and entry: %s", xv_error_message());
    CHECK(read_one("[{\"image\": \"../decoy.png\", \"caption\": \"x\"}]", true) == XV_OK,
          "allow_outside_root takes it");
    snprintf(json, sizeof json, "[{\"image\": \"%s/decoy.png\", \"caption\": \"x\"}]", dir);
    CHECK(read_one(json, false) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "outside the image root"),
          "an absolute path refused: %s", xv_error_message());
    CHECK(read_one("[{\"image\": \"ok.png\", \"caption\": \"x\"}] junk", false) == XV_ERR_FORMAT &&
              strstr(xv_error_message(), "one.json:1: bytes after the JSON list"),
          "trailing garbage refused naming the line: %s", xv_error_message());
    CHECK(read_one("[{\"image\": \"ok.png\", \"caption\": \"x\"}]\n\n{}\n", false) == XV_ERR_FORMAT &&
              strstr(xv_error_message(), "one.json:3:"),
          "a second value refused naming its line: %s", xv_error_message());
    CHECK(read_one("[{\"image\": \"ok.png\\u0000.jpg\", \"caption\": \"x\"}]", false) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "entry 0") && strstr(xv_error_message(), "NUL"),
          "a \\u0000 in a path refused, not cut short to ok.png: %s", xv_error_message());
    CHECK(read_one("[{\"image\": \"ok.png\", \"caption\": \"a\\u0000b\"}]", false) == XV_OK,
          "a \\u0000 in a caption is kept (the tokenizer drops it)");

    char root[128];
    snprintf(root, sizeof root, "%s/root", dir);
    const char *nlvr = write_file("nlvr.json", "[{\"images\": [\"ok.png\", \"../decoy.png\"], \"sentence\": \"s\", "
                                               "\"label\": \"True\"}]");
    xv_nlvr_set ns;
    CHECK(xv_nlvr_set_read_files(&nlvr, 1, &(xv_fs_root){.root = root}, &ns) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "nlvr.json: entry 0") && strstr(xv_error_message(), "outside the image root"),
          "an NLVR2 image escaping the root refused: %s", xv_error_message());

    CHECK(read_one("[{\"image\": \"fifo.png\", \"caption\": \"x\"}]", false) == XV_OK, "a FIFO name is kept");
    alarm(10); /* a blocking open fails the test instead of hanging it */
    xv_image im;
    snprintf(path, sizeof path, "%s/root/fifo.png", dir);
    CHECK(xv_image_load(path, &im) == XV_ERR_IO && strstr(xv_error_message(), "FIFO"),
          "loading the FIFO refused at once: %s", xv_error_message());
    alarm(0);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_eval_data", dir, sizeof dir)) return 1;
    test_retrieval_set();
    test_grounding_set();
    test_refusals();
    test_chance();
    xv_test_remove_dir(dir);
    return xv_test_finish("test_eval_data");
}
