/* Softmax (with an additive, broadcast mask) and log-softmax over the last dim. */
#include <math.h>

#include "ops/dense_internal.h"
#include "ops/fastmath.h"
#include "ops/ops.h"

void xv_dense_softmax_row(float *x, int64_t n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) {
        x[j] = xv_exp_f32(x[j] - mx);
        s += x[j];
    }
    float inv = 1.0f / s;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) x[j] *= inv;
}

void xv_dense_softmax_row_backward(const float *y, const float *dy, float *dx, int64_t n) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += y[j] * dy[j];
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dx[j] += y[j] * (dy[j] - dot);
}

/* dx += the gradient of one row of n from the output y and its gradient dy. */
typedef void (*row_backward_fn)(const float *y, const float *dy, float *dx, int64_t n);

/* The backward of a last-dim op whose rows are independent: row by row. */
static void rows_backward(xv_graph *g, xv_node *nd, row_backward_fn row) {
    xv_tensor *x = nd->in[0];
    float *dx = xv_grad(g, x);
    if (!dx) return;
    const float *y = nd->out->data, *dy = nd->out->grad;
    int64_t n = xv_last_dim(x), rows = xv_dense_rows(x);
#pragma omp parallel for schedule(static) if (x->numel > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) row(y + r * n, dy + r * n, dx + r * n, n);
}

/* ---------------------------------------------------------------- softmax */

static void softmax_backward(xv_graph *g, xv_node *nd) { rows_backward(g, nd, xv_dense_softmax_row_backward); }

xv_tensor *xv_softmax(xv_graph *g, xv_tensor *x, xv_tensor *mask_add) {
    static const char op[] = "xv_softmax";
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    if (mask_add && (!xv_dense_f32_arg(g, op, "mask_add", mask_add) ||
                     !xv_dense_suffix_shape(g, op, x, mask_add)))
        return NULL;
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
    int64_t n = xv_last_dim(x), rows = x->numel ? xv_dense_rows(x) : 0;
    int64_t mn = mask_add ? mask_add->numel : 0;
#pragma omp parallel for schedule(static) if (x->numel > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * n;
        float *yr = y->data + r * n;
        if (mask_add) {
            const float *mr = mask_add->data + (r * n) % mn;
#pragma omp simd
            for (int64_t j = 0; j < n; j++) yr[j] = xr[j] + mr[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < n; j++) yr[j] = xr[j];
        }
        xv_dense_softmax_row(yr, n);
    }
    xv_record(g, op, y, softmax_backward, &x, 1);
    return y;
}

/* ---------------------------------------------------------------- log-softmax */

/* dx = dy - softmax(x)·Σdy, with softmax(x) = exp(y). */
static void log_softmax_row_backward(const float *y, const float *dy, float *dx, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += dy[j];
    float sf = (float)s;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dx[j] += dy[j] - xv_exp_f32(y[j]) * sf;
}

static void log_softmax_backward(xv_graph *g, xv_node *nd) { rows_backward(g, nd, log_softmax_row_backward); }

xv_tensor *xv_log_softmax(xv_graph *g, xv_tensor *x) {
    static const char op[] = "xv_log_softmax";
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
    int64_t n = xv_last_dim(x), rows = xv_dense_rows(x);
#pragma omp parallel for schedule(static) if (x->numel > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * n;
        float *yr = y->data + r * n;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < n; j++) mx = xr[j] > mx ? xr[j] : mx;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < n; j++) s += xv_exp_f32(xr[j] - mx);
        float ls = (float)log(s);
#pragma omp simd
        for (int64_t j = 0; j < n; j++) yr[j] = (xr[j] - mx) - ls;
    }
    xv_record(g, op, y, log_softmax_backward, &x, 1);
    return y;
}
