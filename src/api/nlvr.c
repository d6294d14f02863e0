/* xvlm_nlvr: a statement about two images, true or false (NLVR.py
 * evaluation; the paired fusion stack of model/nlvr.h). */
#include <math.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "model/nlvr.h"
#include "nn/layers.h"

/* Statements per fusion pass: each carries two images' tokens (NLVR.py's
 * batch is 10 per GPU). */
#define NLVR_BATCH 8

static xv_status check_nlvr_pairs(const xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx,
                                  const xvlm_nlvr_pair *pairs, int n) {
    for (int i = 0; i < n; i++) {
        const xvlm_pair lp = {pairs[i].left, pairs[i].text}, rp = {pairs[i].right, pairs[i].text};
        XV_TRY(xv_api_check_pairs(ctx, im, tx, &lp, 1, "xvlm_nlvr (left image)"));
        XV_TRY(xv_api_check_pairs(ctx, im, tx, &rp, 1, "xvlm_nlvr (right image)"));
    }
    return XV_OK;
}

/* Statements [first, first + b) into logits [b, 2] (graph memory). */
static xv_tensor *nlvr_batch(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_nlvr_pair *pairs,
                             int b) {
    const xv_model *m = ctx->model->m;
    xv_graph *g = ctx->g;
    const int H = tx->H, T = im->T, C = im->C;
    int64_t L = 1;
    for (int i = 0; i < b; i++) {
        int64_t len = tx->off[pairs[i].text + 1] - tx->off[pairs[i].text];
        if (len > L) L = len;
    }
    /* padded to the longest statement, as NLVR.py's tokenizer call does */
    xv_tensor *x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(b, L, H));
    xv_tensor *atts = xv_tensor_zeros(g, XV_I32, XV_SHAPE(b, L));
    xv_tensor *left = xv_tensor_new(g, XV_F32, XV_SHAPE(b, T, C)), *right = xv_tensor_new(g, XV_F32, XV_SHAPE(b, T, C));
    if (!x || !atts || !left || !right) return NULL;
    for (int i = 0; i < b; i++) {
        int64_t r0 = tx->off[pairs[i].text], len = tx->off[pairs[i].text + 1] - r0;
        memcpy(x->data + (size_t)i * (size_t)(L * H), tx->states + (size_t)r0 * (size_t)H,
               sizeof(float) * (size_t)(len * H));
        for (int64_t t = 0; t < len; t++) atts->idata[i * L + t] = 1;
        xv_api_image_tokens(im, pairs[i].left, left->data + (size_t)i * (size_t)T * (size_t)C);
        xv_api_image_tokens(im, pairs[i].right, right->data + (size_t)i * (size_t)T * (size_t)C);
    }
    const xv_bert_config *c = &m->cfg.text;
    for (int l = c->fusion_layer; l < c->layers; l++) /* even offsets read the left image, odd the right */
        x = xv_bert_layers(g, &m->text, x, l, l + 1, atts, (l - c->fusion_layer) % 2 ? right : left, NULL);
    return xv_mlp_head_forward(g, &m->cls_head, xv_nn_token(g, x, 0));
}

xv_status xv_api_nlvr(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_nlvr_pair *pairs, int n,
                      float *logits, float *prob_true) {
    if (!ctx || !im || !tx || n < 0 || (n > 0 && !pairs))
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_nlvr: bad arguments");
    if (!ctx->model->m->parts.nlvr)
        return xv_error(XV_ERR_UNSUPPORTED, "xvlm_nlvr: the model has no cls_head over paired fusion layers (convert "
                                            "an NLVR2 checkpoint, or a pretraining one with `xvlm convert --nlvr`)");
    XV_TRY(check_nlvr_pairs(ctx, im, tx, pairs, n));
    xv_status st = XV_OK;
    for (int first = 0; first < n && st == XV_OK; first += NLVR_BATCH) {
        int b = n - first < NLVR_BATCH ? n - first : NLVR_BATCH;
        xv_graph_reset(ctx->g);
        xv_tensor *z = nlvr_batch(ctx, im, tx, pairs + first, b);
        st = xv_graph_status(ctx->g);
        if (st != XV_OK) {
            st = xv_error_wrap(st, "NLVR fusion encoder");
            break;
        }
        for (int i = 0; i < b; i++) {
            float z0 = z->data[2 * i], z1 = z->data[2 * i + 1];
            if (logits) logits[2 * (first + i)] = z0, logits[2 * (first + i) + 1] = z1;
            if (prob_true) prob_true[first + i] = (float)(1.0 / (1.0 + exp((double)z0 - (double)z1)));
        }
    }
    xv_graph_reset(ctx->g);
    return st;
}
