/* Full reductions to one value: xv_sum and xv_mean. */
#include "ops/dense_internal.h"
#include "ops/ops.h"

/* Sum in double over a fixed split into SUM_PARTS chunks, added in chunk order:
 * the same bits whatever the thread count (an OpenMP reduction would combine
 * partial sums in arrival order). */
#define SUM_PARTS 64

static double sum_double(const float *x, int64_t n) {
    double part[SUM_PARTS];
    int64_t len = (n + SUM_PARTS - 1) / SUM_PARTS;
#pragma omp parallel for schedule(static) if (n > XV_DENSE_PAR_MIN)
    for (int p = 0; p < SUM_PARTS; p++) {
        int64_t i0 = p * len < n ? p * len : n, i1 = i0 + len < n ? i0 + len : n;
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = i0; i < i1; i++) acc += x[i];
        part[p] = acc;
    }
    double s = 0;
    for (int p = 0; p < SUM_PARTS; p++) s += part[p];
    return s;
}

/* dx += dy[0] · factor, factor = 1 (sum) or 1/n (mean). */
static void reduce_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0];
    float *dx = xv_grad(g, x);
    if (!dx) return;
    float d = n->out->grad[0] * n->farg[0];
#pragma omp parallel for simd schedule(static) if (x->numel > XV_DENSE_PAR_MIN)
    for (int64_t i = 0; i < x->numel; i++) dx[i] += d;
}

static xv_tensor *reduce_op(xv_graph *g, const char *op, xv_tensor *x, bool mean) {
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    if (mean && x->numel == 0)
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: mean of an empty tensor", op);
    xv_tensor *y = xv_tensor_new(g, XV_F32, XV_SHAPE(1));
    if (!y) return NULL;
    double s = sum_double(x->data, x->numel);
    y->data[0] = (float)(mean ? s / (double)x->numel : s);
    xv_node *n = xv_record(g, op, y, reduce_backward, &x, 1);
    if (n) n->farg[0] = mean ? (float)(1.0 / (double)x->numel) : 1.0f;
    return y;
}

xv_tensor *xv_sum(xv_graph *g, xv_tensor *x) { return reduce_op(g, "xv_sum", x, false); }
xv_tensor *xv_mean(xv_graph *g, xv_tensor *x) { return reduce_op(g, "xv_mean", x, true); }
