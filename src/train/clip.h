/* Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (used by the
 * official apex accelerator with max_norm 1.0):
 *   n = sqrt(Σ over all parameters and elements of g²)
 *   c = max_norm / (n + 1e-6); if c < 1 every gradient is multiplied by c.
 * The norm is accumulated in double over fixed blocks summed in a fixed order,
 * so it is bitwise the same for any thread count. */
#ifndef XV_TRAIN_CLIP_H
#define XV_TRAIN_CLIP_H

#include "core/params.h"

/* Global L2 norm of every allocated parameter gradient (unique tensors only:
 * tied weights count once). */
double xv_grad_norm(const xv_params *params);

/* Clip in place; the norm before clipping goes to *norm_out (may be NULL).
 * A non-finite norm leaves the gradients unchanged and returns XV_ERR_NUMERIC,
 * so the caller can skip the update (what apex's dynamic loss scaling does on
 * overflow). */
xv_status xv_clip_grad_norm(xv_params *params, double max_norm, double *norm_out);
/* The clip without the scaling pass: *scale_out gets the factor
 * xv_clip_grad_norm would multiply every gradient by (1 when the norm is
 * within max_norm), for xv_adamw_step_scaled to apply in its own pass. Same
 * norm, same refusal of a non-finite norm (*scale_out is then 1). */
xv_status xv_clip_scale(const xv_params *params, double max_norm, double *norm_out, float *scale_out);

#endif
