/* `xvlm nlvr`, `xvlm explain` and `xvlm ground --weak` end to end on the
 * fixtures' tiny models (shared/fixtures/nlvr, shared/fixtures/gradcam) and
 * small test images: the commands give what the public API gives on the same
 * files (same statement classes, same map, same chosen proposal), write their
 * pictures, and refuse bad input with a clear message: a text with no tokens
 * left, --layer outside the fusion layers, an unreadable image, a model
 * without the needed head, --weak without proposals. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "testutil.h"
#include "xvlm.h"

static char g_dir[64], g_nlvr[600], g_cam[600], g_img[2][160], g_dets[160];

static void nlvr(void) {
    char args[1400];
    snprintf(args, sizeof args, "nlvr --model %s --left %s --right %s --text 'The left image is darker.' --text "
             "'two dogs' --json", g_nlvr, g_img[0], g_img[1]);
    cJSON *j = xv_test_cli_json(g_dir, args);
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    const char *paths[2] = {g_img[0], g_img[1]}, *texts[2] = {"The left image is darker.", "two dogs"};
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    float z[4], p[2];
    xvlm_nlvr_pair pairs[2] = {{0, 1, 0}, {0, 1, 1}};
    CHECK_OK(xvlm_model_load(g_nlvr, NULL, &m));
    if (m) CHECK_OK(xvlm_ctx_new(m, &ctx));
    if (ctx) CHECK_OK(xvlm_encode_image_files(ctx, paths, 2, NULL, &im));
    if (ctx) CHECK_OK(xvlm_encode_texts(ctx, texts, 2, &tp, &tx));
    if (im && tx) CHECK_OK(xvlm_nlvr(ctx, im, tx, pairs, 2, z, p));
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == 2, "two results");
    for (int i = 0; i < 2 && im && tx && cJSON_GetArraySize(res) == 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(res, i);
        double prob = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "prob_true"));
        CHECK(fabs(prob - p[i]) <= 1e-6, "statement %d: prob_true %g, API %g", i, prob, p[i]);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "answer")) == (z[2 * i + 1] > z[2 * i]),
              "statement %d: the answer follows the larger logit", i);
    }
    cJSON_Delete(j);
    xvlm_images_free(im), xvlm_texts_free(tx), xvlm_ctx_free(ctx), xvlm_model_free(m);

    snprintf(args, sizeof args, "nlvr --model %s --left %s --right %s --text 'a dog'", g_cam, g_img[0], g_img[1]);
    xv_test_cli_refused(g_dir, args, 1, "cls_head");
    snprintf(args, sizeof args, "nlvr --model %s --left %s --right %s/none.png --text 'a dog'", g_nlvr, g_img[0], g_dir);
    xv_test_cli_refused(g_dir, args, 1, "none.png");
    snprintf(args, sizeof args, "nlvr --model %s --left %s --text 'a dog'", g_nlvr, g_img[0]);
    xv_test_cli_refused(g_dir, args, 2, "--right");
}

/* The Grad-CAM model through the public API, with img0 and "the bright
 * square" encoded (no token cut), as explain and ground --weak see them. */
typedef struct {
    xvlm_model *m;
    xvlm_ctx *ctx;
    xvlm_images *im;
    xvlm_texts *tx;
} api_pair;

static bool api_open(api_pair *a) {
    *a = (api_pair){0};
    const char *path = g_img[0], *text = "the bright square";
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    CHECK_OK(xvlm_model_load(g_cam, NULL, &a->m));
    if (a->m) CHECK_OK(xvlm_ctx_new(a->m, &a->ctx));
    if (a->ctx) CHECK_OK(xvlm_encode_image_files(a->ctx, &path, 1, NULL, &a->im));
    if (a->ctx) CHECK_OK(xvlm_encode_texts(a->ctx, &text, 1, &tp, &a->tx));
    return a->im && a->tx;
}

static void api_close(api_pair *a) {
    xvlm_images_free(a->im), xvlm_texts_free(a->tx), xvlm_ctx_free(a->ctx), xvlm_model_free(a->m);
}

static void explain(void) {
    char args[1400], png[200];
    snprintf(png, sizeof png, "%s/heat.png", g_dir);
    snprintf(args, sizeof args, "explain --model %s --image %s --text 'the bright square' --layer 2 --per-word "
             "--out %s --json", g_cam, g_img[0], png);
    cJSON *j = xv_test_cli_json(g_dir, args);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "map");
    CHECK(cJSON_GetArraySize(map) == 7 && cJSON_GetArraySize(cJSON_GetArrayItem(map, 0)) == 7, "a 7x7 map");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "token_maps")) ==
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "tokens")),
          "one token map per token");
    /* the same map as the API's */
    float want[49];
    api_pair a;
    if (api_open(&a)) CHECK_OK(xvlm_gradcam(a.ctx, a.im, a.tx, (xvlm_pair){0, 0}, 2, want, NULL));
    double d = 0, mx = 0;
    for (int y = 0; y < 7 && cJSON_GetArraySize(map) == 7; y++)
        for (int x = 0; x < 7; x++) {
            double v = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(map, y), x));
            d = fmax(d, fabs(v - want[y * 7 + x])), mx = fmax(mx, fabs(want[y * 7 + x]));
        }
    CHECK(mx > 0 && d <= 1e-6 * mx, "explain's map is the API's (max |diff| %g of %g)", d, mx);
    cJSON_Delete(j);
    api_close(&a);
    size_t len = 0;
    char *bytes = xv_test_read_file(png, &len);
    CHECK(bytes && len > 8 && !memcmp(bytes, "\x89PNG", 4), "%s is a PNG", png);
    free(bytes);

    snprintf(args, sizeof args, "explain --model %s --image %s --text '?!'", g_cam, g_img[0]);
    xv_test_cli_refused(g_dir, args, 1, "empty after cleaning");
    snprintf(args, sizeof args, "explain --model %s --image %s --text 'a dog' --layer 1", g_cam, g_img[0]);
    xv_test_cli_refused(g_dir, args, 1, "layer 1 is not a fusion layer of this model (2..3");
    snprintf(args, sizeof args, "explain --model %s --image %s --text 'a dog' --layer 4", g_cam, g_img[0]);
    xv_test_cli_refused(g_dir, args, 1, "layer 4 is not a fusion layer");
    snprintf(args, sizeof args, "explain --model %s --image %s/config.json --text 'a dog'", g_cam, g_cam);
    xv_test_cli_refused(g_dir, args, 1, "config.json: not a JPEG or PNG");
    snprintf(args, sizeof args, "explain --model %s --image %s/no_such_image.jpg --text 'a dog'", g_cam, g_dir);
    xv_test_cli_refused(g_dir, args, 1, "no_such_image.jpg");
    snprintf(args, sizeof args, "explain --model %s --image %s --text 'a dog'", g_nlvr, g_img[0]);
    xv_test_cli_refused(g_dir, args, 1, "itm_head");
}

static void ground_weak(void) {
    char args[1400];
    snprintf(args, sizeof args, "ground --weak --proposals %s --layer 2 --model %s --image %s --text 'the bright square' "
             "--json", g_dets, g_cam, g_img[0]);
    cJSON *j = xv_test_cli_json(g_dir, args);
    const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "results"), 0);
    int got = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r0, "proposal"));
    const float boxes[3][4] = {{0, 0, 40, 30}, {40, 0, 40, 30}, {0, 30, 80, 30}};
    int chosen = -2;
    api_pair a;
    if (api_open(&a))
        CHECK_OK(xvlm_ground_weak(a.ctx, a.im, a.tx, (xvlm_pair){0, 0}, 2, &boxes[0][0], 3, NULL, &chosen));
    CHECK(chosen >= 0 && got == chosen, "ground --weak chose %d, the API %d", got, chosen);
    cJSON_Delete(j);

    /* evaluate weak-grounding: the same choice counted against a ground truth
     * equal to it (correct) and one far from every proposal (wrong): 1 of 2.
     * img0.jpg's image id is its trailing number, 0. */
    char data[200], dets0[200], rec[600];
    snprintf(data, sizeof data, "%s/weak_test.json", g_dir);
    snprintf(dets0, sizeof dets0, "%s/dets0.json", g_dir);
    CHECK(xv_test_write_file(dets0, "{\"0\": [[0, 0, 40, 30], [40, 0, 40, 30], [0, 30, 80, 30]]}"), "dets0.json");
    if (chosen >= 0) {
        snprintf(rec, sizeof rec, "[{\"image\": \"img0.jpg\", \"text\": \"the bright square\", \"bbox\": [%g, %g, %g, %g]},"
                 " {\"image\": \"img0.jpg\", \"text\": \"the bright square\", \"bbox\": [70, 50, 9, 9]}]",
                 boxes[chosen][0], boxes[chosen][1], boxes[chosen][2], boxes[chosen][3]);
        CHECK(xv_test_write_file(data, rec), "weak_test.json");
        snprintf(args, sizeof args, "evaluate weak-grounding --layer 2 --model %s --data %s --image-root %s --dets %s",
                 g_cam, data, g_dir, dets0);
        xv_test_cli_result r = xv_test_cli(g_dir, args, NULL);
        CHECK(r.status == 0 && strstr(r.out, "2 expressions, 1 correct") && strstr(r.out, "all      0.5000"),
              "xvlm %s: exit %d: %s%s", args, r.status, r.out, r.err);
        xv_test_cli_free(&r);
    }
    api_close(&a);

    snprintf(args, sizeof args, "ground --weak --model %s --image %s --text 'a dog'", g_cam, g_img[0]);
    xv_test_cli_refused(g_dir, args, 2, "--weak and --proposals go together");
    snprintf(args, sizeof args, "ground --weak --proposals %s --image-id 5 --model %s --image %s --text 'a dog'", g_dets,
             g_cam, g_img[0]);
    xv_test_cli_refused(g_dir, args, 1, "no proposals for image id 5");
}

/* Tensor `a` of file fa equals tensor `b` of file fb, bit for bit. */
static bool same_tensor(const char *fa, const char *a, const char *fb, const char *b) {
    xv_st_file *x = NULL, *y = NULL;
    CHECK_OK(xv_st_open(fa, &x));
    CHECK_OK(xv_st_open(fb, &y));
    const xv_st_tensor *ta = x ? xv_st_find(x, a) : NULL, *tb = y ? xv_st_find(y, b) : NULL;
    bool same = ta && tb && ta->numel == tb->numel;
    float *va = same ? malloc(sizeof(float) * (size_t)ta->numel) : NULL;
    float *vb = same ? malloc(sizeof(float) * (size_t)tb->numel) : NULL;
    if (same) {
        CHECK_OK(xv_st_read_f32(x, ta, va));
        CHECK_OK(xv_st_read_f32(y, tb, vb));
    }
    same = same && !memcmp(va, vb, sizeof(float) * (size_t)ta->numel);
    free(va), free(vb);
    xv_st_close(x), xv_st_close(y);
    return same;
}

/* convert --nlvr: the official duplication of the fusion layers (tiny: F 2, 4
 * layers -> 6), a model nlvr then runs; a non-pretraining source is refused. */
static void convert(const char *fx) {
    char args[1400], out[200], src[600], dst[300], a[128], b[128];
    snprintf(out, sizeof out, "%s/nlvr_from_tiny", g_dir);
    snprintf(args, sizeof args, "convert --nlvr %s/tiny %s", fx, out);
    xv_test_cli_result r = xv_test_cli(g_dir, args, NULL);
    CHECK(r.status == 0, "xvlm %s: %s", args, r.err);
    xv_test_cli_free(&r);
    snprintf(src, sizeof src, "%s/tiny/weights.safetensors", fx);
    snprintf(dst, sizeof dst, "%s/weights.safetensors", out);
    for (int l = 0; l < 4; l++) {
        const int to[2] = {l < 2 ? l : 2 + 2 * (l - 2), l < 2 ? l : 3 + 2 * (l - 2)};
        snprintf(a, sizeof a, "text_encoder.bert.encoder.layer.%d.output.dense.weight", l);
        for (int k = 0; k < (l < 2 ? 1 : 2); k++) {
            snprintf(b, sizeof b, "text_encoder.encoder.layer.%d.output.dense.weight", to[k]);
            CHECK(same_tensor(src, a, dst, b), "%s -> %s", a, b);
        }
    }
    snprintf(a, sizeof a, "text_encoder.bert.encoder.layer.2.crossattention.self.query.weight");
    CHECK(!same_tensor(src, a, dst, "text_encoder.encoder.layer.4.crossattention.self.query.weight"),
          "layer 2 lands on layers 2 and 3 only, not on 4");
    snprintf(args, sizeof args, "nlvr --model %s --left %s --right %s --text 'a dog' --json", out, g_img[0], g_img[1]);
    cJSON_Delete(xv_test_cli_json(g_dir, args));
    snprintf(args, sizeof args, "convert --nlvr %s %s/again", g_cam, g_dir);
    xv_test_cli_refused(g_dir, args, 1, "no text_encoder.bert.* tensors");
}

int main(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("fixtures absent");
    CHECK(xv_test_scratch_dir("xv_nlvr_cli", g_dir, sizeof g_dir), "scratch dir");
    snprintf(g_nlvr, sizeof g_nlvr, "%s/nlvr", fx);
    snprintf(g_cam, sizeof g_cam, "%s/gradcam", fx);
    for (int i = 0; i < 2; i++) {
        snprintf(g_img[i], sizeof g_img[i], "%s/img%d.jpg", g_dir, i);
        CHECK(xv_test_tiny_image(g_img[i], i ? 96 : 80, i ? 64 : 60, i), "%s", g_img[i]);
    }
    snprintf(g_dets, sizeof g_dets, "%s/dets.json", g_dir);
    CHECK(xv_test_write_file(g_dets, "{\"7\": [[0, 0, 40, 30, 0.9], [40, 0, 40, 30, 0.8], [0, 30, 80, 30, 0.7]]}"),
          "dets.json");
    nlvr();
    explain();
    ground_weak();
    convert(fx);
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_nlvr_explain_cli");
}
