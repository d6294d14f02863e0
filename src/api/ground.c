/* Grounding: the box a text describes (Grounding_bbox.py inference). Built
 * with -ffp-contract=off (CMakeLists.txt) so the pixel conversion rounds each
 * float32 multiply and subtraction separately, as torch does. */
#include <stdlib.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "nn/heads.h"
#include "ops/ops.h"

typedef struct {
    const xvlm_images *im;
    const xvlm_pair *pairs;
    xvlm_box *out;
} ground_job;

static xv_status box_head(xvlm_ctx *ctx, xv_tensor *cls, int first, void *user) {
    ground_job *j = user;
    /* bbox_head then sigmoid: (cx, cy, w, h) relative to the image. */
    xv_tensor *pred = xv_sigmoid(ctx->g, xv_mlp_head_forward(ctx->g, &ctx->model->m->bbox_head, cls));
    XV_TRY(xv_graph_status(ctx->g));
    for (int64_t i = 0; i < pred->shape[0]; i++) {
        const float *c = pred->data + 4 * i;
        xvlm_box *b = &j->out[first + i];
        int w, h;
        xvlm_images_size(j->im, j->pairs[first + i].image, &w, &h);
        b->cx = c[0];
        b->cy = c[1];
        b->w = c[2];
        b->h = c[3];
        /* utils.grounding_eval_bbox: coord[0::2] *= width; coord[1::2] *= height;
         * coord[0] -= coord[2] / 2; coord[1] -= coord[3] / 2 (float32). */
        float W = (float)w, Hf = (float)h;
        float x = c[0] * W, y = c[1] * Hf, bw = c[2] * W, bh = c[3] * Hf;
        b->x = x - bw / 2.0f;
        b->y = y - bh / 2.0f;
        b->width = bw;
        b->height = bh;
    }
    return XV_OK;
}

xv_status xv_api_ground(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                        xvlm_box *out) {
    XV_TRY(xv_api_check_pairs(ctx, im, tx, pairs, n, "xvlm_ground"));
    if (!out && n > 0) return xv_error(XV_ERR_INVALID_ARG, "xvlm_ground: out is NULL");
    if (!ctx->model->m->parts.bbox)
        return xv_error(XV_ERR_UNSUPPORTED, "xvlm_ground: the model has no bbox_head (a retrieval checkpoint?); use a "
                                            "pretraining or grounding checkpoint");
    ground_job j = {im, pairs, out};
    xv_status st = xv_api_fusion_pairs(ctx, im, tx, pairs, n, box_head, &j);
    xv_graph_reset(ctx->g);
    return st;
}
