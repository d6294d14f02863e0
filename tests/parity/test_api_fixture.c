/* The public API against the official golden data (shared/fixtures/tiny):
 * the fixture's preprocessed images through xvlm_encode_images_tensor and its
 * captions (as strings, from config.json) through xvlm_encode_texts give the
 * official image/text features, the ITM logits of the positive pairs and the
 * predicted boxes. Tolerance as the fixture README states:
 * |diff| <= 1e-4·max(1, max|ref|) per tensor. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "golden.h"
#include "xvlm.h"

/* max |got - ref| over n values relative to max(1, max |ref|). */
static double rel_err(const float *got, int64_t gstride, const float *ref, int64_t rstride, int rows, int cols) {
    double d = 0, mx = 1;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            mx = fmax(mx, fabs(ref[r * rstride + c]));
            d = fmax(d, fabs((double)got[r * gstride + c] - ref[r * rstride + c]));
        }
    return d / mx;
}

static const char **captions(const cJSON *cfg, const char *step, int *n) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "inputs_info"), step), "captions");
    *n = cJSON_GetArraySize(c);
    const char **out = calloc((size_t)*n + 1, sizeof *out);
    for (int i = 0; i < *n; i++) out[i] = cJSON_GetArrayItem(c, i)->valuestring;
    return out;
}

int main(void) {
    char dir[1024];
    xv_st_file *in = NULL, *out = NULL;
    if (!golden_open("tiny", dir, sizeof dir, &in, &out)) return xv_test_skip("fixtures absent");
    cJSON *cfg = golden_json(dir, "config.json");
    xvlm_set_threads(2);
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    CHECK_OK(xvlm_model_load(dir, NULL, &m));
    if (m) CHECK_OK(xvlm_ctx_new(m, &ctx));
    if (!cfg || !ctx || !in || !out) return xv_test_finish("test_api_fixture");

    /* The fixture's texts: pre_caption(30), [CLS] + tokens cut to 16. */
    xvlm_text_params tp = {.max_words = 30, .max_tokens = 16};
    const int E = 32;

    /* Image-text step: image b with caption b. */
    int nt = 0;
    const char **caps = captions(cfg, "image", &nt);
    float *img = golden_floats(in, "image.image", NULL);
    float *ifeat = golden_floats(out, "image.image_feat", NULL), *tfeat = golden_floats(out, "image.text_feat", NULL);
    float *logits = golden_floats(out, "image.itm_logits", NULL);
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    CHECK_OK(xvlm_encode_images_tensor(ctx, img, nt, NULL, &im));
    CHECK_OK(xvlm_encode_texts(ctx, caps, nt, &tp, &tx));
    if (im && tx) {
        double e1 = rel_err(xvlm_images_features(im), E, ifeat, E, nt, E);
        double e2 = rel_err(xvlm_texts_features(tx), E, tfeat, E, nt, E);
        CHECK(e1 <= 1e-4 && e2 <= 1e-4, "image/text features vs official: %.2e %.2e", e1, e2);
        xvlm_pair pairs[8];
        float lg[8];
        for (int b = 0; b < nt; b++) pairs[b] = (xvlm_pair){b, b};
        CHECK_OK(xvlm_itm(ctx, im, tx, pairs, nt, lg, NULL));
        /* itm_logits rows [0, B) are the positives; column 1 is the score. */
        double e3 = rel_err(lg, 1, logits + 1, 2, nt, 1);
        CHECK(e3 <= 1e-4, "ITM logits of the positive pairs vs official: %.2e", e3);
        printf("image step: features %.2e / %.2e, ITM logits %.2e\n", e1, e2, e3);
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(caps);
    free(img);
    free(ifeat);
    free(tfeat);
    free(logits);

    /* Region step: the box of text b in its (whole) image idx_to_group_img[b]. */
    caps = captions(cfg, "region", &nt);
    int64_t ni = 0;
    img = golden_floats(in, "region.image", &ni);
    ni /= 3 * 224 * 224;
    float *bbox = golden_floats(out, "region.bbox_pred", NULL), *rtfeat = golden_floats(out, "region.text_feat", NULL);
    const xv_st_tensor *gt = xv_st_find(in, "region.idx_to_group_img");
    int32_t group[8] = {0};
    if (gt) CHECK_OK(xv_st_read_i32(in, gt, group));
    CHECK_OK(xvlm_encode_images_tensor(ctx, img, (int)ni, NULL, &im));
    tp.max_tokens = 16;
    CHECK_OK(xvlm_encode_texts(ctx, caps, nt, &tp, &tx));
    if (im && tx) {
        xvlm_pair pairs[8];
        xvlm_box boxes[8];
        float got[8 * 4];
        for (int b = 0; b < nt; b++) pairs[b] = (xvlm_pair){group[b], b};
        CHECK_OK(xvlm_ground(ctx, im, tx, pairs, nt, boxes));
        for (int b = 0; b < nt; b++) {
            got[4 * b] = boxes[b].cx, got[4 * b + 1] = boxes[b].cy, got[4 * b + 2] = boxes[b].w, got[4 * b + 3] = boxes[b].h;
            /* Tensor input: the original size is the model's 224 x 224. */
            CHECK(fabsf(boxes[b].width - boxes[b].w * 224) < 1e-3f, "pixels at 224");
        }
        double e4 = rel_err(got, 4, bbox, 4, nt, 4), e5 = rel_err(xvlm_texts_features(tx), E, rtfeat, E, nt, E);
        CHECK(e4 <= 1e-4 && e5 <= 1e-4, "boxes / region text features vs official: %.2e %.2e", e4, e5);
        printf("region step: boxes %.2e, text features %.2e\n", e4, e5);
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(caps);
    free(img);
    free(bbox);
    free(rtfeat);
    xv_st_close(in);
    xv_st_close(out);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    cJSON_Delete(cfg);
    return xv_test_finish("test_api_fixture");
}
