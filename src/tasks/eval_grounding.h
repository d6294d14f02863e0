/* Box grounding evaluation, as the official Grounding_bbox.py scores a test
 * split (§9.2 of docs/architecture.md): each expression with its whole
 * image through the fusion encoder, bbox_head + sigmoid on [CLS], the box
 * scaled to the original image (x = cx·W − w·W/2, ...), correct when the
 * inclusive-pixel IoU with the ground truth is >= 0.5 (metrics.h).
 *
 * Each distinct image goes through the vision encoder once, each expression
 * through the text encoder once (batched).
 *
 * Next to the model, the baseline that always predicts the mean training box
 * (relative coordinates, scaled to each test image) is scored the same way. */
#ifndef XV_TASKS_EVAL_GROUNDING_H
#define XV_TASKS_EVAL_GROUNDING_H

#include <stdint.h>

#include "tasks/eval_data.h"
#include "tasks/eval_retrieval.h"
#include "api/api_internal.h"

typedef struct {
    int max_words;   /* pre_caption cap: 30; no token cap beyond the model's positions (as Grounding_bbox.py) */
    int image_batch; /* images per vision pass: 16 */
    int pair_chunk;  /* expressions per call between progress reports: 256 */
    xv_eval_progress_fn progress; /* stages "images", "texts", "boxes"; NULL: silent */
    void *user;
} xv_eval_grounding_opts;

xv_eval_grounding_opts xv_eval_grounding_opts_default(void);

typedef struct {
    int64_t n;
    double accuracy;          /* percent of expressions with IoU >= 0.5 */
    double mean_iou;
    int has_baseline;
    double baseline_box[4];   /* relative (x, y, w, h) */
    double baseline_accuracy; /* percent */
    double baseline_mean_iou;
    double (*pred)[4];        /* [n] predicted (x, y, w, h) in pixels of the original image */
    double *iou;              /* [n] */
    int (*size)[2];           /* [n] original width, height of the expression's image */
    double seconds_images, seconds_texts, seconds_boxes;
} xv_eval_grounding_result;

/* mean_box (relative x, y, w, h, as xv_grounding_mean_box gives it) may be
 * NULL: no baseline. */
xv_status xv_eval_grounding(xvlm_ctx *ctx, const xv_grounding_set *set, const double *mean_box,
                            const xv_eval_grounding_opts *opts, xv_eval_grounding_result *out);
void xv_eval_grounding_result_free(xv_eval_grounding_result *r);

#endif
