/* xvlm_gradcam and xvlm_ground_weak: where the ITM score looks (Grounding.py
 * evaluation, model/gradcam.h), and the proposal that map picks
 * (model/gradcam_boxes.h). */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "model/gradcam.h"
#include "model/gradcam_boxes.h"
#include "nn/layers.h"

int xvlm_gradcam_default_layer(const xvlm_model *mm) {
    const xv_bert_config *c = &mm->m->cfg.text;
    /* The last layer's map is [CLS]'s alone: no layer after it carries another
     * token's cross-attention to the ITM head, so its gradient is exactly 0
     * there. Base (12 layers, fusion 6): 9, two layers before the end. */
    const int with_one_after = c->layers - 2 > c->fusion_layer ? c->layers - 2 : c->fusion_layer;
    return c->fusion_layer + 3 < with_one_after ? c->fusion_layer + 3 : with_one_after;
}

static xv_status check_gradcam(const xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair,
                               int layer, const char *what) {
    XV_TRY(xv_api_check_pairs(ctx, im, tx, &pair, 1, what));
    const xv_model *m = ctx->model->m;
    if (!m->parts.itm)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: the model has no itm_head (Grad-CAM follows the ITM score; use a "
                                            "pretraining or retrieval checkpoint)", what);
    if (xv_model_paired(&m->parts))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: Grad-CAM needs the one-image fusion layers (this is an NLVR2 model)",
                        what);
    const xv_bert_config *c = &m->cfg.text;
    if (layer < c->fusion_layer || layer >= c->layers)
        return xv_error(XV_ERR_INVALID_ARG, "%s: layer %d is not a fusion layer of this model (%d..%d: the layers with "
                                            "cross-attention to the image)", what, layer, c->fusion_layer, c->layers - 1);
    return XV_OK;
}

/* The fusion layers over the pair with the cross-attention probabilities of
 * `layer` recorded, back-propagated from the raw ITM class-1 logit. Only
 * activations need gradients: the text states are the one leaf that asks for
 * them (parameters are switched off meanwhile, so no weight gradient is
 * computed). *probs gets A [1, heads, L, 1+P] with its gradient. */
static xv_status probe(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                       xv_tensor **probs) {
    xv_model *m = ctx->model->m;
    xv_graph *g = ctx->g;
    const int64_t r0 = tx->off[pair.text], L = tx->off[pair.text + 1] - r0;
    const int H = tx->H, T = im->T, C = im->C;
    xv_graph_reset(g);
    xv_tensor *x = xv_tensor_new(g, XV_F32, XV_SHAPE(1, L, H));
    xv_tensor *atts = xv_tensor_new(g, XV_I32, XV_SHAPE(1, L));
    xv_tensor *img = xv_tensor_new(g, XV_F32, XV_SHAPE(1, T, C));
    if (!x || !atts || !img) return xv_graph_status(g);
    memcpy(x->data, tx->states + (size_t)r0 * (size_t)H, sizeof(float) * (size_t)(L * H));
    for (int64_t t = 0; t < L; t++) atts->idata[t] = 1;
    xv_api_image_tokens(im, pair.image, img->data);
    x->requires_grad = true;
    xv_graph_set_grad(g, true);
    xv_params_set_requires_grad(&m->params, false);
    *probs = NULL;
    for (int i = m->cfg.text.fusion_layer; i < m->cfg.text.layers; i++)
        x = i == layer ? xv_bert_layer_probed(g, &m->text, i, x, atts, img, NULL, probs)
                       : xv_bert_layers(g, &m->text, x, i, i + 1, atts, img, NULL);
    xv_tensor *z = xv_mlp_head_forward(g, &m->itm_head, xv_nn_token(g, x, 0));
    xv_status st = xv_backward(g, xv_sum(g, xv_slice(g, z, 1, 1, 1)));
    xv_params_set_requires_grad(&m->params, true);
    xv_graph_set_grad(g, false);
    if (st == XV_OK && (!*probs || !(*probs)->grad))
        st = xv_error(XV_ERR_INTERNAL, "Grad-CAM: the attention probabilities of layer %d got no gradient", layer);
    return st;
}

static xv_status gradcam(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                         float *map, float *token_maps) {
    const xv_model *m = ctx->model->m;
    xv_tensor *a;
    XV_TRY(probe(ctx, im, tx, pair, layer, &a));
    const int64_t heads = m->cfg.text.heads, L = a->shape[2], T = a->shape[3];
    int64_t n = 0;
    while ((n + 1) * (n + 1) <= T - 1) n++;
    if (n * n != T - 1) return xv_error(XV_ERR_SHAPE, "Grad-CAM: %lld patches do not form a square", (long long)(T - 1));
    if (map) {
        int32_t *ones = malloc(sizeof(int32_t) * (size_t)L);
        if (!ones) return xv_error(XV_ERR_NOMEM, "out of memory");
        for (int64_t t = 0; t < L; t++) ones[t] = 1;
        xv_status st = xv_gradcam_map(a->data, a->grad, ones, 1, heads, L, n, map);
        free(ones);
        XV_TRY(st);
    }
    if (token_maps) xv_gradcam_token_maps(a->data, a->grad, heads, L, n, token_maps);
    return XV_OK;
}

xv_status xv_api_gradcam(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                         float *map, float *token_maps) {
    XV_TRY(check_gradcam(ctx, im, tx, pair, layer, "xvlm_gradcam"));
    xv_status st = gradcam(ctx, im, tx, pair, layer, map, token_maps);
    xv_graph_reset(ctx->g);
    return st;
}

xv_status xv_api_ground_weak(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                             const float *boxes, int n_boxes, float *scores, int *chosen) {
    XV_TRY(check_gradcam(ctx, im, tx, pair, layer, "xvlm_ground_weak"));
    if (n_boxes < 0 || (n_boxes > 0 && !boxes) || !chosen)
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_ground_weak: bad proposals or no place for the choice");
    for (int k = 0; k < n_boxes; k++)
        if (!(boxes[4 * k + 2] > 0 && boxes[4 * k + 3] > 0))
            return xv_error(XV_ERR_INVALID_ARG, "xvlm_ground_weak: proposal %d has width %g and height %g (both must "
                            "be > 0)", k, (double)boxes[4 * k + 2], (double)boxes[4 * k + 3]);
    int W, H;
    xvlm_images_size(im, pair.image, &W, &H);
    xvlm_model_info info;
    xvlm_model_get_info(ctx->model, &info);
    const int n = info.map_side;
    float *map = malloc(sizeof(float) * (size_t)n * (size_t)n), *up = malloc(sizeof(float) * (size_t)W * (size_t)H);
    float *s = scores ? scores : malloc(sizeof(float) * (size_t)(n_boxes ? n_boxes : 1));
    xv_status st = map && up && s ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory for a %dx%d map", W, H);
    if (st == XV_OK) st = gradcam(ctx, im, tx, pair, layer, map, NULL);
    if (st == XV_OK) {
        xv_upsample_bicubic_torch(map, n, n, up, H, W);
        for (int k = 0; k < n_boxes; k++) {
            const double box[4] = {boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3]};
            s[k] = xv_weak_box_score(up, H, W, box, XV_GRADCAM_BOX_ALPHA);
        }
        *chosen = xv_weak_choose(s, n_boxes);
    }
    if (s != scores) free(s);
    free(map);
    free(up);
    xv_graph_reset(ctx->g);
    return st;
}
