/* Weakly-supervised grounding pieces: the Grad-CAM map arithmetic, PyTorch's
 * bicubic upsampling (against the kernel written from its distance form),
 * the proposal score (Python int and slicing rules, nominal area), the
 * running-max choice (first of equal scores, previous box kept, errors) and
 * the split accuracies. */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "model/gradcam.h"
#include "model/model.h"
#include "tasks/eval_weak_grounding.h"
#include "testutil.h"

static void test_map(void) {
    /* B 1, heads 2, L 3 (last token padding), n 2: T = 5 keys. */
    enum { H = 2, L = 3, T = 5 };
    float probs[H * L * T], grads[H * L * T], map[4];
    for (int i = 0; i < H * L * T; i++) probs[i] = 0.1f * (float)(i % 7 + 1), grads[i] = (i % 3 == 0) ? -1.0f : 0.5f;
    const int32_t atts[L] = {1, 1, 0};
    CHECK_OK(xv_gradcam_map(probs, grads, atts, 1, H, L, 2, map));
    for (int p = 0; p < 4; p++) {
        double want = 0;
        for (int h = 0; h < H; h++)
            for (int t = 0; t < 2; t++) { /* padding row t = 2 adds nothing but counts in L */
                int at = (h * L + t) * T + 1 + p;
                want += probs[at] * (grads[at] > 0 ? grads[at] : 0);
            }
        want /= (double)(H * L);
        CHECK(fabs(map[p] - want) < 1e-7, "map[%d] = %g, expected %g", p, map[p], want);
    }
}

/* Grad-CAM on a small retrieval model of other sizes than the fixture's
 * (16 patches: n = 4, hidden 12, 3 heads, 3 layers, fusion from 1). With
 * block_num the last layer, only the [CLS] query row reaches the score, so
 * only that row of G may be non-zero; with an earlier layer the other rows
 * get gradient too (through later self-attention). */
static void test_gradcam_small(void) {
    const char *cfg_json =
        "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 8, \"depths\": [2, 1],"
        " \"num_heads\": [1, 2], \"vision_width\": 16, \"patch_size\": 8},"
        " \"text\": {\"hidden_size\": 12, \"num_hidden_layers\": 3, \"num_attention_heads\": 3,"
        " \"intermediate_size\": 20, \"vocab_size\": 40, \"max_position_embeddings\": 16, \"fusion_layer\": 1},"
        " \"embed_dim\": 8}";
    xv_model_config c;
    CHECK_OK(xv_config_parse_json(cfg_json, "small", &c));
    xv_model_parts parts = {.layout = XV_LAYOUT_FINETUNE, .itc = true, .itm = true};
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return;
    CHECK_OK(xv_model_init_random(m, 4));
    static float images[2 * 3 * 32 * 32];
    xv_test_fill_uniform(images, 2 * 3 * 32 * 32, -1.5f, 1.5f, 8);
    int32_t ids[2 * 4] = {1, 5, 9, 2, 1, 7, 0, 0}, atts[2 * 4] = {1, 1, 1, 1, 1, 1, 0, 0};
    for (int block = 1; block <= 2; block++) {
        xv_graph *g = xv_graph_new(0);
        xv_gradcam_batch b = {.image = xv_tensor_wrap_f32(g, images, XV_SHAPE(2, 3, 32, 32)),
                              .text_ids = xv_tensor_wrap_i32(g, ids, XV_SHAPE(2, 4)),
                              .text_atts = xv_tensor_wrap_i32(g, atts, XV_SHAPE(2, 4)),
                              .block_num = block};
        xv_gradcam_out o;
        CHECK_OK(xv_gradcam(g, m, &b, &o));
        if (o.map) {
            CHECK(o.map->ndim == 3 && o.map->shape[0] == 2 && o.map->shape[1] == 4 && o.map->shape[2] == 4,
                  "map [2, 4, 4]");
            float again[32];
            CHECK_OK(xv_gradcam_map(o.attn_probs->data, o.attn_probs->grad, atts, 2, 3, 4, 4, again));
            CHECK(!memcmp(again, o.map->data, sizeof again), "map = xv_gradcam_map(A, G)");
            double cls = 0, rest = 0;
            for (int64_t i = 0; i < o.attn_probs->numel; i++) {
                int64_t t = (i / 17) % 4; /* [B, heads, L = 4, T = 17] */
                *(t == 0 ? &cls : &rest) += fabs(o.attn_probs->grad[i]);
            }
            CHECK(cls > 0, "block %d: the [CLS] row has a gradient", block);
            CHECK(block == 2 ? rest == 0 : rest > 0, "block %d: other rows' gradient %g", block, rest);
        }
        xv_graph_free(g);
    }
    xv_gradcam_batch bad = {.block_num = 0};
    xv_gradcam_out o;
    xv_graph *g = xv_graph_new(0);
    CHECK(xv_gradcam(g, m, &bad, &o) != XV_OK && strstr(xv_error_message(), "block_num 0"),
          "a text-only layer is refused: %s", xv_error_message());
    xv_graph_free(g);
    xv_model_free(m);
}

/* PyTorch's cubic kernel by distance |d| (a = -0.75). */
static double kernel(double d) {
    const double a = -0.75;
    d = fabs(d);
    if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
    if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
    return 0;
}

static double reference_at(const float *in, int ih, int iw, int oh, int ow, int y, int x) {
    double sy = (y + 0.5) * ih / oh - 0.5, sx = (x + 0.5) * iw / ow - 0.5, acc = 0;
    for (int j = (int)floor(sy) - 1; j <= (int)floor(sy) + 2; j++)
        for (int i = (int)floor(sx) - 1; i <= (int)floor(sx) + 2; i++) {
            int cj = j < 0 ? 0 : j >= ih ? ih - 1 : j, ci = i < 0 ? 0 : i >= iw ? iw - 1 : i;
            acc += kernel(sy - j) * kernel(sx - i) * in[cj * iw + ci];
        }
    return acc;
}

static void test_upsample(void) {
    float in[3 * 4], out[7 * 5], same[3 * 4];
    xv_test_fill_uniform(in, 12, -1, 1, 9);
    xv_upsample_bicubic_torch(in, 3, 4, out, 7, 5);
    double worst = 0;
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++) worst = fmax(worst, fabs(out[y * 5 + x] - reference_at(in, 3, 4, 7, 5, y, x)));
    CHECK(worst < 1e-6, "3x4 -> 7x5 against the distance-form kernel: %g", worst);
    xv_upsample_bicubic_torch(in, 3, 4, same, 3, 4);
    CHECK(!memcmp(in, same, sizeof in), "same size: identity");
    float flat[4] = {2, 2, 2, 2}, up[9 * 11];
    xv_upsample_bicubic_torch(flat, 2, 2, up, 9, 11);
    double dev = 0;
    for (int i = 0; i < 99; i++) dev = fmax(dev, fabs(up[i] - 2));
    CHECK(dev < 4e-6, "a constant map stays constant (weights sum to 1): %g", dev);
    float spike[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, big[12 * 12];
    xv_upsample_bicubic_torch(spike, 3, 3, big, 12, 12);
    float lo = 0;
    for (int i = 0; i < 144; i++) lo = fminf(lo, big[i]);
    CHECK(lo < 0, "bicubic overshoots below 0 next to a spike (%g)", lo);
}

static void test_box_score(void) {
    enum { H = 4, W = 5 };
    float up[H * W];
    for (int i = 0; i < H * W; i++) up[i] = (float)(i + 1);
    /* y 1.7 + h 1.6 = 3.3 -> rows [1, 3); x 0.9 + w 2.2 = 3.1 -> cols [0, 3) */
    double box[4] = {0.9, 1.7, 2.2, 1.6};
    double sum = 0;
    for (int y = 1; y < 3; y++)
        for (int x = 0; x < 3; x++) sum += up[y * W + x];
    float s = xv_weak_box_score(up, H, W, box, 0.5);
    CHECK(fabsf(s - (float)(sum / sqrt(2.2 * 1.6))) < 1e-5f, "truncated float sums: %g vs %g", s,
          sum / sqrt(2.2 * 1.6));
    double out[4] = {3.5, 2.0, 10.0, 10.0}; /* clipped to cols [3, 5), rows [2, 4); area stays 100 */
    sum = 0;
    for (int y = 2; y < 4; y++)
        for (int x = 3; x < 5; x++) sum += up[y * W + x];
    s = xv_weak_box_score(up, H, W, out, 0.5);
    CHECK(fabsf(s - (float)(sum / 10.0)) < 1e-5f, "clipped slice, nominal area: %g", s);
    double wrap[4] = {0, -3.0, 2.0, 5.0}; /* rows [-3:2] = [1:2] in Python */
    s = xv_weak_box_score(up, H, W, wrap, 0.5);
    CHECK(fabsf(s - (float)((up[5] + up[6]) / sqrt(10.0))) < 1e-5f, "negative start wraps as in Python: %g", s);
}

static void test_choice(void) {
    /* 1x1 maps: the upsampled map is (about) constant; proposals 0 and 1 cover
     * the same pixels (int(0.5) = 0, int(4.5) = 4) with the same area, so
     * their scores are equal. */
    const float pos[1] = {1.0f}, neg[1] = {-1.0f};
    const double dets[3][4] = {{0, 0, 4, 4}, {0.5, 0.5, 4, 4}, {6, 6, 2, 2}};
    xv_weak_ref refs[3] = {
        {.map = pos, .height = 10, .width = 10, .dets = dets, .n_dets = 3, .gt = {4, 4, 4, 4}, .split = XV_SPLIT_VAL},
        {.map = neg, .height = 10, .width = 10, .dets = dets, .n_dets = 3, .gt = {4, 4, 4, 4}, .split = XV_SPLIT_TESTA},
        {.map = pos, .height = 10, .width = 10, .dets = dets, .n_dets = 2, .gt = {0, 0, 1, 1}, .split = XV_SPLIT_TESTB},
    };
    xv_weak_grounding_result r;
    CHECK_OK(xv_weak_grounding_eval(refs, 3, 1, 0.5, &r, NULL));
    if (r.chosen) {
        CHECK(r.chosen[0] == 0, "equal scores: the first wins (got %d)", r.chosen[0]);
        CHECK(r.chosen[1] == -1 && !memcmp(r.box[1], dets[0], sizeof dets[0]),
              "no positive score: the previous box is kept");
        CHECK(r.correct[0] == 0 && r.correct[1] == 0 && r.correct[2] == 0, "IoU below 0.5 everywhere");
        CHECK(r.accuracy[0] == 0 && r.accuracy[1] == 0 && r.accuracy[2] == 0, "accuracies");
        xv_weak_grounding_result_free(&r);
    }
    refs[0].gt[0] = 0, refs[0].gt[1] = 0; /* gt = dets[0]: IoU 1 */
    CHECK_OK(xv_weak_grounding_eval(refs, 3, 1, 0.5, &r, NULL));
    if (r.iou) {
        CHECK(r.iou[0] == 1 && r.correct[0] == 1 && r.accuracy[XV_SPLIT_VAL] == 1, "exact box: IoU 1, val 1");
        xv_weak_grounding_result_free(&r);
    }
    CHECK(xv_weak_grounding_eval(refs + 1, 2, 1, 0.5, &r, NULL) != XV_OK &&
              strstr(xv_error_message(), "no proposal with a positive score"),
          "first expression without a positive score refused: %s", xv_error_message());
    CHECK_OK(xv_weak_grounding_eval(refs, 2, 1, 0.5, &r, NULL));
    if (r.chosen) {
        CHECK(isnan(r.accuracy[XV_SPLIT_TESTB]) && r.accuracy[XV_SPLIT_VAL] == 1,
              "a split without expressions has no accuracy (NaN), the others do");
        xv_weak_grounding_result_free(&r);
    }
}

/* The baselines beside the accuracy: the random-proposal expectation, the
 * peak-in-box count and the box's share of the image. */
static void test_baselines(void) {
    /* a 2x2 map whose top-left cell is the largest: upsampled to 8x8, the maximum is in the top-left quarter */
    const float map[4] = {1.0f, 0.2f, 0.2f, 0.1f};
    const double dets[4][4] = {{0, 0, 4, 4}, {0.5, 0, 4, 4}, {4, 4, 4, 4}, {0, 4, 2, 2}};
    xv_weak_ref refs[2] = {
        {.map = map, .height = 8, .width = 8, .dets = dets, .n_dets = 4, .gt = {0, 0, 4, 4}, .split = XV_SPLIT_VAL},
        {.map = map, .height = 8, .width = 8, .dets = dets, .n_dets = 4, .gt = {4, 4, 6, 6}, .split = XV_SPLIT_VAL},
    };
    xv_weak_grounding_result r;
    CHECK_OK(xv_weak_grounding_eval(refs, 2, 2, 0.5, &r, NULL));
    if (!r.peak_in_box) return;
    /* ref 0: proposals 0 and 1 reach IoU >= 0.5 (1, and 14/18 with inclusive pixels), 2 and 3 do not: 2 of 4;
     * ref 1: the nearest, proposal 2, has IoU 16/36 < 0.5 with the nominal box: 0 of 4 */
    CHECK(fabs(r.random_accuracy[XV_SPLIT_VAL] - 0.25) < 1e-12, "random proposal: (2/4 + 0/4) / 2 = 0.25 (got %g)",
          r.random_accuracy[XV_SPLIT_VAL]);
    CHECK(r.peak_in_box[0] == 1 && r.peak_in_box[1] == 0, "the peak lies in the top-left box only (%d %d)",
          r.peak_in_box[0], r.peak_in_box[1]);
    CHECK(fabs(r.box_share[0] - 0.25) < 1e-12 && fabs(r.box_share[1] - 0.25) < 1e-12,
          "box shares 16/64, and 16/64 after clipping (got %g %g)", r.box_share[0], r.box_share[1]);
    xv_weak_grounding_result_free(&r);
}

int main(void) {
    test_map();
    test_gradcam_small();
    test_upsample();
    test_box_score();
    test_choice();
    test_baselines();
    return xv_test_finish("test_weak_grounding");
}
