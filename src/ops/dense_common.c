#include <omp.h>

#include "ops/dense_internal.h"

bool xv_dense_f32_arg(xv_graph *g, const char *op, const char *arg, const xv_tensor *t) {
    if (!t) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: input %s is NULL", op, arg);
        return false;
    }
    if (t->dtype != XV_F32 || !t->data) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: input %s must be an F32 tensor", op, arg);
        return false;
    }
    if (t->ndim < 1) {
        xv_graph_fail(g, XV_ERR_SHAPE, "%s: input %s must have at least one dim", op, arg);
        return false;
    }
    return true;
}

bool xv_dense_suffix_shape(xv_graph *g, const char *op, const xv_tensor *a, const xv_tensor *b) {
    bool ok = b->ndim <= a->ndim;
    for (int i = 0; ok && i < b->ndim; i++) ok = b->shape[i] == a->shape[a->ndim - b->ndim + i];
    if (!ok) {
        char sa[96], sb[96];
        xv_graph_fail(g, XV_ERR_SHAPE, "%s: shape %s is not %s or a suffix of it", op,
                      xv_shape_str(b, sb, sizeof sb), xv_shape_str(a, sa, sizeof sa));
    }
    return ok;
}

xv_tensor *xv_dense_new_like(xv_graph *g, const xv_tensor *like) {
    return xv_tensor_new(g, XV_F32, like->shape, like->ndim);
}

void xv_dense_column_slice(int64_t cols, int64_t *j0, int64_t *j1) {
    int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    int64_t w = (cols + nt - 1) / nt;
    w = (w + 15) / 16 * 16;
    *j0 = (int64_t)tid * w < cols ? (int64_t)tid * w : cols;
    *j1 = *j0 + w < cols ? *j0 + w : cols;
}

/* acc[j0..j1) += Σ_r x·y over the rows, row by row (in place: acc fits in L1). */
static void colsum_slice(const float *x, const float *y, int64_t rows, int64_t cols, int64_t j0, int64_t j1,
                         double *acc) {
    int64_t w = j1 - j0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols + j0;
        if (y) {
            const float *yr = y + r * cols + j0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++) acc[j] += (double)xr[j] * yr[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < w; j++) acc[j] += xr[j];
        }
    }
}

/* Threads only from 1M values: the pass is memory-bound and short, and a
 * fork/join can cost more than it saves on a busy machine. */
#define COLSUM_PAR(rows, cols) if ((rows) * (cols) > ((int64_t)1 << 20) && (cols) >= 32)

void xv_dense_colsum_serial(const float *x, int64_t rows, int64_t cols, double *acc) {
    colsum_slice(x, NULL, rows, cols, 0, cols, acc);
}

#define COLSUM_BLOCK 1024 /* double accumulators on the stack: each pass streams whole row slices */

void xv_dense_colsum(const float *x, const float *y, int64_t rows, int64_t cols, float scale,
                     float *out) {
#pragma omp parallel COLSUM_PAR(rows, cols)
    {
        int64_t j0, j1;
        xv_dense_column_slice(cols, &j0, &j1);
        double acc[COLSUM_BLOCK];
        for (int64_t jb = j0; jb < j1; jb += COLSUM_BLOCK) {
            int64_t w = j1 - jb < COLSUM_BLOCK ? j1 - jb : COLSUM_BLOCK;
            for (int64_t j = 0; j < w; j++) acc[j] = 0.0;
            colsum_slice(x, y, rows, cols, jb, jb + w, acc);
            for (int64_t j = 0; j < w; j++) out[jb + j] += (float)(scale * acc[j]);
        }
    }
}
