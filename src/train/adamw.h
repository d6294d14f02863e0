/* AdamW exactly as transformers 4.12.5 (the optimiser the official optim.py
 * builds), with the official four parameter groups.
 *
 * Per parameter with a gradient, per update (state step t counted per parameter):
 *   m = β1·m + (1−β1)·g
 *   v = β2·v + (1−β2)·g²
 *   p = p − s·m/(√v + eps),   s = lr·√(1−β2^t)/(1−β1^t)   (eps on the uncorrected √v)
 *   p = p − lr·wd·p           (decoupled decay on the already-updated p; decay groups only)
 * Element arithmetic is fp32 like the PyTorch kernels; s, lr and lr·wd are
 * computed in double like the Python code and rounded once.
 *
 * Groups (same indices as optim.py, so group 0 is "lr" and group 2 "lr_large"):
 *   0 {decay, lr}  1 {no decay, lr}  2 {decay, lr·lr_mult}  3 {no decay, lr·lr_mult}
 * Parameters with requires_grad off are left out (frozen), as in optim.py;
 * parameters whose grad buffer was never allocated are skipped by a step, as
 * PyTorch skips `p.grad is None`. */
#ifndef XV_TRAIN_ADAMW_H
#define XV_TRAIN_ADAMW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/params.h"
#include "train/param_groups.h"

typedef struct {
    double lr;           /* base learning rate (pretraining 1e-4) */
    double weight_decay; /* 0.01 */
    double lr_mult;      /* factor for init_params (pretraining 2; optim.py default 1) */
    double beta1, beta2; /* 0.9, 0.98 */
    double eps;          /* 1e-8 */
    bool correct_bias;   /* true */
} xv_adamw_config;

/* The pretraining values (configs/Pretrain_XVLM_base_*.yaml + optim.py). */
xv_adamw_config xv_adamw_default(void);

#define XV_ADAMW_GROUPS 4

typedef struct {
    xv_tensor *param;
    float *m, *v;  /* exp_avg, exp_avg_sq (numel each) */
    int64_t step;  /* updates taken by this parameter */
    int group;     /* 0..3 as above */
} xv_adamw_slot;

typedef struct {
    xv_adamw_config cfg;
    double group_lr[XV_ADAMW_GROUPS]; /* base lr per group (before the schedule) */
    double group_wd[XV_ADAMW_GROUPS];
    xv_adamw_slot *slots;
    int n;
} xv_adamw;

/* Groups every trainable parameter of `params` by name. `large_lr` may be NULL
 * (no init_params). The optimiser keeps pointers to the tensors: `params` must
 * outlive it. */
xv_status xv_adamw_init(xv_adamw *opt, xv_params *params, const xv_adamw_config *cfg,
                        const xv_init_params *large_lr);
void xv_adamw_free(xv_adamw *opt);

/* Learning rate of a group at schedule factor λ: base_lr_group · λ (LambdaLR). */
double xv_adamw_group_lr(const xv_adamw *opt, int group, double lr_factor);

/* One update with learning rates group_lr · lr_factor (λ of the schedule).
 * Fails (changing nothing) on a non-finite lr_factor. */
xv_status xv_adamw_step(xv_adamw *opt, double lr_factor);
/* The same update on gradients multiplied by grad_scale first (the clip's
 * coefficient, xv_clip_scale): the gradients are scaled in place and used in
 * the same pass over memory, bitwise what xv_clip_grad_norm followed by
 * xv_adamw_step computes. Fails on a scale that is not finite and > 0. */
xv_status xv_adamw_step_scaled(xv_adamw *opt, double lr_factor, float grad_scale);

/* Slot of a parameter by name (NULL if not optimised). */
xv_adamw_slot *xv_adamw_find(xv_adamw *opt, const char *name);

#endif
