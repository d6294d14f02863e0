/* The public NLVR2 and Grad-CAM calls against the official golden data:
 * - shared/fixtures/nlvr: the preprocessed image pairs through
 *   xvlm_encode_images_tensor and the sentences (strings from config.json)
 *   through xvlm_encode_texts, then xvlm_nlvr, give the official logits and
 *   predicted classes;
 * - shared/fixtures/gradcam: xvlm_gradcam gives the official map of each
 *   expression. The official map is a mean over the batch's padded length L;
 *   the call maps one expression (no padding), so its map is the official one
 *   times L / len. Its token maps average to the map, and xvlm_ground_weak on
 *   a proposal list picks the box the map's own scoring picks.
 * Tolerances as the fixture README: |diff| <= 1e-4·max(1, max|ref|), and for
 * the small Grad-CAM map relative to its own maximum. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/gradcam_boxes.h"
#include "golden.h"
#include "xvlm.h"

static const cJSON *info(const cJSON *cfg, const char *step, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "inputs_info"), step), key);
}

/* The model, a context, the inputs and golden outputs, and config.json of
 * FIXTURES/<name>; false when one of them is missing (a failed CHECK). */
typedef struct {
    xvlm_model *m;
    xvlm_ctx *ctx;
    xv_st_file *in, *ref;
    cJSON *cfg;
} fixture;

static bool fixture_open(const char *name, fixture *f) {
    char dir[1024];
    *f = (fixture){0};
    golden_open(name, dir, sizeof dir, &f->in, &f->ref);
    f->cfg = golden_json(dir, "config.json");
    CHECK_OK(xvlm_model_load(dir, NULL, &f->m));
    if (f->m) CHECK_OK(xvlm_ctx_new(f->m, &f->ctx));
    return f->cfg && f->ctx && f->in && f->ref;
}

static void fixture_close(fixture *f) {
    xv_st_close(f->in), xv_st_close(f->ref);
    xvlm_ctx_free(f->ctx), xvlm_model_free(f->m);
    cJSON_Delete(f->cfg);
}

static void nlvr(void) {
    fixture f;
    if (fixture_open("nlvr", &f)) {
        xvlm_ctx *ctx = f.ctx;
        const xv_st_file *in = f.in, *ref = f.ref;
        const cJSON *cfg = f.cfg;
        int64_t npx = 0, nz = 0;
        float *px = golden_floats(in, "nlvr.images", &npx), *want = golden_floats(ref, "nlvr.logits", &nz);
        const cJSON *sent = info(cfg, "nlvr", "sentences_after_pre_caption");
        const int B = cJSON_GetArraySize(sent);
        const char *texts[8];
        for (int i = 0; i < B && i < 8; i++) texts[i] = cJSON_GetArrayItem(sent, i)->valuestring;
        xvlm_images *im = NULL;
        xvlm_texts *tx = NULL;
        xvlm_text_params tp = xvlm_text_params_default();
        tp.max_tokens = 0; /* NLVR.py cuts no token */
        xvlm_nlvr_pair pairs[8];
        float z[16], prob[8];
        CHECK(B == 3 && nz == 2 * B, "three statements, logits [3, 2]");
        if (px && want && B == 3) {
            CHECK_OK(xvlm_encode_images_tensor(ctx, px, 2 * B, NULL, &im));
            CHECK_OK(xvlm_encode_texts(ctx, texts, B, &tp, &tx));
            for (int i = 0; i < B; i++) pairs[i] = (xvlm_nlvr_pair){.left = i, .right = B + i, .text = i};
            CHECK_OK(xvlm_nlvr(ctx, im, tx, pairs, B, z, prob));
            double d = 0, mx = 1;
            for (int i = 0; i < 2 * B; i++) d = fmax(d, fabs(z[i] - want[i])), mx = fmax(mx, fabs(want[i]));
            CHECK(d <= 1e-4 * mx, "xvlm_nlvr logits: max |diff| %.3g (limit %.3g)", d, 1e-4 * mx);
            for (int i = 0; i < B; i++) {
                CHECK((z[2 * i + 1] > z[2 * i]) == (want[2 * i + 1] > want[2 * i]), "statement %d: same class", i);
                CHECK(fabs(prob[i] - 1 / (1 + exp(z[2 * i] - z[2 * i + 1]))) < 1e-6, "prob_true %d", i);
            }
            /* the other way round is another statement: the logits change */
            xvlm_nlvr_pair swapped = {.left = B, .right = 0, .text = 0};
            float zs[2];
            CHECK_OK(xvlm_nlvr(ctx, im, tx, &swapped, 1, zs, NULL));
            CHECK(fabsf(zs[1] - z[1]) > 1e-4f, "swapping left and right changes the logit (%g vs %g)", zs[1], z[1]);
            /* a model without cls_head is refused */
            xvlm_pair p = {0, 0};
            CHECK(xvlm_itm(ctx, im, tx, &p, 1, z, NULL) == XVLM_ERR_UNSUPPORTED, "no itm_head in an NLVR model");
            CHECK(xvlm_gradcam(ctx, im, tx, p, 2, z, NULL) != XVLM_OK, "no Grad-CAM on an NLVR model");
        }
        xvlm_images_free(im);
        xvlm_texts_free(tx);
        free(px), free(want);
    }
    fixture_close(&f);
}

static void gradcam(void) {
    fixture f;
    if (fixture_open("gradcam", &f)) {
        xvlm_ctx *ctx = f.ctx;
        const xv_st_file *in = f.in, *ref = f.ref;
        const cJSON *cfg = f.cfg;
        int64_t npx = 0, nmap = 0, natt = 0;
        float *px = golden_floats(in, "image", &npx), *want = golden_floats(ref, "gradcam.map", &nmap);
        const xv_st_tensor *at = xv_st_find(in, "gradcam.text_atts");
        natt = at ? at->numel : 0;
        int32_t *atts = at ? malloc(sizeof(int32_t) * (size_t)natt) : NULL;
        if (atts) CHECK_OK(xv_st_read_i32(in, at, atts));
        const cJSON *ex = info(cfg, "gradcam", "expressions_after_pre_caption");
        const int R = cJSON_GetArraySize(ex);
        const int layer = (int)cJSON_GetNumberValue(info(cfg, "gradcam", "block_num"));
        xvlm_model_info mi;
        xvlm_model_get_info(f.m, &mi);
        const int side = mi.map_side, P = side * side, L = R ? (int)(natt / R) : 0;
        CHECK(R == 4 && side == 7 && nmap == R * P && layer == 2, "4 expressions, 7x7 maps, layer 2");
        xvlm_images *im = NULL;
        xvlm_texts *tx = NULL;
        xvlm_text_params tp = xvlm_text_params_default();
        tp.max_tokens = 0;
        const char *texts[4];
        for (int i = 0; i < R && i < 4; i++) texts[i] = cJSON_GetArrayItem(ex, i)->valuestring;
        if (px && want && atts && R == 4 && side == 7) {
            CHECK_OK(xvlm_encode_images_tensor(ctx, px, R, NULL, &im));
            CHECK_OK(xvlm_encode_texts(ctx, texts, R, &tp, &tx));
            for (int r = 0; r < R && im && tx; r++) {
                int64_t len = 0;
                xvlm_texts_tokens(tx, r, &len);
                int64_t ref_len = 0;
                for (int t = 0; t < L; t++) ref_len += atts[r * L + t] != 0;
                CHECK(len == ref_len, "expression %d: %lld tokens, the fixture %lld", r, (long long)len,
                      (long long)ref_len);
                float map[49], *tok = malloc(sizeof(float) * (size_t)(len * P));
                CHECK_OK(xvlm_gradcam(ctx, im, tx, (xvlm_pair){r, r}, layer, map, tok));
                double d = 0, mx = 0, dm = 0;
                for (int p = 0; p < P; p++) {
                    double w = want[r * P + p] * (double)L / (double)len, sum = 0;
                    for (int64_t t = 0; t < len; t++) sum += tok[t * P + p];
                    d = fmax(d, fabs(map[p] - w)), mx = fmax(mx, fabs(w));
                    dm = fmax(dm, fabs(sum / (double)len - map[p]));
                }
                CHECK(mx > 0 && d <= 1e-4 * mx, "map %d: max |diff| %.3g, max |ref| %.3g", r, d, mx);
                CHECK(dm <= 1e-6 * mx, "map %d is the mean of its token maps (%.3g)", r, dm);
                /* the weak box choice follows the map: proposals on the 224 px input (the
                 * tensor's size), the best one by the map's own upsampled scores */
                const float boxes[3][4] = {{0, 0, 112, 112}, {112, 0, 112, 112}, {0, 112, 224, 112}};
                float scores[3], up[224 * 224];
                int chosen = -2;
                CHECK_OK(xvlm_ground_weak(ctx, im, tx, (xvlm_pair){r, r}, layer, &boxes[0][0], 3, scores, &chosen));
                xv_upsample_bicubic_torch(map, side, side, up, 224, 224);
                float own[3];
                for (int k = 0; k < 3; k++) {
                    const double b[4] = {boxes[k][0], boxes[k][1], boxes[k][2], boxes[k][3]};
                    own[k] = xv_weak_box_score(up, 224, 224, b, 0.5);
                    CHECK(fabsf(own[k] - scores[k]) <= 1e-6f * fabsf(own[k]) + 1e-12f, "score %d.%d", r, k);
                }
                CHECK(chosen == xv_weak_choose(own, 3), "expression %d: chosen %d", r, chosen);
                free(tok);
            }
            CHECK(xvlm_gradcam(ctx, im, tx, (xvlm_pair){0, 0}, 1, want, NULL) == XVLM_ERR_INVALID_ARG &&
                      strstr(xvlm_last_error(), "not a fusion layer"),
                  "layer 1 (text only) refused: %s", xvlm_last_error());
            CHECK(xvlm_gradcam(ctx, im, tx, (xvlm_pair){0, 0}, 4, want, NULL) == XVLM_ERR_INVALID_ARG,
                  "layer 4 (past the last) refused");
            /* the last layer: only [CLS]'s cross-attention reaches the ITM head, so every
             * other token's map is exactly 0; the default is the layer before it */
            int64_t len = 0;
            xvlm_texts_tokens(tx, 0, &len);
            float last[49], *tok = malloc(sizeof(float) * (size_t)(len * P));
            CHECK_OK(xvlm_gradcam(ctx, im, tx, (xvlm_pair){0, 0}, 3, last, tok));
            int nonzero_words = 0;
            for (int64_t i = P; i < len * P; i++) nonzero_words += tok[i] != 0;
            CHECK(len > 1 && nonzero_words == 0, "layer 3: %d word-map cells are not 0", nonzero_words);
            CHECK(xvlm_gradcam_default_layer(f.m) == 2, "default layer of 4 layers, fusion 2: %d (want 2)",
                  xvlm_gradcam_default_layer(f.m));
            free(tok);
        }
        xvlm_images_free(im);
        xvlm_texts_free(tx);
        free(px), free(want), free(atts);
    }
    fixture_close(&f);
}

int main(void) {
    if (!xv_fixtures_dir()) return xv_test_skip("fixtures absent");
    xvlm_set_threads(2);
    nlvr();
    gradcam();
    return xv_test_finish("test_nlvr_gradcam_api");
}
