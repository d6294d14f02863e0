#include "model/grounding_steps.h"

#include <string.h>

static xv_status check_text(const xv_tensor *ids, const xv_tensor *atts, const char *step) {
    if (!ids || !atts || ids->dtype != XV_I32 || ids->ndim != 2 || ids->shape[0] < 1 || atts->dtype != XV_I32 ||
        !xv_same_shape(ids, atts))
        return xv_error(XV_ERR_SHAPE, "%s: text_ids and text_atts must be I32 [B, L] with B >= 1", step);
    return XV_OK;
}

xv_status xv_weak_grounding_step(xv_graph *g, const xv_model *m, const xv_weak_grounding_batch *b,
                                 xv_weak_grounding_out *out) {
    memset(out, 0, sizeof *out);
    XV_TRY(check_text(b->text_ids, b->text_atts, "weak grounding step"));
    const int64_t B = b->text_ids->shape[0];
    if (!b->image || b->image->ndim != 4 || b->image->shape[0] != B || !b->idx || b->idx->dtype != XV_I32 ||
        b->idx->ndim != 1 || b->idx->shape[0] != B)
        return xv_error(XV_ERR_SHAPE, "weak grounding step: need images [%lld, 3, R, R] and idx I32 [%lld]",
                        (long long)B, (long long)B);

    out->vision_embeds = xv_model_vision(g, m, b->image, NULL);
    out->text_embeds = xv_model_text(g, m, b->text_ids, b->text_atts, NULL);
    out->image_feat = xv_model_image_feat(g, m, out->vision_embeds);
    out->text_feat = xv_model_text_feat(g, m, out->text_embeds);
    out->loss_itc = xv_itc_loss(g, m, out->image_feat, out->text_feat, b->idx, &out->sim_i2t);
    XV_TRY(xv_graph_status(g));
    XV_TRY(xv_itm_negative_tensors(g, out->sim_i2t, b->idx, b->rng, b->neg_image_idx, b->neg_text_idx, &out->neg_image_idx,
                            &out->neg_text_idx));
    out->loss_itm = xv_itm_loss(g, m, out->vision_embeds, NULL, out->text_embeds, b->text_atts, out->neg_image_idx,
                                out->neg_text_idx, &out->itm_cross_cls, &out->itm_logits);
    out->loss_total = xv_add(g, out->loss_itc, out->loss_itm);
    return xv_graph_status(g);
}

xv_status xv_bbox_pretrain_step(xv_graph *g, const xv_model *m, const xv_bbox_pretrain_batch *b,
                                xv_bbox_pretrain_out *out) {
    memset(out, 0, sizeof *out);
    XV_TRY(check_text(b->text_ids, b->text_atts, "box pretraining step"));
    if (!b->image || !b->idx_to_group_img || !b->target_bbox)
        return xv_error(XV_ERR_INVALID_ARG, "box pretraining step: image, idx_to_group_img and target_bbox are required");
    out->vision_embeds = xv_model_vision(g, m, b->image, NULL);
    xv_tensor *full = xv_gather_rows(g, out->vision_embeds, b->idx_to_group_img); /* full-image tokens per text */
    out->text_embeds = xv_model_text(g, m, b->text_ids, b->text_atts, NULL);
    out->bbox_pred = xv_bbox_predict(g, m, full, out->text_embeds, b->text_atts, &out->bbox_cross_cls);
    out->loss_bbox = xv_bbox_loss(g, out->bbox_pred, b->target_bbox, b->is_image, &out->loss_giou);
    out->loss_total = xv_add(g, out->loss_bbox, out->loss_giou);
    return xv_graph_status(g);
}
