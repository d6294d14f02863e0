/* One X-VLM pretraining forward (the official models/model_pretrain.py):
 * image-text batches give ITC + ITM + MLM; region batches add region-pooled
 * vision features and the box losses (§5.5). */
#ifndef XV_MODEL_PRETRAIN_H
#define XV_MODEL_PRETRAIN_H

#include "model/losses.h"

#define XV_MAX_STAGE_OUT XV_SWIN_MAX_STAGES

typedef struct {
    xv_tensor *image;        /* F32 [N, 3, R, R]: one per text, or (region batch) one per distinct image */
    xv_tensor *text_ids;     /* I32 [B, L] */
    xv_tensor *text_atts;    /* I32 [B, L] 0/1 */
    xv_tensor *text_ids_masked; /* I32 [B, L] */
    xv_tensor *masked_pos;   /* I32 [B, M] */
    xv_tensor *masked_ids;   /* I32 [B, M], -100 = padding slot */
    /* region batch (all NULL for an image-text batch): */
    xv_tensor *image_atts;   /* I32 [B, 1+P] region masks */
    xv_tensor *idx_to_group_img; /* I32 [B] image of each text */
    xv_tensor *target_bbox;  /* F32 [B, 4] (cx, cy, w, h); NULL = no box loss */
    xv_tensor *is_image;     /* I32 [B] 1 = whole-image text (excluded from the box loss); may be NULL */
    /* ITM negatives; NULL = drawn from the ITC similarities with `rng` */
    xv_tensor *neg_image_idx; /* I32 [B] */
    xv_tensor *neg_text_idx;  /* I32 [B] */
    xv_rng *rng;
} xv_pretrain_batch;

typedef struct {
    xv_tensor *vision_embeds;          /* [N, 1+P, Cv] */
    xv_tensor *swin_stage[XV_MAX_STAGE_OUT]; /* each Swin stage's output, all N images */
    xv_tensor *region_vision_embeds;   /* region batch: [B, 1+P, Cv] */
    xv_tensor *vision_embeds_fullatts; /* region batch: [B, 1+P, Cv] */
    xv_tensor *text_embedding_output, *text_embeds; /* [B, L, H] */
    xv_tensor *image_feat, *text_feat; /* [B, E] */
    xv_tensor *sim_i2t;                /* [B, B] */
    xv_tensor *neg_image_idx, *neg_text_idx; /* the negatives used (I32 [B]) */
    xv_tensor *itm_cross_cls, *itm_logits; /* [3B, H], [3B, 2] */
    xv_tensor *mlm_logits;             /* [B, M, V] */
    xv_tensor *bbox_cross_cls, *bbox_pred; /* region batch with targets: [B, H], [B, 4] */
    xv_tensor *loss_itc, *loss_itm, *loss_mlm, *loss_bbox, *loss_giou, *loss_total; /* [1] */
} xv_pretrain_out;

/* Clamps temp (pretraining rule), then runs the whole step on g. Training mode
 * and gradient recording are the graph's settings. */
xv_status xv_pretrain_forward(xv_graph *g, xv_model *m, const xv_pretrain_batch *b, xv_pretrain_out *out);

#endif
