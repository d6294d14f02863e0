/* Parameter bundles shared by the Swin, BERT and head modules: a Linear and a
 * LayerNorm, created under official state_dict names (prefix.weight / prefix.bias). */
#ifndef XV_NN_LAYERS_H
#define XV_NN_LAYERS_H

#include "core/params.h"
#include "ops/ops.h"

typedef struct {
    xv_tensor *w; /* [out, in] */
    xv_tensor *b; /* [out] or NULL */
} xv_linear_p;

typedef struct {
    xv_tensor *g, *b; /* [n] */
    float eps;
} xv_ln_p;

/* Add `prefix.weight` [out, in] (and `prefix.bias` [out] when `bias`). */
xv_status xv_nn_linear_new(xv_params *p, xv_linear_p *l, const char *prefix, int in, int out, bool bias);
/* Add `prefix.weight` and `prefix.bias`, both [n]. */
xv_status xv_nn_ln_new(xv_params *p, xv_ln_p *l, const char *prefix, int n, float eps);

static inline xv_tensor *xv_nn_linear(xv_graph *g, const xv_linear_p *l, xv_tensor *x) {
    return xv_linear(g, x, l->w, l->b);
}
/* gelu(linear(x)), fused when nothing is recorded (xv_linear_gelu). */
static inline xv_tensor *xv_nn_linear_gelu(xv_graph *g, const xv_linear_p *l, xv_tensor *x) {
    return xv_linear_gelu(g, x, l->w, l->b);
}
/* linear(x) + res, fused when nothing is recorded (xv_linear_add). */
static inline xv_tensor *xv_nn_linear_add(xv_graph *g, const xv_linear_p *l, xv_tensor *x, xv_tensor *res) {
    return xv_linear_add(g, x, l->w, l->b, res);
}
static inline xv_tensor *xv_nn_ln(xv_graph *g, const xv_ln_p *l, xv_tensor *x) {
    return xv_layernorm(g, x, l->g, l->b, l->eps);
}

/* "%s.%s"-style name building into a caller buffer; fails on truncation. */
xv_status xv_nn_name(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* x[B, T, C] -> x[:, t, :] as [B, C]. */
xv_tensor *xv_nn_token(xv_graph *g, xv_tensor *x, int64_t t);

/* Additive key mask from an I32 0/1 mask [B, L]: (1 - m)·value, F32 [B, L]
 * (value -10000 for text padding, -1e9 for image tokens, as the official code). */
xv_tensor *xv_nn_key_mask(xv_graph *g, xv_tensor *mask, float value);

#endif
