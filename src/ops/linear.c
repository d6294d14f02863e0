/* xv_linear and xv_bmm. The Linear forward goes to xv_gemm_linear (oneDNN
 * matmul with the bias fused, or OpenBLAS with bias rows and beta = 1); every
 * other product to cblas_sgemm, gradients accumulating with beta = 1. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "ops/dense_internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------- linear */

/* Rows per step of the backward: dY's slice (at most 1024 x out floats) is read
 * by the dX and dW products and then by db's column sum while still in cache;
 * one pass over the whole of a large dY would come from memory a third time. */
#define LINEAR_BWD_ROWS 1024

static void linear_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const float *dy = n->out->grad;
    int64_t rows = n->iarg[0];
    int in = (int)n->iarg[1], out = (int)n->iarg[2];
    if (rows == 0 || out == 0) return; /* empty product: every gradient is zero */
    float *dx = in > 0 && x->requires_grad ? xv_grad(g, x) : NULL;
    float *dw = in > 0 && w->requires_grad ? xv_grad(g, w) : NULL;
    float *db = b && b->requires_grad ? xv_grad(g, b) : NULL;
    double *db_acc = db ? xv_graph_calloc(g, sizeof(double) * (size_t)out) : NULL;
    if (xv_graph_status(g) != XV_OK) return;
    for (int64_t r0 = 0; r0 < rows; r0 += LINEAR_BWD_ROWS) {
        int m = (int)(rows - r0 < LINEAR_BWD_ROWS ? rows - r0 : LINEAR_BWD_ROWS);
        const float *dys = dy + r0 * out, *xs = x->data + r0 * in;
        if (dx) /* dX[rows,in] += dY[rows,out] · W[out,in] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, in, out, 1.0f, dys, out, w->data, in, 1.0f,
                        dx + r0 * in, in);
        if (dw) /* dW[out,in] += dYᵀ · X */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, m, 1.0f, dys, out, xs, in, 1.0f, dw, in);
        if (db) xv_dense_colsum_double(dys, NULL, m, out, db_acc);
    }
    if (db)
        for (int j = 0; j < out; j++) db[j] += (float)db_acc[j];
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
            if (!xv_gemm_linear(g, x->data, w->data, &ep, y->data, rows, in, out)) return NULL;
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
