/* One X-VLM pretraining forward (the official models/model_pretrain.py):
 * image-text batches give ITC + ITM + MLM; region batches add region-pooled
 * vision features and the box losses (§5.5). */
#ifndef XV_MODEL_PRETRAIN_H
#define XV_MODEL_PRETRAIN_H

#include "data/pretrain_batch.h"
#include "model/losses.h"

#define XV_MAX_STAGE_OUT XV_SWIN_MAX_STAGES

/* ITM hard negatives: given (tests, the golden data), or drawn from the ITC
 * similarities with `rng` as the official torch.multinomial draw does. */
typedef struct {
    const int32_t *image_idx; /* [n_texts] negative image of each text; NULL = draw both */
    const int32_t *text_idx;  /* [n_texts] negative text of each image */
    xv_rng *rng;
} xv_itm_negatives;

typedef struct {
    xv_tensor *vision_embeds;          /* [N, 1+P, Cv] */
    xv_tensor *swin_stage[XV_MAX_STAGE_OUT]; /* each Swin stage's output, all N images */
    xv_tensor *region_vision_embeds;   /* region batch: [B, 1+P, Cv] */
    xv_tensor *vision_embeds_fullatts; /* region batch: [B, 1+P, Cv] */
    xv_tensor *text_embedding_output, *text_embeds; /* [B, L, H] */
    xv_tensor *image_feat, *text_feat; /* [B, E] */
    xv_tensor *sim_i2t;                /* [B, B] this rank's (the ITM negatives' source) */
    xv_tensor *sim_i2t_global;         /* [world·B, world·B] the ITC logits (= sim_i2t in one process) */
    xv_tensor *neg_image_idx, *neg_text_idx; /* the negatives used (I32 [B]) */
    xv_tensor *itm_cross_cls, *itm_logits; /* [3B, H], [3B, 2] */
    xv_tensor *mlm_logits;             /* [B, M, V] */
    xv_tensor *bbox_cross_cls, *bbox_pred; /* region batch with targets: [B, H], [B, 4] */
    xv_tensor *loss_itc, *loss_itm, *loss_mlm, *loss_bbox, *loss_giou, *loss_total; /* [1] */
} xv_pretrain_out;

/* The one validation of a pretraining batch and its negatives against the
 * model's config: sizes (res = image_res, text_len <= max_position_embeddings,
 * n_atts = 1 + patches, one image per text without idx_to_group_img), every
 * required array present, ids inside the vocabulary, masked_pos inside the
 * text, masked_ids a vocabulary id or -100, 0/1 masks, idx_to_group_img
 * inside the images, region masks selecting a patch, finite target boxes, a
 * box to average over, negatives inside the batch (or an RNG to draw them).
 * The message names the field, the entry and the problem. Images are not
 * scanned: a non-finite pixel gives a non-finite loss, which training skips. */
xv_status xv_pretrain_batch_check(const xv_model_config *cfg, const xv_pretrain_batch *b,
                                  const xv_itm_negatives *neg);

/* Checks the batch, clamps temp (pretraining rule), then runs the whole step
 * on g over tensors that borrow the batch's arrays (they must outlive g's use
 * of them). Training mode and gradient recording are the graph's settings. */
xv_status xv_pretrain_forward(xv_graph *g, xv_model *m, const xv_pretrain_batch *b, const xv_itm_negatives *neg,
                              xv_pretrain_out *out);

#endif
