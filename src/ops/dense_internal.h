/* Helpers shared by the dense ops (linear, elementwise, reductions, norms,
 * softmax, attention): argument checks that record the sticky graph error,
 * and the column sums that reduce gradients over broadcast rows. */
#ifndef XV_OPS_DENSE_INTERNAL_H
#define XV_OPS_DENSE_INTERNAL_H

#include "core/tensor.h"

/* Below this many elements an elementwise loop is not worth waking threads for. */
#define XV_DENSE_PAR_MIN 32768

/* True when `t` is a usable F32 tensor; otherwise records why (naming the op and
 * the argument) and returns false. A NULL input after an earlier failure keeps
 * that first error, so chained ops report the root cause. */
bool xv_dense_f32_arg(xv_graph *g, const char *op, const char *arg, const xv_tensor *t);

/* True when `b`'s shape equals the trailing dims of `a`'s (b broadcast over a's
 * leading dims); otherwise records a shape error naming the op. */
bool xv_dense_suffix_shape(xv_graph *g, const char *op, const xv_tensor *a, const xv_tensor *b);

/* out[j] += scale · sum_r x[r·cols + j]·y[r·cols + j]  (y NULL: the factor is 1).
 * Each column is summed in row order in double, whatever the thread count, so
 * the result is bitwise reproducible; threads split the columns into contiguous
 * slices (cache-friendly: each thread streams its own part of every row). */
void xv_dense_colsum(const float *x, const float *y, int64_t rows, int64_t cols, float scale,
                     float *out);
/* acc[j] += sum_r x[r·cols + j] in double, on the calling thread only (for
 * callers that are parallel themselves, or sum in pieces). */
void xv_dense_colsum_serial(const float *x, int64_t rows, int64_t cols, double *acc);

/* Inside a parallel region: the columns [*j0, *j1) this thread owns when
 * `cols` columns are split into contiguous slices a multiple of 16 wide. */
void xv_dense_column_slice(int64_t cols, int64_t *j0, int64_t *j1);

/* Product of all dims but the last (well defined when the last dim is 0,
 * unlike numel / last). */
static inline int64_t xv_dense_rows(const xv_tensor *t) { return xv_shape_numel(t->shape, t->ndim - 1); }

/* In place: x[0..n) <- softmax(x). */
void xv_dense_softmax_row(float *x, int64_t n);
/* dx[0..n) += y·(dy - <y, dy>) for y = softmax(x). */
void xv_dense_softmax_row_backward(const float *y, const float *dy, float *dx, int64_t n);

/* y[0..n) = GELU(x) = x·Φ(x), exact erf form (fastmath erf); y may be x. */
void xv_dense_gelu(const float *x, float *y, int64_t n);

/* A tensor of `like`'s shape (data uninitialised). */
xv_tensor *xv_dense_new_like(xv_graph *g, const xv_tensor *like);

#endif
