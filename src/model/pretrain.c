#include "model/pretrain.h"

#include <string.h>

/* The batch's tensors: graph tensors borrowing its arrays (not copied; the
 * forward only reads its inputs). The one place a batch becomes tensors. */
typedef struct {
    xv_tensor *image, *text_ids, *text_atts, *text_ids_masked, *masked_pos, *masked_ids;
    xv_tensor *idx_to_group_img, *image_atts, *target_bbox, *is_image; /* NULL where the batch has none */
    xv_tensor *neg_image_idx, *neg_text_idx;                           /* NULL = drawn */
} batch_tensors;

static xv_tensor *wrap_i32(xv_graph *g, const int32_t *v, const int64_t *shape, int ndim) {
    return v ? xv_tensor_wrap_i32(g, (int32_t *)v, shape, ndim) : NULL;
}

static xv_status wrap_batch(xv_graph *g, const xv_pretrain_batch *b, const xv_itm_negatives *neg, batch_tensors *t) {
    const int64_t B = b->n_texts, L = b->text_len, M = b->max_masks;
    *t = (batch_tensors){
        .image = xv_tensor_wrap_f32(g, b->image, XV_SHAPE(b->n_images, 3, b->res, b->res)),
        .text_ids = wrap_i32(g, b->text_ids, XV_SHAPE(B, L)),
        .text_atts = wrap_i32(g, b->text_atts, XV_SHAPE(B, L)),
        .text_ids_masked = wrap_i32(g, b->text_ids_masked, XV_SHAPE(B, L)),
        .masked_pos = wrap_i32(g, b->masked_pos, XV_SHAPE(B, M)),
        .masked_ids = wrap_i32(g, b->masked_ids, XV_SHAPE(B, M)),
        .idx_to_group_img = wrap_i32(g, b->idx_to_group_img, XV_SHAPE(B)),
        .image_atts = wrap_i32(g, b->image_atts, XV_SHAPE(B, b->n_atts)),
        .target_bbox = b->target_bbox ? xv_tensor_wrap_f32(g, b->target_bbox, XV_SHAPE(B, 4)) : NULL,
        .is_image = wrap_i32(g, b->is_image, XV_SHAPE(B)),
        .neg_image_idx = wrap_i32(g, neg->image_idx, XV_SHAPE(B)),
        .neg_text_idx = wrap_i32(g, neg->text_idx, XV_SHAPE(B)),
    };
    return xv_graph_status(g);
}

static xv_tensor *add_loss(xv_graph *g, xv_tensor *total, xv_tensor *term) {
    return total ? xv_add(g, total, term) : term;
}

xv_status xv_pretrain_forward(xv_graph *g, xv_model *m, const xv_pretrain_batch *batch, const xv_itm_negatives *neg,
                              xv_pretrain_out *out) {
    memset(out, 0, sizeof *out);
    XV_TRY(xv_pretrain_batch_check(&m->cfg, batch, neg));
    batch_tensors t;
    XV_TRY(wrap_batch(g, batch, neg, &t));
    xv_model_clamp_temp(m);

    out->vision_embeds = xv_model_vision(g, m, t.image, out->swin_stage);
    xv_tensor *image_embeds = out->vision_embeds, *image_atts = NULL, *full = NULL;
    if (t.idx_to_group_img && t.image_atts) {
        image_embeds = xv_model_region(g, m, out->vision_embeds, t.image_atts, t.idx_to_group_img, &full);
        image_atts = t.image_atts;
        out->region_vision_embeds = image_embeds;
        out->vision_embeds_fullatts = full;
    } else if (t.idx_to_group_img) { /* full images gathered per text, all tokens visible */
        image_embeds = full = xv_gather_rows(g, out->vision_embeds, t.idx_to_group_img);
        out->vision_embeds_fullatts = full;
    }
    out->text_embeds = xv_model_text(g, m, t.text_ids, t.text_atts, &out->text_embedding_output);
    out->image_feat = xv_model_image_feat(g, m, image_embeds);
    out->text_feat = xv_model_text_feat(g, m, out->text_embeds);
    out->loss_itc = xv_itc_loss_global(g, m, out->image_feat, out->text_feat, NULL, &out->sim_i2t,
                                       &out->sim_i2t_global);
    XV_TRY(xv_graph_status(g));

    XV_TRY(xv_itm_negative_tensors(g, out->sim_i2t, NULL, neg->rng, t.neg_image_idx, t.neg_text_idx,
                                   &out->neg_image_idx, &out->neg_text_idx));
    out->loss_itm = xv_itm_loss(g, m, image_embeds, image_atts, out->text_embeds, t.text_atts, out->neg_image_idx,
                                out->neg_text_idx, &out->itm_cross_cls, &out->itm_logits);
    out->loss_mlm = xv_mlm_loss(g, m, t.text_ids_masked, t.text_atts, image_embeds, image_atts, t.masked_pos,
                                t.masked_ids, &out->mlm_logits);
    xv_tensor *total = add_loss(g, add_loss(g, out->loss_itc, out->loss_itm), out->loss_mlm);
    if (t.target_bbox) {
        out->bbox_pred = xv_bbox_predict(g, m, full, out->text_embeds, t.text_atts, &out->bbox_cross_cls);
        out->loss_bbox = xv_bbox_loss(g, out->bbox_pred, t.target_bbox, t.is_image, &out->loss_giou);
        total = add_loss(g, add_loss(g, total, out->loss_bbox), out->loss_giou);
    }
    out->loss_total = total;
    return xv_graph_status(g);
}
