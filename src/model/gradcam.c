#include "model/gradcam.h"

#include <math.h>
#include <string.h>

xv_status xv_gradcam_map(const float *probs, const float *grads, const int32_t *text_atts, int64_t B, int64_t heads,
                         int64_t L, int64_t n, float *map) {
    const int64_t P = n * n, T = 1 + P;
    if (B < 1 || heads < 1 || L < 1 || n < 1)
        return xv_error(XV_ERR_SHAPE, "Grad-CAM map: empty shape (B %lld, heads %lld, L %lld, n %lld)", (long long)B,
                        (long long)heads, (long long)L, (long long)n);
    for (int64_t b = 0; b < B; b++) {
        float *out = map + b * P;
        for (int64_t p = 0; p < P; p++) {
            /* mean over heads of (mean over t): official gradcam.mean(1).mean(1) */
            double over_heads = 0;
            for (int64_t h = 0; h < heads; h++) {
                double over_t = 0;
                for (int64_t t = 0; t < L; t++) {
                    if (!text_atts[b * L + t]) continue; /* padding rows are zeros (still counted in L) */
                    int64_t at = ((b * heads + h) * L + t) * T + 1 + p;
                    float g = grads[at] > 0 ? grads[at] : 0.0f;
                    over_t += (double)probs[at] * (double)g;
                }
                over_heads += over_t / (double)L;
            }
            out[p] = (float)(over_heads / (double)heads);
        }
    }
    return XV_OK;
}

void xv_gradcam_token_maps(const float *probs, const float *grads, int64_t heads, int64_t L, int64_t n, float *out) {
    const int64_t P = n * n, T = 1 + P;
    for (int64_t t = 0; t < L; t++)
        for (int64_t p = 0; p < P; p++) {
            double acc = 0;
            for (int64_t h = 0; h < heads; h++) {
                int64_t at = (h * L + t) * T + 1 + p;
                acc += (double)probs[at] * (double)(grads[at] > 0 ? grads[at] : 0.0f);
            }
            out[t * P + p] = (float)(acc / (double)heads);
        }
}

xv_status xv_gradcam(xv_graph *g, xv_model *m, const xv_gradcam_batch *b, xv_gradcam_out *out) {
    memset(out, 0, sizeof *out);
    const xv_bert_config *c = &m->cfg.text;
    if (!m->parts.itm) return xv_error(XV_ERR_UNSUPPORTED, "Grad-CAM: the model has no itm_head");
    if (!xv_graph_grad_enabled(g)) return xv_error(XV_ERR_INVALID_ARG, "Grad-CAM: the graph must record gradients");
    if (b->block_num < c->fusion_layer || b->block_num >= c->layers)
        return xv_error(XV_ERR_INVALID_ARG, "Grad-CAM: block_num %d is not a fusion layer (%d..%d)", b->block_num,
                        c->fusion_layer, c->layers - 1);
    if (!b->image || !b->text_ids || !b->text_atts || b->text_ids->ndim != 2 || b->text_atts->dtype != XV_I32 ||
        !xv_same_shape(b->text_ids, b->text_atts) || b->image->ndim != 4 || b->image->shape[0] != b->text_ids->shape[0])
        return xv_error(XV_ERR_SHAPE, "Grad-CAM: need images [B, 3, R, R] and I32 text_ids / text_atts [B, L]");
    const int64_t B = b->text_ids->shape[0], L = b->text_ids->shape[1];
    const int64_t P = xv_config_num_patches(&m->cfg);
    int64_t n = 1;
    while (n * n < P) n++;
    if (n * n != P) return xv_error(XV_ERR_SHAPE, "Grad-CAM: %lld patches do not form a square", (long long)P);

    xv_graph_set_free_used_grads(g, false); /* G and the layer gradients must survive the backward */
    out->vision_embeds = xv_model_vision(g, m, b->image, NULL);
    out->layer_out = xv_graph_calloc(g, sizeof(xv_tensor *) * (size_t)c->layers);
    xv_tensor *x = xv_bert_embed(g, &m->text, b->text_ids);
    out->text_embedding_output = x;
    for (int i = 0; i < c->layers && out->layer_out; i++) {
        xv_tensor *image = i < c->fusion_layer ? NULL : out->vision_embeds;
        x = i == b->block_num
                ? xv_bert_layer_probed(g, &m->text, i, x, b->text_atts, image, NULL, &out->attn_probs)
                : xv_bert_layers(g, &m->text, x, i, i + 1, b->text_atts, image, NULL);
        out->layer_out[i] = x;
    }
    out->cross_cls = xv_nn_token(g, x, 0);
    out->itm_logits = xv_mlp_head_forward(g, &m->itm_head, out->cross_cls);
    out->loss = xv_sum(g, xv_slice(g, out->itm_logits, 1, 1, 1));
    XV_TRY(xv_graph_status(g));
    xv_params_zero_grad(&m->params);
    XV_TRY(xv_backward(g, out->loss));
    if (!out->attn_probs->grad) return xv_error(XV_ERR_INTERNAL, "Grad-CAM: the attention probabilities got no gradient");
    out->map = xv_tensor_new(g, XV_F32, XV_SHAPE(B, n, n));
    XV_TRY(xv_graph_status(g));
    return xv_gradcam_map(out->attn_probs->data, out->attn_probs->grad, b->text_atts->idata, B, c->heads, L, n,
                          out->map->data);
}
