/* Weighted mean over the token dim: the Swin image CLS (plain mean of the
 * final tokens) and the region CLS (mask-weighted mean, architecture §2.10). */
#include "ops/op_args.h"
#include "ops/ops.h"

typedef struct {
    const xv_tensor *w; /* NULL = every weight 1 */
    double *inv_den;    /* [B] 1 / sum_p w[b, p] */
} masked_mean_saved;

static void masked_mean_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    const masked_mean_saved *s = node->saved;
    int64_t B = x->shape[0], P = x->shape[1], C = x->shape[2];
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
    /* d r[b, c] / d x[b, p, c] = w[b, p] / sum_p w[b, p]. */
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t bp = 0; bp < B * P; bp++) {
        int64_t b = bp / P;
        float f = (float)((s->w ? s->w->data[bp] : 1.0) * s->inv_den[b]);
        float *d = gx + bp * C;
        const float *y = gy + b * C;
        for (int64_t c = 0; c < C; c++) d[c] += y[c] * f;
    }
}

xv_tensor *xv_masked_mean(xv_graph *g, xv_tensor *x, xv_tensor *w) {
    static const char op[] = "masked_mean";
    if (!xv_arg_f32(g, op, "x", x) || (w && !xv_arg_f32(g, op, "w", w))) return NULL;
    char bx[64], bw[64];
    if (x->ndim != 3)
        return xv_graph_fail(g, XV_ERR_SHAPE, "masked_mean: x must be [B, P, C], got %s",
                             xv_shape_str(x, bx, sizeof bx));
    int64_t B = x->shape[0], P = x->shape[1], C = x->shape[2];
    if (w && (w->ndim != 2 || w->shape[0] != B || w->shape[1] != P))
        return xv_graph_fail(g, XV_ERR_SHAPE, "masked_mean: w must be [B, P] = [%lld, %lld] for x %s, got %s",
                             (long long)B, (long long)P, xv_shape_str(x, bx, sizeof bx),
                             xv_shape_str(w, bw, sizeof bw));
    double *inv_den = xv_graph_alloc(g, sizeof(double) * (size_t)(B ? B : 1));
    if (!inv_den) return NULL;
    for (int64_t b = 0; b < B; b++) {
        double den = 0;
        for (int64_t p = 0; p < P; p++) den += w ? w->data[b * P + p] : 1.0;
        /* The official code would produce 0/0 = NaN here; say which row instead. */
        if (den == 0)
            return xv_graph_fail(g, XV_ERR_INVALID_ARG,
                                 "masked_mean: row %lld has zero total weight (an empty region mask)",
                                 (long long)b);
        inv_den[b] = 1.0 / den;
    }
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(B, C));
    double *acc = xv_graph_alloc(g, sizeof(double) * (size_t)(B * C > 0 ? B * C : 1));
    if (!out || !acc) return NULL;
    /* Sums in double: the result is within one float rounding of the exact
     * weighted mean (PyTorch's float sum / count is within a few). */
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t b = 0; b < B; b++) {
        double *a = acc + b * C;
        for (int64_t c = 0; c < C; c++) a[c] = 0;
        for (int64_t p = 0; p < P; p++) {
            double wp = w ? w->data[b * P + p] : 1.0;
            const float *xr = x->data + (b * P + p) * C;
            for (int64_t c = 0; c < C; c++) a[c] += wp * xr[c];
        }
        for (int64_t c = 0; c < C; c++) out->data[b * C + c] = (float)(a[c] * inv_den[b]);
    }
    const masked_mean_saved s = {.w = w, .inv_den = inv_den};
    return xv_record_saved(g, op, out, masked_mean_backward, &x, 1, &s, sizeof s) ? out : NULL;
}
