#include "nn/layers.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

xv_status xv_nn_name(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) return xv_error(XV_ERR_INVALID_ARG, "parameter name too long: %.64s...", buf);
    return XV_OK;
}

xv_status xv_nn_linear_new(xv_params *p, xv_linear_p *l, const char *prefix, int in, int out, bool bias) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.weight", prefix));
    l->w = xv_params_add(p, name, XV_SHAPE(out, in));
    if (!l->w) return XV_ERR_NOMEM;
    l->b = NULL;
    if (bias) {
        XV_TRY(xv_nn_name(name, sizeof name, "%s.bias", prefix));
        l->b = xv_params_add(p, name, XV_SHAPE(out));
        if (!l->b) return XV_ERR_NOMEM;
    }
    return XV_OK;
}

xv_status xv_nn_ln_new(xv_params *p, xv_ln_p *l, const char *prefix, int n, float eps) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.weight", prefix));
    l->g = xv_params_add(p, name, XV_SHAPE(n));
    if (!l->g) return XV_ERR_NOMEM;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.bias", prefix));
    l->b = xv_params_add(p, name, XV_SHAPE(n));
    if (!l->b) return XV_ERR_NOMEM;
    l->eps = eps;
    return XV_OK;
}

xv_tensor *xv_nn_token(xv_graph *g, xv_tensor *x, int64_t t) {
    if (!x) return NULL;
    if (x->ndim != 3) return xv_graph_fail(g, XV_ERR_SHAPE, "token: expected [B, T, C], got rank %d", x->ndim);
    xv_tensor *s = xv_slice(g, x, 1, t, 1);
    return xv_reshape(g, s, XV_SHAPE(x->shape[0], x->shape[2]));
}

xv_tensor *xv_nn_key_mask(xv_graph *g, xv_tensor *mask, float value) {
    if (!mask) return NULL;
    if (mask->dtype != XV_I32 || mask->ndim != 2)
        return xv_graph_fail(g, XV_ERR_SHAPE, "key mask: expected an I32 [B, L] 0/1 mask");
    xv_tensor *out = xv_tensor_new(g, XV_F32, mask->shape, 2);
    if (!out) return NULL;
    for (int64_t i = 0; i < mask->numel; i++) out->data[i] = (1.0f - (float)mask->idata[i]) * value;
    return out;
}
