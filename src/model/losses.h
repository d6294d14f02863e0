/* The X-VLM objectives (§5 of docs/architecture.md), as graph pieces. */
#ifndef XV_MODEL_LOSSES_H
#define XV_MODEL_LOSSES_H

#include "model/model.h"

/* ITC: logits = image_feat·text_featᵀ / temp ([B, B], rows images) into
 * *sim_out (optional); loss = ½[CE(logits) + CE(logitsᵀ)] with the diagonal as
 * targets, or with idx (I32 [B], same value = positive pair, fine-tuning) the
 * soft targets P/rowsum(P). */
xv_tensor *xv_itc_loss(xv_graph *g, const xv_model *m, xv_tensor *image_feat, xv_tensor *text_feat, xv_tensor *idx,
                       xv_tensor **sim_out);
/* The same loss in a data-parallel job (src/dist/): image_feat, text_feat
 * (and idx) of every rank are gathered in rank order and the loss runs over
 * the global batch of world·B pairs; the gather's backward sends each rank the
 * gradient of its own rows. *sim_out then gets this rank's own [B, B]
 * similarities (outside the loss: the ITM negatives' source), *global_out
 * (optional) the [world·B, world·B] logits of the loss. In one process both
 * are the same tensor. xv_itc_loss is this with global_out NULL. */
xv_tensor *xv_itc_loss_global(xv_graph *g, const xv_model *m, xv_tensor *image_feat, xv_tensor *text_feat,
                              xv_tensor *idx, xv_tensor **sim_out, xv_tensor **global_out);

/* Hard negatives as the official get_matching_loss draws them from the ITC
 * similarities sim_i2t [B·B] (already divided by temp): weights softmax + 1e-5,
 * zeroed on the diagonal (or where idx matches), one multinomial draw per row:
 * first neg_img[b] for every text b, then neg_txt[b] for every image b.
 * Needs B >= 2 (and, with idx, some other group in every row). */
xv_status xv_itm_sample_negatives(const float *sim_i2t, int B, const int32_t *idx, xv_rng *rng, int32_t *neg_img,
                                  int32_t *neg_txt);

/* The negatives of one step as graph tensors: *neg_img / *neg_txt get the
 * given ones (both or neither), or I32 [B] drawn from sim_i2t [B, B] by
 * xv_itm_sample_negatives with idx (I32 [B] or NULL) and rng. */
xv_status xv_itm_negative_tensors(xv_graph *g, const xv_tensor *sim_i2t, const xv_tensor *idx, xv_rng *rng,
                                  xv_tensor *given_img, xv_tensor *given_txt, xv_tensor **neg_img, xv_tensor **neg_txt);

/* ITM: positives (text b, image b), then (text b, image neg_img[b]), then
 * (text neg_txt[b], image b); fusion passes with each side's masks; itm_head
 * on token 0; CE with labels [1]·B + [0]·2B. Optional outputs: the fusion CLS
 * rows [3B, H] and the logits [3B, 2]. image_atts NULL = all visible. The
 * negative indices must lie in [0, B) (the pretraining batch check validates
 * given ones; drawn ones do; gather_rows refuses others). */
xv_tensor *xv_itm_loss(xv_graph *g, const xv_model *m, xv_tensor *image_embeds, xv_tensor *image_atts,
                       xv_tensor *text_embeds, xv_tensor *text_atts, xv_tensor *neg_img, xv_tensor *neg_txt,
                       xv_tensor **cross_cls_out, xv_tensor **logits_out);

/* MLM: masked ids through every layer (cross-attending to the image), hidden
 * states gathered at masked_pos I32 [B, M], MLM head, CE against masked_ids
 * I32 [B, M] ignoring -100. *logits_out (optional): [B, M, vocab]. Positions
 * must lie inside the text (validated with the batch: xv_pretrain_batch_check). */
xv_tensor *xv_mlm_loss(xv_graph *g, const xv_model *m, xv_tensor *ids_masked, xv_tensor *text_atts,
                       xv_tensor *image_embeds, xv_tensor *image_atts, xv_tensor *masked_pos, xv_tensor *masked_ids,
                       xv_tensor **logits_out);

/* Box prediction: fusion of the text states with full-image tokens (all
 * visible), bbox_head on token 0, sigmoid -> (cx, cy, w, h) [B, 4].
 * *cls_out (optional): the fusion CLS [B, H]. */
xv_tensor *xv_bbox_predict(xv_graph *g, const xv_model *m, xv_tensor *image_embeds_full, xv_tensor *text_embeds,
                           xv_tensor *text_atts, xv_tensor **cls_out);

/* Box losses: returns ΣL1 / n and sets *giou_out = Σ(1 - GIoU) / n, where with
 * is_image (I32 [B], 1 = whole-image text) those rows are excluded and
 * n = Σ(1 - is_image); without it n = B. is_image must be 0/1 with a 0
 * somewhere: xv_pretrain_batch_check refuses an all-whole-image batch, where
 * the official code would return 0/0. */
xv_tensor *xv_bbox_loss(xv_graph *g, xv_tensor *pred, xv_tensor *target, xv_tensor *is_image, xv_tensor **giou_out);

#endif
