/* From a Grad-CAM map to a proposal box: the per-expression part of the
 * official grounding_eval (dataset/utils.py; shared/docs/xvlm-nlvr-grounding.md
 * §3.4), used by the weak-grounding evaluation (tasks/eval_weak_grounding.h)
 * and by xvlm_ground_weak for a user's own proposals.
 *
 * The n×n map is upsampled to the original image size with PyTorch's bicubic
 * (align_corners False, a = −0.75, source coordinate not clamped, taps
 * clamped to the border); a proposal (x, y, w, h) in original pixels scores
 * Σ up[int(y) : int(y+h), int(x) : int(x+w)] / (w·h)^alpha with Python's int
 * (toward zero) and slice clipping, the area unclipped; the choice is a
 * running maximum from 0 with strict '>' (the first of equal scores wins). */
#ifndef XV_MODEL_GRADCAM_BOXES_H
#define XV_MODEL_GRADCAM_BOXES_H

#include <stdint.h>

/* The official box-score exponent (alpha of grounding_eval). */
#define XV_GRADCAM_BOX_ALPHA 0.5

/* in [ih, iw] -> out [oh, ow], torch F.interpolate(mode='bicubic',
 * align_corners=False) in float as its CPU kernel: each output row mixes 4
 * source rows, each first interpolated along x. Values may overshoot. */
void xv_upsample_bicubic_torch(const float *in, int ih, int iw, float *out, int oh, int ow);

/* Score of one proposal box (x, y, w, h) on the upsampled map up [H, W]. */
float xv_weak_box_score(const float *up, int H, int W, const double box[4], double alpha);

/* Index of the chosen score among scores[0 .. n): the first strict maximum
 * above 0; -1 when none is above 0 (the official loop then keeps the box of
 * the expression before). */
int xv_weak_choose(const float *scores, int n);

#endif
