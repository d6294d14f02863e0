#include "model/losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static xv_tensor *sim(xv_graph *g, xv_tensor *image_feat, xv_tensor *text_feat, xv_tensor *temp) {
    return xv_div_scalar(g, xv_linear(g, image_feat, text_feat, NULL), temp);
}

/* This rank's similarities when the loss runs over gathered features: only
 * what the ITM negatives are drawn from (§5.2), so not recorded. */
static xv_tensor *local_sim_unrecorded(xv_graph *g, xv_tensor *image_feat, xv_tensor *text_feat, xv_tensor *temp) {
    const bool rec = xv_graph_grad_enabled(g);
    xv_graph_set_grad(g, false);
    xv_tensor *s = sim(g, image_feat, text_feat, temp);
    xv_graph_set_grad(g, rec);
    return s;
}

/* Every rank's idx (I32 [B]) in rank order: positives are matched over the
 * global batch. */
static xv_tensor *gather_ids(xv_graph *g, xv_tensor *idx) {
    const int world = xv_dist_world();
    if (world == 1) return idx;
    if (idx->dtype != XV_I32 || idx->ndim != 1)
        return xv_graph_fail(g, XV_ERR_SHAPE, "ITC: idx must be I32 [B]");
    xv_tensor *all = xv_tensor_new(g, XV_I32, XV_SHAPE(idx->shape[0] * world));
    if (!all) return NULL;
    xv_status st = xv_dist_allgather(idx->idata, all->idata, sizeof(int32_t) * (size_t)idx->numel);
    return st == XV_OK ? all : xv_graph_fail(g, st, "ITC: %s", xv_error_message());
}

xv_tensor *xv_itc_loss(xv_graph *g, const xv_model *m, xv_tensor *image_feat, xv_tensor *text_feat, xv_tensor *idx,
                       xv_tensor **sim_out) {
    return xv_itc_loss_global(g, m, image_feat, text_feat, idx, sim_out, NULL);
}

xv_tensor *xv_itc_loss_global(xv_graph *g, const xv_model *m, xv_tensor *image_feat, xv_tensor *text_feat,
                              xv_tensor *idx, xv_tensor **sim_out, xv_tensor **global_out) {
    if (!image_feat || !text_feat) return NULL;
    if (!m->parts.itc) return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "ITC: the model has no temp/projections");
    if (image_feat->ndim != 2 || !xv_same_shape(image_feat, text_feat))
        return xv_graph_fail(g, XV_ERR_SHAPE, "ITC: image and text features must both be [B, E]");
    xv_tensor *temp = xv_reshape(g, m->temp, XV_SHAPE(1)); /* the parameter is 0-dim */
    xv_tensor *logits;
    if (xv_dist_world() == 1) {
        logits = sim(g, image_feat, text_feat, temp);
        if (sim_out) *sim_out = logits;
    } else { /* the loss runs over the batch of every rank (§5.1) */
        if (sim_out) *sim_out = local_sim_unrecorded(g, image_feat, text_feat, temp);
        image_feat = xv_dist_all_gather_rows(g, image_feat);
        text_feat = xv_dist_all_gather_rows(g, text_feat);
        if (idx && !(idx = gather_ids(g, idx))) return NULL;
        logits = sim(g, image_feat, text_feat, temp);
    }
    if (global_out) *global_out = logits;
    if (!logits) return NULL;
    const int64_t B = logits->shape[0];
    xv_tensor *logits_t = xv_permute(g, logits, (const int[]){1, 0});
    xv_tensor *i2t, *t2i;
    if (!idx) {
        xv_tensor *diag = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
        if (!diag) return NULL;
        for (int64_t b = 0; b < B; b++) diag->idata[b] = (int32_t)b;
        i2t = xv_cross_entropy(g, logits, diag, -100);
        t2i = xv_cross_entropy(g, logits_t, diag, -100);
    } else {
        if (idx->dtype != XV_I32 || idx->ndim != 1 || idx->shape[0] != B)
            return xv_graph_fail(g, XV_ERR_SHAPE, "ITC: idx must be I32 [%lld]", (long long)B);
        /* Same idx = positive; targets P / rowsum(P). P is symmetric, so the
         * same targets serve the transposed logits. */
        xv_tensor *y = xv_tensor_new(g, XV_F32, XV_SHAPE(B, B));
        if (!y) return NULL;
        for (int64_t i = 0; i < B; i++) {
            int64_t cnt = 0;
            for (int64_t j = 0; j < B; j++) cnt += idx->idata[i] == idx->idata[j];
            for (int64_t j = 0; j < B; j++) y->data[i * B + j] = idx->idata[i] == idx->idata[j] ? 1.0f / (float)cnt : 0.0f;
        }
        i2t = xv_cross_entropy_soft(g, logits, y);
        t2i = xv_cross_entropy_soft(g, logits_t, y);
    }
    return xv_scale(g, xv_add(g, i2t, t2i), 0.5f, 0.0f);
}

/* One multinomial draw from non-negative weights w[n] (sum > 0). */
static int draw(const double *w, int n, xv_rng *rng) {
    double total = 0;
    for (int j = 0; j < n; j++) total += w[j];
    double u = xv_rng_uniform_double(rng) * total, acc = 0;
    int last = -1;
    for (int j = 0; j < n; j++) {
        if (w[j] <= 0) continue;
        acc += w[j];
        last = j;
        if (u < acc) return j;
    }
    return last; /* rounding at the top end */
}

xv_status xv_itm_sample_negatives(const float *sim_i2t, int B, const int32_t *idx, xv_rng *rng, int32_t *neg_img,
                                  int32_t *neg_txt) {
    if (B < 2) return xv_error(XV_ERR_INVALID_ARG, "ITM: hard negatives need a batch of at least 2 (got %d)", B);
    double *w = malloc(sizeof(double) * (size_t)B);
    if (!w) return xv_error(XV_ERR_NOMEM, "out of memory");
    /* pass 0: texts pick images (rows of sim_t2i = columns of sim_i2t);
     * pass 1: images pick texts (rows of sim_i2t). */
    for (int pass = 0; pass < 2; pass++) {
        for (int b = 0; b < B; b++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < B; j++) {
                double s = pass == 0 ? sim_i2t[(int64_t)j * B + b] : sim_i2t[(int64_t)b * B + j];
                w[j] = s;
                if (s > mx) mx = s;
            }
            for (int j = 0; j < B; j++) sum += w[j] = exp(w[j] - mx);
            bool any = false;
            for (int j = 0; j < B; j++) {
                bool same = idx ? idx[j] == idx[b] : j == b;
                w[j] = same ? 0.0 : w[j] / sum + 1e-5;
                any |= !same;
            }
            if (!any) {
                free(w);
                return xv_error(XV_ERR_INVALID_ARG, "ITM: row %d has no negative (every pair shares its idx)", b);
            }
            (pass == 0 ? neg_img : neg_txt)[b] = draw(w, B, rng);
        }
    }
    free(w);
    return XV_OK;
}

xv_status xv_itm_negative_tensors(xv_graph *g, const xv_tensor *sim_i2t, const xv_tensor *idx, xv_rng *rng,
                                  xv_tensor *given_img, xv_tensor *given_txt, xv_tensor **neg_img, xv_tensor **neg_txt) {
    *neg_img = given_img;
    *neg_txt = given_txt;
    if (given_img && given_txt) return XV_OK;
    if (given_img || given_txt || !rng)
        return xv_error(XV_ERR_INVALID_ARG, "ITM: give both negative index vectors, or an RNG to draw them");
    const int64_t B = sim_i2t->shape[0];
    *neg_img = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
    *neg_txt = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
    XV_TRY(xv_graph_status(g));
    return xv_itm_sample_negatives(sim_i2t->data, (int)B, idx ? idx->idata : NULL, rng, (*neg_img)->idata,
                                   (*neg_txt)->idata);
}

xv_tensor *xv_itm_loss(xv_graph *g, const xv_model *m, xv_tensor *image_embeds, xv_tensor *image_atts,
                       xv_tensor *text_embeds, xv_tensor *text_atts, xv_tensor *neg_img, xv_tensor *neg_txt,
                       xv_tensor **cross_cls_out, xv_tensor **logits_out) {
    if (!image_embeds || !text_embeds || !text_atts) return NULL;
    if (!m->parts.itm) return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "ITM: the model has no itm_head");
    const int64_t B = text_embeds->shape[0];
    if (image_embeds->shape[0] != B)
        return xv_graph_fail(g, XV_ERR_SHAPE, "ITM: %lld images for %lld texts", (long long)image_embeds->shape[0],
                             (long long)B);
    xv_tensor *pos = xv_nn_token(g, xv_model_fusion(g, m, text_embeds, text_atts, image_embeds, image_atts), 0);

    xv_tensor *text_all = xv_concat(g, (xv_tensor *[]){text_embeds, xv_gather_rows(g, text_embeds, neg_txt)}, 2, 0);
    xv_tensor *tatts_all = xv_concat(g, (xv_tensor *[]){text_atts, xv_gather_rows(g, text_atts, neg_txt)}, 2, 0);
    xv_tensor *image_all = xv_concat(g, (xv_tensor *[]){xv_gather_rows(g, image_embeds, neg_img), image_embeds}, 2, 0);
    xv_tensor *iatts_all = NULL;
    if (image_atts) {
        iatts_all = xv_concat(g, (xv_tensor *[]){xv_gather_rows(g, image_atts, neg_img), image_atts}, 2, 0);
        if (!iatts_all) return NULL;
    }
    xv_tensor *neg = xv_nn_token(g, xv_model_fusion(g, m, text_all, tatts_all, image_all, iatts_all), 0);

    xv_tensor *cls = xv_concat(g, (xv_tensor *[]){pos, neg}, 2, 0); /* [3B, H] */
    xv_tensor *logits = xv_mlp_head_forward(g, &m->itm_head, cls);
    xv_tensor *labels = xv_tensor_new(g, XV_I32, XV_SHAPE(3 * B));
    if (!labels) return NULL;
    for (int64_t i = 0; i < 3 * B; i++) labels->idata[i] = i < B;
    if (cross_cls_out) *cross_cls_out = cls;
    if (logits_out) *logits_out = logits;
    return xv_cross_entropy(g, logits, labels, -100);
}

xv_tensor *xv_mlm_loss(xv_graph *g, const xv_model *m, xv_tensor *ids_masked, xv_tensor *text_atts,
                       xv_tensor *image_embeds, xv_tensor *image_atts, xv_tensor *masked_pos, xv_tensor *masked_ids,
                       xv_tensor **logits_out) {
    if (!ids_masked || !masked_pos || !masked_ids) return NULL;
    if (!m->parts.mlm) return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "MLM: the model has no text_encoder.cls head");
    const int64_t B = ids_masked->shape[0], L = ids_masked->shape[1], H = m->cfg.text.hidden,
                  V = m->cfg.text.vocab;
    if (ids_masked->ndim != 2 || masked_pos->dtype != XV_I32 || masked_pos->ndim != 2 ||
        masked_pos->shape[0] != B || masked_ids->dtype != XV_I32 || !xv_same_shape(masked_pos, masked_ids))
        return xv_graph_fail(g, XV_ERR_SHAPE, "MLM: masked_pos and masked_ids must be I32 [%lld, M]", (long long)B);
    const int64_t M = masked_pos->shape[1];
    xv_tensor *rows = xv_tensor_new(g, XV_I32, XV_SHAPE(B * M));
    xv_tensor *targets = xv_reshape(g, masked_ids, XV_SHAPE(B * M));
    if (!rows || !targets) return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < M; k++) rows->idata[b * M + k] = (int32_t)(b * L + masked_pos->idata[b * M + k]);
    xv_tensor *h = xv_model_multimodal(g, m, ids_masked, text_atts, image_embeds, image_atts);
    xv_tensor *sel = xv_gather_rows(g, xv_reshape(g, h, XV_SHAPE(B * L, H)), rows); /* [B·M, H] */
    xv_tensor *logits = xv_mlm_head_forward(g, &m->mlm, sel);
    if (logits_out) *logits_out = xv_reshape(g, logits, XV_SHAPE(B, M, V));
    return xv_cross_entropy(g, logits, targets, -100);
}

xv_tensor *xv_bbox_predict(xv_graph *g, const xv_model *m, xv_tensor *image_embeds_full, xv_tensor *text_embeds,
                           xv_tensor *text_atts, xv_tensor **cls_out) {
    if (!m->parts.bbox) return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "box prediction: the model has no bbox_head");
    xv_tensor *cls = xv_nn_token(g, xv_model_fusion(g, m, text_embeds, text_atts, image_embeds_full, NULL), 0);
    if (cls_out) *cls_out = cls;
    return xv_sigmoid(g, xv_mlp_head_forward(g, &m->bbox_head, cls));
}

xv_tensor *xv_bbox_loss(xv_graph *g, xv_tensor *pred, xv_tensor *target, xv_tensor *is_image, xv_tensor **giou_out) {
    if (!pred || !target) return NULL;
    if (pred->ndim != 2 || pred->shape[1] != 4 || !xv_same_shape(pred, target))
        return xv_graph_fail(g, XV_ERR_SHAPE, "box loss: prediction and target must both be [B, 4]");
    const int64_t B = pred->shape[0];
    xv_tensor *l1 = xv_abs(g, xv_sub(g, pred, target)); /* [B, 4] */
    xv_tensor *giou = xv_giou_loss(g, pred, target);     /* [B] */
    double n = (double)B;
    if (is_image) {
        xv_tensor *w4 = xv_tensor_new(g, XV_F32, XV_SHAPE(B, 4));
        xv_tensor *w1 = xv_tensor_new(g, XV_F32, XV_SHAPE(B));
        if (!w4 || !w1) return NULL;
        n = 0;
        for (int64_t b = 0; b < B; b++) {
            float keep = (float)(1 - is_image->idata[b]);
            n += keep;
            w1->data[b] = keep;
            for (int c = 0; c < 4; c++) w4->data[b * 4 + c] = keep;
        }
        l1 = xv_mul(g, l1, w4);
        giou = xv_mul(g, giou, w1);
    }
    xv_tensor *nb = xv_tensor_new(g, XV_F32, XV_SHAPE(1));
    if (!nb) return NULL;
    nb->data[0] = (float)n; /* the official code divides by the box count */
    if (giou_out) *giou_out = xv_div_scalar(g, xv_sum(g, giou), nb);
    return xv_div_scalar(g, xv_sum(g, l1), nb);
}
