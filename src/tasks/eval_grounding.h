/* Box grounding evaluation, as the official Grounding_bbox.py scores a test
 * split (§9.2 of docs/architecture.md): each expression with its whole
 * image through the fusion encoder, bbox_head + sigmoid on [CLS], the box
 * scaled to the original image (x = cx·W − w·W/2, ...), correct when the
 * inclusive-pixel IoU with the ground truth is >= 0.5 (metrics.h).
 *
 * Each distinct image goes through the vision encoder once, each expression
 * through the text encoder once (batched). Under mpirun each rank grounds
 * its share of the expressions as DistributedSampler deals them (dist.h)
 * and every rank gets every result, in the set's order.
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

/* grounding_eval_bbox (dataset/utils.py): the fraction (0..1, not percent) of
 * expressions with IoU >= 0.5 in each REFER split of the set; expressions of
 * other splits count in none. A split without expressions gives NaN (the
 * official code divides by zero there). Without REFER (the VLUE format) every
 * expression is in `score` (grounding_eval_bbox_vlue). */
typedef struct {
    double val_d, testA_d, testB_d; /* Grounding_bbox.py's names */
    int64_t n_val, n_testA, n_testB;
    double score; /* all expressions: grounding_eval_bbox_vlue's "score" */
} xv_grounding_splits;

void xv_eval_grounding_splits(const xv_grounding_set *set, const xv_eval_grounding_result *r,
                              xv_grounding_splits *out);

/* The result file as collect_tensor_result collects it (val's
 * {'ref_id', 'pred'}), as JSON: [{"ref_id": int, "pred": [cx, cy, w, h]
 * relative to the image (the box head's output), "bbox": [x, y, w, h] pixels,
 * "iou": IoU with the ground truth}, ...], written atomically. */
xv_status xv_eval_grounding_write_results(const char *path, const xv_grounding_set *set,
                                          const xv_eval_grounding_result *r);

/* Grounding_bbox.py's val() + grounding_eval_bbox over test_file (the files
 * concatenated; refer NULL: boxes inline, VLUE): *out the full result,
 * *splits the official dict; results_path (NULL: none) gets the result file. */
xv_status xv_eval_grounding_files(xvlm_ctx *ctx, const char *const *files, int n_files, const xv_fs_root *images,
                                  const xv_refer *refer, const xv_eval_grounding_opts *opts, const char *results_path,
                                  xv_eval_grounding_result *out, xv_grounding_splits *splits);

#endif
