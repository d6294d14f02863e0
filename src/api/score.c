/* ITC similarities and ITM scores of encoded images and texts. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "nn/layers.h"

/* Pairs per fusion pass (Retrieval.py re-ranks k_test pairs at once; 16
 * keeps the activations of X-VLM base at 384 px around 100 MB). */
#define PAIR_BATCH 16

xv_status xv_api_similarity(const xvlm_images *im, const xvlm_texts *tx, float *sim) {
    if (!im || !tx || !sim) return xv_error(XV_ERR_INVALID_ARG, "xvlm_similarity: NULL argument");
    if (im->model_id != tx->model_id)
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_similarity: the images and texts were encoded by different models");
    if (!im->feat || !tx->feat)
        return xv_error(XV_ERR_UNSUPPORTED, "xvlm_similarity: the model has no ITC projections (vision_proj, text_proj)");
    if (im->n == 0 || tx->n == 0) return XV_OK;
    /* sim = I·Tᵀ, as Retrieval.py's image_embeds @ text_embeds.t(). */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)im->n, (int)tx->n, im->E, 1.0f, im->feat, im->E,
                tx->feat, tx->E, 0.0f, sim, (int)tx->n);
    return XV_OK;
}

xv_status xv_api_check_pairs(const xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx,
                             const xvlm_pair *pairs, int n, const char *what) {
    if (!ctx || !im || !tx || n < 0 || (n > 0 && !pairs))
        return xv_error(XV_ERR_INVALID_ARG, "%s: bad arguments", what);
    uint64_t id = ctx->model->id;
    if (im->model_id != id || tx->model_id != id)
        return xv_error(XV_ERR_INVALID_ARG, "%s: the images or texts were encoded by another model than this context's",
                        what);
    if (n > 0 && im->tok_kind == XVLM_TOKENS_NONE)
        return xv_error(XV_ERR_INVALID_ARG, "%s: the images were encoded without their vision tokens (set "
                                            "xvlm_image_params.keep_tokens)", what);
    for (int i = 0; i < n; i++)
        if (pairs[i].image < 0 || pairs[i].image >= im->n || pairs[i].text < 0 || pairs[i].text >= tx->n)
            return xv_error(XV_ERR_INVALID_ARG, "%s: pair %d = (image %lld, text %lld) outside %lld images x %lld texts",
                            what, i, (long long)pairs[i].image, (long long)pairs[i].text, (long long)im->n,
                            (long long)tx->n);
    return XV_OK;
}

xv_status xv_api_fusion_pairs(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs,
                              int n, xv_api_cls_fn head, void *user) {
    const xv_model *m = ctx->model->m;
    xv_graph *g = ctx->g;
    const int H = tx->H, T = im->T, C = im->C;
    xv_status st = XV_OK;
    for (int first = 0; first < n && st == XV_OK; first += PAIR_BATCH) {
        int b = n - first < PAIR_BATCH ? n - first : PAIR_BATCH;
        int64_t L = 1;
        for (int i = 0; i < b; i++) {
            int64_t t = pairs[first + i].text, len = tx->off[t + 1] - tx->off[t];
            if (len > L) L = len;
        }
        xv_graph_reset(g);
        /* Texts padded to the longest of the batch, as the fine-tuning scripts
         * do; padded keys get exactly zero attention weight in fp32. */
        xv_tensor *text = xv_tensor_zeros(g, XV_F32, XV_SHAPE(b, L, H));
        xv_tensor *atts = xv_tensor_zeros(g, XV_I32, XV_SHAPE(b, L));
        xv_tensor *img = xv_tensor_new(g, XV_F32, XV_SHAPE(b, T, C));
        if (!text || !atts || !img) return xv_graph_status(g);
        for (int i = 0; i < b; i++) {
            const xvlm_pair *pr = &pairs[first + i];
            int64_t r0 = tx->off[pr->text], len = tx->off[pr->text + 1] - r0;
            memcpy(text->data + (size_t)i * (size_t)(L * H), tx->states + (size_t)r0 * (size_t)H,
                   sizeof(float) * (size_t)(len * H));
            for (int64_t t = 0; t < len; t++) atts->idata[i * L + t] = 1;
            xv_api_image_tokens(im, pr->image, img->data + (size_t)i * (size_t)T * (size_t)C);
        }
        xv_tensor *out = xv_model_fusion(g, m, text, atts, img, NULL); /* all vision tokens visible */
        xv_tensor *cls = xv_nn_token(g, out, 0);
        st = xv_graph_status(g);
        if (st != XV_OK) return xv_error_wrap(st, "fusion encoder");
        st = head(ctx, cls, first, user);
    }
    return st;
}

typedef struct {
    float *logit, *prob;
} itm_out;

static xv_status itm_scores(xvlm_ctx *ctx, xv_tensor *cls, int first, void *user) {
    itm_out *o = user;
    xv_tensor *lg = xv_mlp_head_forward(ctx->g, &ctx->model->m->itm_head, cls); /* [b, 2] */
    XV_TRY(xv_graph_status(ctx->g));
    for (int64_t i = 0; i < lg->shape[0]; i++) {
        float l0 = lg->data[2 * i], l1 = lg->data[2 * i + 1];
        if (o->logit) o->logit[first + i] = l1;
        if (o->prob) o->prob[first + i] = (float)(1.0 / (1.0 + exp((double)l0 - (double)l1)));
    }
    return XV_OK;
}

xv_status xv_api_itm(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                     float *logit, float *prob) {
    XV_TRY(xv_api_check_pairs(ctx, im, tx, pairs, n, "xvlm_itm"));
    if (!ctx->model->m->parts.itm)
        return xv_error(XV_ERR_UNSUPPORTED, "xvlm_itm: the model has no itm_head (a grounding checkpoint?); use a "
                                            "pretraining or retrieval checkpoint");
    itm_out o = {logit, prob};
    xv_status st = xv_api_fusion_pairs(ctx, im, tx, pairs, n, itm_scores, &o);
    xv_graph_reset(ctx->g);
    return st;
}
