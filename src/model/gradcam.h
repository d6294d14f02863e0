/* Grad-CAM of the ITM score for weakly-supervised grounding (the official
 * Grounding.py `val` with gradcam_mode 'itm', shared/docs/xvlm-nlvr-grounding.md
 * §3.3), on the retrieval model (BertModel text layout, itm_head):
 *
 *   E = Swin(image); h = all text/fusion layers over E (all tokens visible);
 *   Λ = Σ_b itm_head(h[b, 0])[1]   (the raw class-1 logit, no softmax);
 *   A = cross-attention probabilities of layer block_num [B, heads, L, 1+P],
 *   G = dΛ/dA;
 *   map[b, y, x] = mean_heads mean_t A[b, h, t, 1+p]·max(G[b, h, t, 1+p], 0)·m[b, t]
 *
 * with p = y·n + x (n patches per side), the image CLS column dropped, m the
 * text mask and the mean over the padded length L (padding rows count as
 * zeros, as officially). Each sample's term of Λ depends on that sample only,
 * so G of sample b is dz[b, 1]/dA_b. */
#ifndef XV_MODEL_GRADCAM_H
#define XV_MODEL_GRADCAM_H

#include "model/model.h"

typedef struct {
    xv_tensor *image;     /* F32 [B, 3, R, R]: one image per expression */
    xv_tensor *text_ids;  /* I32 [B, L] */
    xv_tensor *text_atts; /* I32 [B, L] */
    int block_num;        /* absolute encoder layer (>= fusion_layer) whose cross-attention is read */
} xv_gradcam_batch;

typedef struct {
    xv_tensor *vision_embeds;         /* [B, 1+P, Cv] */
    xv_tensor *text_embedding_output; /* [B, L, H] */
    xv_tensor **layer_out;            /* [num_hidden_layers] outputs [B, L, H] (graph memory) */
    xv_tensor *cross_cls;             /* [B, H] */
    xv_tensor *itm_logits;            /* [B, 2] */
    xv_tensor *loss;                  /* [1]: Λ, the back-propagated sum of class-1 logits */
    xv_tensor *attn_probs;            /* [B, heads, L, 1+P]: A; its grad holds G after the call */
    xv_tensor *map;                   /* [B, n, n] */
} xv_gradcam_out;

/* Forward, backward of Λ (parameter gradients are zeroed first and hold dΛ/dθ
 * afterwards, as after the official zero_grad + backward) and the maps. g
 * must record gradients; use eval mode as the official evaluation does.
 * Intermediate gradients (layer outputs, A) stay readable on g (the call
 * turns xv_graph_set_free_used_grads off). */
xv_status xv_gradcam(xv_graph *g, xv_model *m, const xv_gradcam_batch *b, xv_gradcam_out *out);

/* The map from A and G [B, heads, L, 1+P] and the text mask I32 [B, L] into
 * map [B, n, n] (n·n = P), the official arithmetic (mean over heads, then over L). */
xv_status xv_gradcam_map(const float *probs, const float *grads, const int32_t *text_atts, int64_t B, int64_t heads,
                         int64_t L, int64_t n, float *map);

/* One sample's map per text row, before the mean over the text: A and G
 * [heads, L, 1+P] -> out [L, n, n], out[t][p] = mean over heads of
 * A[h, t, 1+p]·max(G[h, t, 1+p], 0). The expression's map is their sum / L. */
void xv_gradcam_token_maps(const float *probs, const float *grads, int64_t heads, int64_t L, int64_t n, float *out);

#endif
