/* From Grad-CAM maps to boxes: the official grounding_eval of
 * dataset/utils.py (shared/docs/xvlm-nlvr-grounding.md §3.4), used by
 * weakly-supervised grounding (Grounding.py).
 *
 * Per expression: the n×n map is upsampled to the original image size with
 * PyTorch's bicubic (align_corners False, a = −0.75, source coordinate not
 * clamped, taps clamped to the border); every detector proposal (x, y, w, h)
 * in original pixels scores Σ up[int(y) : int(y+h), int(x) : int(x+w)] /
 * (w·h)^alpha with Python's int (toward zero) and slice clipping, the area
 * unclipped; the chosen box is a running maximum from 0 with strict '>' (the
 * first of equal scores wins; with no score > 0 the previous expression's box
 * is kept); correct when the inclusive-pixel IoU with the ground truth is
 * >= 0.5 (tasks/metrics.h); accuracy per split (val, testA, testB). */
#ifndef XV_TASKS_EVAL_WEAK_GROUNDING_H
#define XV_TASKS_EVAL_WEAK_GROUNDING_H

#include <stdint.h>

#include "core/error.h"
#include "model/gradcam_boxes.h"
#include "tasks/eval_data.h"
#include "tasks/refer.h"
#include "xvlm.h"

typedef enum { XV_SPLIT_VAL = 0, XV_SPLIT_TESTA = 1, XV_SPLIT_TESTB = 2, XV_N_SPLITS = 3 } xv_refcoco_split;

/* One expression to ground. */
typedef struct {
    const float *map;        /* [n, n] Grad-CAM map */
    int height, width;       /* original image size */
    const double (*dets)[4]; /* [n_dets] proposals (x, y, w, h), original pixels */
    int n_dets;
    double gt[4];            /* ground-truth box (x, y, w, h) */
    xv_refcoco_split split;
} xv_weak_ref;

typedef struct {
    float *box_scores;   /* [Σ n_dets] score of every proposal, expression by expression */
    int *chosen;         /* [n_refs] index of the chosen proposal (-1: kept the previous expression's box) */
    double (*box)[4];    /* [n_refs] the box used */
    double *iou;         /* [n_refs] */
    int *correct;        /* [n_refs] IoU >= 0.5 */
    double accuracy[XV_N_SPLITS]; /* val_d, testA_d, testB_d; NaN for a split without expressions
                                     (the official code divides by zero there) */
    /* what the numbers compare with (not official): */
    double random_accuracy[XV_N_SPLITS]; /* expected accuracy of a proposal drawn uniformly: the mean over the
                                            expressions of (proposals with IoU >= 0.5) / proposals */
    int *peak_in_box;  /* [n_refs] the upsampled map's maximum (first in row order) lies inside the true box */
    double *box_share; /* [n_refs] the true box's share of the image area (clipped to the image): the
                          chance that a peak drawn uniformly over the image falls inside */
} xv_weak_grounding_result;

/* Grounds refs[0 .. n_refs) in order (n: map side). upsampled (optional,
 * n_refs entries) gets each expression's upsampled map [height, width],
 * malloc'd: the caller frees the entries, also after an error (NULL where
 * none was made).
 * Errors: the first expression with no positive score (the official code
 * raises), bad sizes. */
xv_status xv_weak_grounding_eval(const xv_weak_ref *refs, int n_refs, int n, double alpha,
                                 xv_weak_grounding_result *out, float **upsampled);
void xv_weak_grounding_result_free(xv_weak_grounding_result *r);

/* ---- the whole evaluation (Grounding.py `val` + grounding_eval) ---- */

/* Every expression of `set` grounded among the proposals of its image in
 * `dets` (tasks/refer.h): the image id is REFER's (refer given: the entry's
 * ref_id names it), else the trailing number of the image's file name
 * (COCO_train2014_000000581000.jpg -> 581000, test_000012.jpg -> 12). The
 * REFER split decides val / testA / testB; without REFER every expression
 * counts in val. The map is xvlm_gradcam's at encoder layer `layer`, one
 * expression at a time (its scale differs from a padded batch's; the choice
 * does not); under mpirun each rank draws the maps of its share
 * (DistributedSampler's, dist.h) and every rank gets them all. out as
 * xv_weak_grounding_eval's. */
xv_status xv_eval_weak_grounding(xvlm_ctx *ctx, const xv_grounding_set *set, const xv_refer *refer,
                                 const xv_dets *dets, int layer, xv_weak_grounding_result *out);

#endif
