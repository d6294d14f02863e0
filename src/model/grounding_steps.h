/* The training steps of the two grounding recipes besides Grounding_bbox
 * (shared/docs/xvlm-nlvr-grounding.md §3.2 and §4):
 *
 * - weak supervision (Grounding.py, models/model_retrieval.py): no boxes; the
 *   retrieval loss ITC + ITM where the "label" idx is an image index, so all
 *   expressions of one image are positives of each other (ITC soft targets,
 *   ITM negatives drawn outside the same idx). temp is not clamped.
 * - box domain pretraining (Grounding_bbox_pretrain.py,
 *   models/model_bbox_pretrain.py): region texts fused with the full-image
 *   tokens of their image (never the region masks), bbox_head + sigmoid, box
 *   L1 + GIoU averaged over the texts that are not whole-image captions. */
#ifndef XV_MODEL_GROUNDING_STEPS_H
#define XV_MODEL_GROUNDING_STEPS_H

#include "model/losses.h"

typedef struct {
    xv_tensor *image;     /* F32 [B, 3, R, R]: one per expression */
    xv_tensor *text_ids;  /* I32 [B, L] */
    xv_tensor *text_atts; /* I32 [B, L] */
    xv_tensor *idx;       /* I32 [B]: image index of each expression */
    /* ITM negatives I32 [B]; NULL: drawn with rng outside the same idx */
    xv_tensor *neg_image_idx, *neg_text_idx;
    xv_rng *rng;
} xv_weak_grounding_batch;

typedef struct {
    xv_tensor *vision_embeds, *text_embeds;
    xv_tensor *image_feat, *text_feat;       /* [B, E] */
    xv_tensor *sim_i2t;                      /* [B, B] */
    xv_tensor *neg_image_idx, *neg_text_idx; /* the negatives used */
    xv_tensor *itm_cross_cls, *itm_logits;   /* [3B, H], [3B, 2] */
    xv_tensor *loss_itc, *loss_itm, *loss_total;
} xv_weak_grounding_out;

/* Needs parts.itc and parts.itm. */
xv_status xv_weak_grounding_step(xv_graph *g, const xv_model *m, const xv_weak_grounding_batch *b,
                                 xv_weak_grounding_out *out);

typedef struct {
    xv_tensor *image;            /* F32 [N, 3, R, R]: the distinct images */
    xv_tensor *text_ids;         /* I32 [B, L] */
    xv_tensor *text_atts;        /* I32 [B, L] */
    xv_tensor *idx_to_group_img; /* I32 [B]: image row of each text */
    xv_tensor *target_bbox;      /* F32 [B, 4] (cx, cy, w, h) normalised */
    xv_tensor *is_image;         /* I32 [B]: 1 = whole-image caption (no box loss); NULL: none */
} xv_bbox_pretrain_batch;

typedef struct {
    xv_tensor *vision_embeds;   /* [N, 1+P, Cv] */
    xv_tensor *text_embeds;     /* [B, L, H] */
    xv_tensor *bbox_cross_cls;  /* [B, H] */
    xv_tensor *bbox_pred;       /* [B, 4] */
    xv_tensor *loss_bbox, *loss_giou, *loss_total;
} xv_bbox_pretrain_out;

/* Needs parts.bbox. */
xv_status xv_bbox_pretrain_step(xv_graph *g, const xv_model *m, const xv_bbox_pretrain_batch *b,
                                xv_bbox_pretrain_out *out);

#endif
