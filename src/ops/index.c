/* Row lookups: embedding tables and index_select on dim 0. Forward copies rows;
 * backward scatter-adds them back, so duplicate indices accumulate. */
#include <string.h>

#include "ops/op_args.h"
#include "ops/ops.h"

/* Scatter-add in parallel without atomics: each thread owns a block of columns
 * and visits the rows in index order, so duplicates accumulate race-free and
 * in the same order for any thread count. */
#define SCATTER_BLOCK_COLS 64

static void scatter_add_rows(float *dst, const float *src, const int32_t *idx, int64_t m,
                             int64_t d, int32_t skip) {
    int64_t nblk = (d + SCATTER_BLOCK_COLS - 1) / SCATTER_BLOCK_COLS;
#pragma omp parallel for schedule(static) if (m * d >= XV_PAR_MIN_ELEMS && nblk > 1)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * SCATTER_BLOCK_COLS;
        int64_t c1 = c0 + SCATTER_BLOCK_COLS < d ? c0 + SCATTER_BLOCK_COLS : d;
        for (int64_t i = 0; i < m; i++) {
            if (idx[i] == skip) continue;
            float *drow = dst + (int64_t)idx[i] * d;
            const float *srow = src + i * d;
            for (int64_t c = c0; c < c1; c++) drow[c] += srow[c];
        }
    }
}

static void gather_rows_copy(void *dst, const void *src, const int32_t *idx, int64_t m,
                             int64_t d) {
    size_t row_bytes = (size_t)d * 4;
#pragma omp parallel for schedule(static) if (m * d >= XV_PAR_MIN_ELEMS)
    for (int64_t i = 0; i < m; i++)
        memcpy((char *)dst + (size_t)i * row_bytes, (const char *)src + (size_t)idx[i] * row_bytes,
               row_bytes);
}

/* Position of the first index outside [0, n), or -1. */
static int64_t find_bad_index(const int32_t *idx, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        if (idx[i] < 0 || idx[i] >= n) return i;
    return -1;
}

/* ---------------------------------------------------------------- embedding */

static void embedding_backward(xv_graph *g, xv_node *node) {
    xv_tensor *table = node->in[0];
    const xv_tensor *ids = node->saved;
    float *gt = xv_grad(g, table);
    if (!gt) return;
    scatter_add_rows(gt, node->out->grad, ids->idata, ids->numel, table->shape[1],
                     (int32_t)node->iarg[0]);
}

xv_tensor *xv_embedding(xv_graph *g, xv_tensor *table, xv_tensor *ids, int padding_idx) {
    static const char op[] = "embedding";
    if (!xv_arg_f32(g, op, "table", table) || !xv_arg_i32(g, op, "ids", ids)) return NULL;
    char buf[64];
    if (table->ndim != 2)
        return xv_graph_fail(g, XV_ERR_SHAPE, "embedding: table must be [V, D], got %s",
                             xv_shape_str(table, buf, sizeof buf));
    if (ids->ndim + 1 > XV_MAX_DIMS)
        return xv_graph_fail(g, XV_ERR_SHAPE, "embedding: ids of rank %d leave no room for D",
                             ids->ndim);
    int64_t V = table->shape[0], D = table->shape[1];
    int64_t bad = find_bad_index(ids->idata, ids->numel, V);
    if (bad >= 0)
        return xv_graph_fail(g, XV_ERR_INVALID_ARG,
                             "embedding%s%s: id %d at position %lld is outside the table [0, %lld)",
                             table->name ? " " : "", table->name ? table->name : "",
                             (int)ids->idata[bad], (long long)bad, (long long)V);
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
    shape[ids->ndim] = D;
    xv_tensor *out = xv_tensor_new(g, XV_F32, shape, ids->ndim + 1);
    if (!out) return NULL;
    gather_rows_copy(out->data, table->data, ids->idata, ids->numel, D);

    xv_node *node = xv_record(g, op, out, embedding_backward, &table, 1);
    if (node) {
        node->saved = ids; /* ids must stay alive until backward, like every input */
        /* padding_idx < 0 means none; ids are >= 0, so -1 never matches. */
        node->iarg[0] = padding_idx < 0 ? -1 : padding_idx;
    }
    return out;
}

/* ---------------------------------------------------------------- gather_rows */

static void gather_rows_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    const xv_tensor *idx = node->saved;
    float *gx = xv_grad(g, x);
    if (!gx) return;
    int64_t row = x->shape[0] ? x->numel / x->shape[0] : 0;
    scatter_add_rows(gx, node->out->grad, idx->idata, idx->numel, row, -1);
}

xv_tensor *xv_gather_rows(xv_graph *g, xv_tensor *x, xv_tensor *idx) {
    static const char op[] = "gather_rows";
    if (!xv_arg_present(g, op, "x", x) || !xv_arg_i32(g, op, "idx", idx)) return NULL;
    char buf[64];
    if (x->ndim < 1)
        return xv_graph_fail(g, XV_ERR_SHAPE, "gather_rows: x must have a row dim, got %s",
                             xv_shape_str(x, buf, sizeof buf));
    if (idx->ndim != 1)
        return xv_graph_fail(g, XV_ERR_SHAPE, "gather_rows: idx must be 1-D, got %s",
                             xv_shape_str(idx, buf, sizeof buf));
    int64_t N = x->shape[0];
    int64_t bad = find_bad_index(idx->idata, idx->numel, N);
    if (bad >= 0)
        return xv_graph_fail(g, XV_ERR_INVALID_ARG,
                             "gather_rows: index %d at position %lld is outside [0, %lld)",
                             (int)idx->idata[bad], (long long)bad, (long long)N);
    int64_t row = N ? x->numel / N : 0;
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[0] = idx->numel;
    xv_tensor *out = xv_tensor_new(g, x->dtype, shape, x->ndim);
    if (!out) return NULL;
    gather_rows_copy(xv_arg_storage(out), xv_arg_storage(x), idx->idata, idx->numel, row);

    if (x->dtype == XV_F32) {
        xv_node *node = xv_record(g, op, out, gather_rows_backward, &x, 1);
        if (node) node->saved = idx;
    }
    return out;
}
