/* xv_linear and xv_bmm. The Linear forward goes to xv_gemm_linear (oneDNN
 * matmul with the bias fused, or OpenBLAS with bias rows and beta = 1), or to
 * xv_gemm_linear_bf16 for a weight converted to bf16 at load; its backward
 * products to xv_gemm_product on the same backend; every other product to
 * cblas_sgemm, gradients accumulating with beta = 1. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "ops/dense_internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------- linear */

/* Backward threads on OpenBLAS (oneDNN threads each whole product itself): a
 * tall product is split by rows into one contiguous block per thread, each
 * running single-threaded BLAS, all inside one parallel region. On this project's shared 2-core machines every fork/join can cost
 * a scheduler time slice, so one region per op matters as much as the
 * arithmetic. Shorter products use BLAS's own threads instead: from 1024 rows
 * per thread, since each extra thread then sums a private dW that costs a
 * pass over out x in floats. (The forward: ops/gemm.c.) */
#define BWD_SPLIT_ROWS 1024
/* Within a thread's block the backward runs in steps of 1024 rows: each slice of dY is
 * read by the dX and dW products and then by db's column sum while it is still
 * in cache, where one more pass over a large dY would stream it from memory
 * (Swin-B stage 1 qkv backward, one thread: 0.95 of raw sgemm with steps, 0.90
 * without; bench/bench_linear.c). */
#define BWD_STEP_ROWS 1024

static bool split_rows(int64_t rows, int64_t rows_per_thread) {
    return rows >= (int64_t)omp_get_max_threads() * rows_per_thread;
}

/* This thread's block of rows, [*r0, *r1). */
static void row_block(int64_t rows, int64_t *r0, int64_t *r1) {
    int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    *r0 = rows * tid / nt;
    *r1 = rows * (tid + 1) / nt;
}

/* Gradients of rows [r0, r1) in steps of `step` rows: dx += dY·W (= when
 * `dx_fresh`); dw += dYᵀ·X (overwritten first when `dw_fresh`); db_acc +=
 * column sums of dY (if given). */
static void backward_rows(const float *dy, const float *x, const float *w, float *dx, bool dx_fresh, float *dw,
                          bool dw_fresh, double *db_acc, int64_t r0, int64_t r1, int64_t step, int in, int out) {
    for (int64_t s0 = r0; s0 < r1; s0 += step) {
        int m = (int)(r1 - s0 < step ? r1 - s0 : step);
        const float *dys = dy + s0 * out;
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, in, out, 1.0f, dys, out, w, in, dx_fresh ? 0.0f : 1.0f,
                        dx + s0 * in, in);
        if (dw)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, m, 1.0f, dys, out, x + s0 * in, in,
                        dw_fresh && s0 == r0 ? 0.0f : 1.0f, dw, in);
        if (db_acc) xv_dense_colsum_serial(dys, m, out, db_acc);
    }
}

static void linear_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const float *dy = n->out->grad;
    int64_t rows = n->iarg[0];
    int in = (int)n->iarg[1], out = (int)n->iarg[2];
    if (rows == 0 || out == 0) return; /* empty product: every gradient is zero */
    bool dx_fresh = false; /* first writer of dx: the product overwrites it */
    float *dx = in > 0 && x->requires_grad ? xv_grad_for_write(g, x, &dx_fresh) : NULL;
    float *dw = in > 0 && w->requires_grad ? xv_grad(g, w) : NULL;
    float *db = b && b->requires_grad ? xv_grad(g, b) : NULL;
    if (!strcmp(xv_gemm_backend(), "onednn") || !split_rows(rows, BWD_SPLIT_ROWS)) {
        /* Two threaded products over all rows (oneDNN reads dYᵀ in place), then db in one pass. */
        if (xv_graph_status(g) != XV_OK) return;
        if (dx && !xv_gemm_product(g, false, false, rows, in, out, dy, w->data, !dx_fresh, dx)) return;
        if (dw && !xv_gemm_product(g, true, false, out, in, rows, dy, x->data, true, dw)) return;
        if (db) xv_dense_colsum(dy, NULL, rows, out, 1.0f, db);
        return;
    }
    /* Thread t > 0 sums its dW into a private buffer, thread 0 straight into dw;
     * after the barrier the buffers are added in thread order (bitwise stable
     * for a given thread count). */
    int T = omp_get_max_threads();
    int64_t wn = (int64_t)out * in;
    float *dw_parts = dw ? xv_graph_alloc(g, sizeof(float) * (size_t)((T - 1) * wn)) : NULL;
    double *db_parts = db ? xv_graph_calloc(g, sizeof(double) * (size_t)(T * out)) : NULL;
    if (xv_graph_status(g) != XV_OK) return;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t r0, r1;
        row_block(rows, &r0, &r1);
        float *my_dw = dw && tid > 0 ? dw_parts + (tid - 1) * wn : dw;
        if (my_dw && tid > 0 && r1 == r0) memset(my_dw, 0, sizeof(float) * (size_t)wn);
        backward_rows(dy, x->data, w->data, dx, dx_fresh, my_dw, tid > 0, db ? db_parts + tid * out : NULL, r0, r1,
                      BWD_STEP_ROWS, in, out);
#pragma omp barrier
        if (dw) {
#pragma omp for schedule(static)
            for (int64_t e = 0; e < wn; e++)
                for (int t = 1; t < nt; t++) dw[e] += dw_parts[(t - 1) * wn + e];
        }
        if (db) {
#pragma omp for schedule(static)
            for (int j = 0; j < out; j++) {
                double s = 0;
                for (int t = 0; t < nt; t++) s += db_parts[t * out + j];
                db[j] += (float)s;
            }
        }
    }
}

/* act(x·Wᵀ + b) + res after checking the arguments (not recorded; res may be NULL). */
static xv_tensor *linear_forward(xv_graph *g, const char *op, xv_tensor *x, xv_tensor *w, xv_tensor *b,
                                 xv_gemm_act act, xv_tensor *res) {
    if (!g || !xv_dense_f32_arg(g, op, "x", x) || !xv_dense_f32_arg(g, op, "w", w)) return NULL;
    if (b && !xv_dense_f32_arg(g, op, "b", b)) return NULL;
    int64_t in = xv_last_dim(x), rows = xv_dense_rows(x);
    char sx[96], sw[96];
    if (w->ndim != 2 || w->shape[1] != in)
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: weight %s does not fit input %s (want [out, %lld])",
                             op, xv_shape_str(w, sw, sizeof sw), xv_shape_str(x, sx, sizeof sx),
                             (long long)in);
    int64_t out = w->shape[0];
    if (b && (b->ndim != 1 || b->shape[0] != out))
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: bias %s does not fit weight %s (want [%lld])", op,
                             xv_shape_str(b, sx, sizeof sx), xv_shape_str(w, sw, sizeof sw),
                             (long long)out);
    if (rows > INT32_MAX || in > INT32_MAX || out > INT32_MAX)
        return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "%s: dims beyond 32-bit BLAS indices", op);
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out;
    xv_tensor *y = xv_tensor_new(g, XV_F32, shape, x->ndim);
    if (!y) return NULL;
    if (res && (!xv_dense_f32_arg(g, op, "res", res) || !xv_same_shape(res, y)))
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: residual %s is not the output's shape", op,
                             res ? xv_shape_str(res, sx, sizeof sx) : "NULL");
    if (rows > 0 && out > 0) {
        xv_gemm_epilogue ep = {b ? b->data : NULL, act, res ? res->data : NULL};
        if (in > 0) {
            /* A weight with a bf16 copy (--precision bf16) is read as bf16; gradients stay fp32. */
            bool ok = w->bf16 ? xv_gemm_linear_bf16(g, x->data, w->bf16, &ep, y->data, rows, in, out)
                              : xv_gemm_linear(g, x->data, w->data, &ep, y->data, rows, in, out);
            if (!ok) return NULL;
        } else {
            for (int64_t r = 0; r < rows; r++) /* empty product: the bias alone */
                if (b) memcpy(y->data + r * out, b->data, sizeof(float) * (size_t)out);
                else memset(y->data + r * out, 0, sizeof(float) * (size_t)out);
            if (act == XV_GEMM_GELU) xv_dense_gelu(y->data, y->data, y->numel);
            for (int64_t i = 0; res && i < y->numel; i++) y->data[i] += res->data[i];
        }
    }
    return y;
}

xv_tensor *xv_linear(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b) {
    xv_tensor *y = linear_forward(g, "xv_linear", x, w, b, XV_GEMM_PLAIN, NULL);
    xv_tensor *ins[3] = {x, w, b};
    xv_node *n = xv_record(g, "xv_linear", y, linear_backward, ins, 3);
    if (n) {
        n->iarg[0] = xv_dense_rows(x);
        n->iarg[1] = xv_last_dim(x);
        n->iarg[2] = w->shape[0];
    }
    return y;
}

xv_tensor *xv_linear_gelu(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b) {
    xv_tensor *ins[3] = {x, w, b};
    /* Backward needs the pre-activation: record the two ops. */
    if (g && xv_needs_grad(g, ins, 3)) return xv_gelu(g, xv_linear(g, x, w, b));
    return linear_forward(g, "xv_linear_gelu", x, w, b, XV_GEMM_GELU, NULL);
}

xv_tensor *xv_linear_add(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b, xv_tensor *res) {
    xv_tensor *ins[4] = {x, w, b, res};
    /* Recording: the two ops (the residual's gradient is the output's). */
    if (g && xv_needs_grad(g, ins, 4)) return xv_add(g, xv_linear(g, x, w, b), res);
    return linear_forward(g, "xv_linear_add", x, w, b, XV_GEMM_PLAIN, res);
}

/* ---------------------------------------------------------------- bmm */

typedef struct {
    int64_t batch;
    int m, n, k;
    bool ta, tb;
    float alpha;
} bmm_dims;

/* C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i] for every batch i. With at least as
 * many batches as threads, each thread runs whole (single-threaded) GEMMs;
 * otherwise the batches run in turn and BLAS threads each one. */
static void gemm_batched(int64_t batch, bool ta, bool tb, int m, int n, int k, float alpha,
                         const float *a, int lda, int64_t sa, const float *b, int ldb, int64_t sb,
                         float beta, float *c, int ldc, int64_t sc) {
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
#pragma omp parallel for schedule(static) if (batch > 1 && batch >= omp_get_max_threads())
    for (int64_t i = 0; i < batch; i++)
        cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,
                    c + i * sc, ldc);
}

static void bmm_backward(xv_graph *g, xv_node *nd) {
    xv_tensor *A = nd->in[0], *B = nd->in[1];
    const bmm_dims *d = nd->saved;
    const float *dc = nd->out->grad;
    int m = d->m, n = d->n, k = d->k;
    int64_t sa = (int64_t)m * k, sb = (int64_t)k * n, sc = (int64_t)m * n;
    if (sa == 0 || sb == 0 || sc == 0) return; /* empty product: every gradient is zero */
    /* Stored layouts: A is [m,k] (or [k,m] if ta), B is [k,n] (or [n,k] if tb), C is [m,n]. */
    if (A->requires_grad) {
        float *da = xv_grad(g, A);
        if (!da) return;
        if (!d->ta) /* dA[m,k] = alpha·dC·op(B)ᵀ */
            gemm_batched(d->batch, false, !d->tb, m, k, n, d->alpha, dc, n, sc, B->data, d->tb ? k : n,
                         sb, 1.0f, da, k, sa);
        else /* dA[k,m] = alpha·op(B)·dCᵀ */
            gemm_batched(d->batch, d->tb, true, k, m, n, d->alpha, B->data, d->tb ? k : n, sb, dc, n,
                         sc, 1.0f, da, m, sa);
    }
    if (B->requires_grad) {
        float *db = xv_grad(g, B);
        if (!db) return;
        if (!d->tb) /* dB[k,n] = alpha·op(A)ᵀ·dC */
            gemm_batched(d->batch, !d->ta, false, k, n, m, d->alpha, A->data, d->ta ? m : k, sa, dc, n,
                         sc, 1.0f, db, n, sb);
        else /* dB[n,k] = alpha·dCᵀ·op(A) */
            gemm_batched(d->batch, true, d->ta, n, k, m, d->alpha, dc, n, sc, A->data, d->ta ? m : k,
                         sa, 1.0f, db, k, sb);
    }
}

xv_tensor *xv_bmm(xv_graph *g, xv_tensor *a, xv_tensor *b, bool trans_a, bool trans_b, float alpha) {
    static const char op[] = "xv_bmm";
    if (!g || !xv_dense_f32_arg(g, op, "a", a) || !xv_dense_f32_arg(g, op, "b", b)) return NULL;
    char sa[96], sb[96];
    bool lead_ok = a->ndim >= 2 && a->ndim == b->ndim;
    for (int i = 0; lead_ok && i < a->ndim - 2; i++) lead_ok = a->shape[i] == b->shape[i];
    if (!lead_ok)
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: %s and %s need rank >= 2 and equal leading dims", op,
                             xv_shape_str(a, sa, sizeof sa), xv_shape_str(b, sb, sizeof sb));
    int r = a->ndim;
    int64_t m = a->shape[r - (trans_a ? 1 : 2)], k = a->shape[r - (trans_a ? 2 : 1)];
    int64_t kb = b->shape[r - (trans_b ? 1 : 2)], n = b->shape[r - (trans_b ? 2 : 1)];
    if (k != kb)
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: inner dims differ: %s%s times %s%s", op,
                             xv_shape_str(a, sa, sizeof sa), trans_a ? "ᵀ" : "",
                             xv_shape_str(b, sb, sizeof sb), trans_b ? "ᵀ" : "");
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "%s: dims beyond 32-bit BLAS indices", op);
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[r - 2] = m;
    shape[r - 1] = n;
    xv_tensor *c = xv_tensor_new(g, XV_F32, shape, r);
    if (!c) return NULL;
    int64_t batch = xv_shape_numel(a->shape, r - 2);
    if (c->numel > 0) {
        if (k == 0)
            memset(c->data, 0, sizeof(float) * (size_t)c->numel);
        else
            gemm_batched(batch, trans_a, trans_b, (int)m, (int)n, (int)k, alpha, a->data,
                         (int)(trans_a ? m : k), m * k, b->data, (int)(trans_b ? k : n), k * n, 0.0f,
                         c->data, (int)n, m * n);
    }
    xv_tensor *ins[2] = {a, b};
    xv_node *nd = xv_record(g, op, c, bmm_backward, ins, 2);
    if (nd) {
        bmm_dims *d = xv_graph_alloc(g, sizeof *d);
        if (!d) return NULL;
        *d = (bmm_dims){batch, (int)m, (int)n, (int)k, trans_a, trans_b, alpha};
        nd->saved = d;
    }
    return c;
}
