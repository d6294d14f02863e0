/* One pretraining batch as plain row-major arrays: what the data loader makes
 * (data/pretrain_data.h), the trainer passes on, `xvlm forward` reads from an
 * inputs file and the model's pretraining forward takes (model/pretrain.h),
 * with the official names of Pretrain.py's batch fields.
 *
 * It lives in data/ because data/ makes it and everything that consumes it
 * (model/, train/, cli/) sits above data/ in the layer order; it needs no
 * tensor type, so a loader never depends on the graph. The arrays are only
 * read by the consumers; whoever fills the struct owns them.
 *
 * It is validated once, where it enters the model (xv_pretrain_batch_check in
 * model/pretrain.h): the sizes against the model's config, every index range,
 * 0/1 masks and finite boxes; tensors are made from it there and nowhere else. */
#ifndef XV_DATA_PRETRAIN_BATCH_H
#define XV_DATA_PRETRAIN_BATCH_H

#include <stdint.h>

typedef struct {
    int n_images, res;
    float *image;             /* [n_images, 3, res, res], normalised */
    int n_texts, text_len, max_masks;
    int32_t *text_ids;        /* [n_texts, text_len] */
    int32_t *text_atts;       /* [n_texts, text_len] 1 = token, 0 = padding */
    int32_t *text_ids_masked; /* [n_texts, text_len] */
    int32_t *masked_pos;      /* [n_texts, max_masks] positions in the text, padded with 0 */
    int32_t *masked_ids;      /* [n_texts, max_masks] labels, -100 = padding slot */
    /* region batches (all NULL in an image-text batch, where n_images = n_texts): */
    int32_t *idx_to_group_img; /* [n_texts] the image of each text */
    int n_atts;                /* 1 + patches */
    int32_t *image_atts;       /* [n_texts, n_atts] 0/1 region mask; NULL = the whole image */
    float *target_bbox;        /* [n_texts, 4] (cx, cy, w, h) / res; NULL = no box losses */
    int32_t *is_image;         /* [n_texts] 1 = whole-image text, left out of the box losses; NULL = none */
} xv_pretrain_batch;

#endif
