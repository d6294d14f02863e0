#include "model/pretrain.h"

#include <string.h>

static xv_status bad(const char *fmt, const char *what, long long a, long long b) {
    return xv_error(XV_ERR_SHAPE, fmt, what, a, b);
}

/* I32 tensor of `shape` holding only 0 and 1. */
static xv_status check_mask(xv_tensor *t, const char *what, int64_t rows, int64_t cols) {
    if (!t || t->dtype != XV_I32 || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return bad("pretrain batch: %s must be I32 [%lld, %lld]", what, (long long)rows, (long long)cols);
    for (int64_t i = 0; i < t->numel; i++)
        if (t->idata[i] != 0 && t->idata[i] != 1)
            return xv_error(XV_ERR_INVALID_ARG, "pretrain batch: %s[%lld][%lld] = %d (expected 0 or 1)", what,
                            (long long)(i / cols), (long long)(i % cols), t->idata[i]);
    return XV_OK;
}

static xv_status check_batch(const xv_model *m, const xv_pretrain_batch *b) {
    if (!b->image || !b->text_ids || !b->text_atts || !b->text_ids_masked || !b->masked_pos || !b->masked_ids)
        return xv_error(XV_ERR_INVALID_ARG,
                        "pretrain batch: image, text_ids, text_atts, text_ids_masked, masked_pos and masked_ids are "
                        "required");
    xv_tensor *ids = b->text_ids;
    if (ids->dtype != XV_I32 || ids->ndim != 2 || ids->shape[0] < 1)
        return xv_error(XV_ERR_SHAPE, "pretrain batch: text_ids must be I32 [B, L] with B >= 1");
    const int64_t B = ids->shape[0], L = ids->shape[1], N = b->image->shape[0];
    XV_TRY(check_mask(b->text_atts, "text_atts", B, L));
    if (b->text_ids_masked->dtype != XV_I32 || !xv_same_shape(b->text_ids_masked, ids))
        return bad("pretrain batch: %s must be I32 [%lld, %lld] like text_ids", "text_ids_masked", (long long)B,
                   (long long)L);
    if (b->idx_to_group_img) {
        if (b->image_atts) XV_TRY(check_mask(b->image_atts, "image_atts", B, 1 + xv_config_num_patches(&m->cfg)));
    } else {
        if (b->image_atts || b->target_bbox || b->is_image)
            return xv_error(XV_ERR_INVALID_ARG,
                            "pretrain batch: image_atts, target_bbox and is_image need idx_to_group_img");
        if (N != B)
            return xv_error(XV_ERR_SHAPE, "pretrain batch: %lld images for %lld texts (one image per text)",
                            (long long)N, (long long)B);
    }
    if (b->target_bbox && (b->target_bbox->dtype != XV_F32 || b->target_bbox->ndim != 2 ||
                           b->target_bbox->shape[0] != B || b->target_bbox->shape[1] != 4))
        return bad("pretrain batch: %s must be F32 [%lld, %lld]", "target_bbox", (long long)B, 4);
    if (!b->neg_image_idx != !b->neg_text_idx)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain batch: give both ITM negative index vectors or neither");
    if (!b->neg_image_idx && !b->rng)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain batch: no ITM negatives given and no RNG to draw them");
    return XV_OK;
}

static xv_tensor *add_loss(xv_graph *g, xv_tensor *total, xv_tensor *term) {
    return total ? xv_add(g, total, term) : term;
}

xv_status xv_pretrain_forward(xv_graph *g, xv_model *m, const xv_pretrain_batch *b, xv_pretrain_out *out) {
    memset(out, 0, sizeof *out);
    XV_TRY(check_batch(m, b));
    xv_model_clamp_temp(m);

    out->vision_embeds = xv_model_vision(g, m, b->image, out->swin_stage);
    xv_tensor *image_embeds = out->vision_embeds, *image_atts = NULL, *full = NULL;
    if (b->idx_to_group_img && b->image_atts) {
        image_embeds = xv_model_region(g, m, out->vision_embeds, b->image_atts, b->idx_to_group_img, &full);
        image_atts = b->image_atts;
        out->region_vision_embeds = image_embeds;
        out->vision_embeds_fullatts = full;
    } else if (b->idx_to_group_img) { /* full images gathered per text, all tokens visible */
        image_embeds = full = xv_gather_rows(g, out->vision_embeds, b->idx_to_group_img);
        out->vision_embeds_fullatts = full;
    }
    out->text_embeds = xv_model_text(g, m, b->text_ids, b->text_atts, &out->text_embedding_output);
    out->image_feat = xv_model_image_feat(g, m, image_embeds);
    out->text_feat = xv_model_text_feat(g, m, out->text_embeds);
    out->loss_itc = xv_itc_loss(g, m, out->image_feat, out->text_feat, NULL, &out->sim_i2t);
    XV_TRY(xv_graph_status(g));

    XV_TRY(xv_itm_negatives(g, out->sim_i2t, NULL, b->rng, b->neg_image_idx, b->neg_text_idx, &out->neg_image_idx,
                            &out->neg_text_idx));
    out->loss_itm = xv_itm_loss(g, m, image_embeds, image_atts, out->text_embeds, b->text_atts, out->neg_image_idx,
                                out->neg_text_idx, &out->itm_cross_cls, &out->itm_logits);
    out->loss_mlm = xv_mlm_loss(g, m, b->text_ids_masked, b->text_atts, image_embeds, image_atts, b->masked_pos,
                                b->masked_ids, &out->mlm_logits);
    xv_tensor *total = add_loss(g, add_loss(g, out->loss_itc, out->loss_itm), out->loss_mlm);
    if (b->target_bbox) {
        out->bbox_pred = xv_bbox_predict(g, m, full, out->text_embeds, b->text_atts, &out->bbox_cross_cls);
        out->loss_bbox = xv_bbox_loss(g, out->bbox_pred, b->target_bbox, b->is_image, &out->loss_giou);
        total = add_loss(g, add_loss(g, total, out->loss_bbox), out->loss_giou);
    }
    out->loss_total = total;
    return xv_graph_status(g);
}
