/* Row lookups: xv_embedding and xv_gather_rows.
 * Forward must copy the indexed rows; backward must scatter-add, with
 * duplicate indices accumulating and the padding row receiving nothing. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---------------------------------------------------------------- embedding */

typedef struct {
    int32_t *ids;
    const int64_t *shape;
    int ndim;
    int padding;
} emb_ctx;

static xv_tensor *fd_embedding(xv_graph *g, xv_tensor **in, void *ctx) {
    emb_ctx *c = ctx;
    xv_tensor *ids = xv_tensor_wrap_i32(g, c->ids, c->shape, c->ndim);
    return xv_embedding(g, in[0], ids, c->padding);
}

static void test_embedding_forward_backward(void) {
    enum { V = 7, D = 5 };
    /* ids [2, 3] with duplicates (3 twice, 0 twice) and the padding id 0. */
    int32_t ids[6] = {3, 0, 6, 3, 1, 0};
    float table[V * D];
    xv_test_fill_uniform(table, V * D, -1, 1, 1);
    xv_graph *g = xv_graph_new(0);
    xv_tensor *t = xv_tensor_wrap_f32(g, table, XV_SHAPE(V, D));
    t->requires_grad = true;
    xv_tensor *y = xv_embedding(g, t, xv_tensor_wrap_i32(g, ids, XV_SHAPE(2, 3)), 0);
    CHECK(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == D, "shape [2,3,D]");
    int bad = 0;
    for (int i = 0; y && i < 6; i++) bad += memcmp(y->data + i * D, table + ids[i] * D, sizeof(float) * D) != 0;
    CHECK(bad == 0, "rows copied (%d wrong)", bad);
    float dout[6 * D];
    for (int k = 0; k < 6 * D; k++) dout[k] = (float)(k + 1);
    CHECK_OK(xv_backward_with(g, y, dout));
    /* Expected: row v gets the sum of the output gradients of positions with id v,
     * except the padding row 0. Integers: exact. */
    float want[V * D] = {0};
    for (int i = 0; i < 6; i++)
        if (ids[i] != 0)
            for (int d = 0; d < D; d++) want[ids[i] * D + d] += dout[i * D + d];
    bad = 0;
    for (int k = 0; k < V * D; k++) bad += t->grad[k] != want[k];
    CHECK(bad == 0, "scatter-add with duplicates, padding row untouched (%d wrong)", bad);
    CHECK(t->grad[0] == 0 && t->grad[D - 1] == 0, "padding row has zero gradient");
    CHECK(t->grad[3 * D] == dout[0] + dout[3 * D], "duplicate id 3 accumulates");
    xv_graph_free(g);

    /* FD without padding (the padding row deliberately breaks the true derivative). */
    emb_ctx c = {ids, XV_SHAPE(2, 3), -1};
    xv_fd_opts o = xv_fd_copy_opts(500);
    xv_fd_input in = {XV_SHAPE(V, D), table, true};
    CHECK(xv_fd_check("fd embedding", fd_embedding, &c, &in, 1, &o) == 0, "fd embedding");
}

static void test_embedding_errors(void) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *t = xv_tensor_zeros(g, XV_F32, XV_SHAPE(10, 4));
    int32_t bad_ids[3] = {2, 10, 1};
    xv_tensor *y = xv_embedding(g, t, xv_tensor_wrap_i32(g, bad_ids, XV_SHAPE(3)), 0);
    CHECK(y == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "id 10 of a 10-row table refused");
    CHECK(strstr(xv_error_message(), "id 10") != NULL && strstr(xv_error_message(), "position 1") != NULL,
          "message names the id and where: %s", xv_error_message());
    xv_graph_reset(g);
    t = xv_tensor_zeros(g, XV_F32, XV_SHAPE(10, 4));
    int32_t neg[1] = {-3};
    CHECK(xv_embedding(g, t, xv_tensor_wrap_i32(g, neg, XV_SHAPE(1)), -1) == NULL, "negative id refused");
    CHECK(strstr(xv_error_message(), "id -3") != NULL, "message: %s", xv_error_message());
    xv_graph_reset(g);
    t = xv_tensor_zeros(g, XV_F32, XV_SHAPE(10, 4));
    xv_tensor *fids = xv_tensor_zeros(g, XV_F32, XV_SHAPE(3));
    CHECK(xv_embedding(g, t, fids, 0) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "F32 ids refused");
    xv_graph_free(g);
}

/* Big enough for the parallel column-block scatter: the result must equal a
 * serial reference bit for bit and not depend on the thread count. */
static void test_embedding_parallel(void) {
    enum { V = 300, D = 768, M = 2048 };
    float *table = malloc(sizeof(float) * V * D), *dout = malloc(sizeof(float) * M * D);
    float *ref = calloc((size_t)V * D, sizeof(float));
    int32_t *ids = malloc(sizeof(int32_t) * M);
    xv_test_fill_uniform(table, V * D, -1, 1, 2);
    xv_test_fill_uniform(dout, M * D, -1, 1, 3);
    xv_rng r;
    xv_rng_seed(&r, 4);
    for (int i = 0; i < M; i++) ids[i] = (int32_t)xv_rng_below(&r, V); /* many duplicates */
    for (int i = 0; i < M; i++)
        if (ids[i] != 0)
            for (int d = 0; d < D; d++) ref[ids[i] * D + d] += dout[(int64_t)i * D + d];
    const int threads[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        omp_set_num_threads(threads[k]);
        xv_graph *g = xv_graph_new(0);
        xv_tensor *t = xv_tensor_wrap_f32(g, table, XV_SHAPE(V, D));
        t->requires_grad = true;
        xv_tensor *y = xv_embedding(g, t, xv_tensor_wrap_i32(g, ids, XV_SHAPE(M)), 0);
        CHECK_OK(xv_backward_with(g, y, dout));
        CHECK(memcmp(t->grad, ref, sizeof(float) * V * D) == 0, "%d threads: equals the serial scatter-add",
              threads[k]);
        xv_graph_free(g);
    }
    omp_set_num_threads(2);
    free(table);
    free(dout);
    free(ref);
    free(ids);
}

/* ---------------------------------------------------------------- gather_rows */

typedef struct {
    int32_t *idx;
    int64_t m;
} gather_ctx;

static xv_tensor *fd_gather(xv_graph *g, xv_tensor **in, void *ctx) {
    gather_ctx *c = ctx;
    return xv_gather_rows(g, in[0], xv_tensor_wrap_i32(g, c->idx, XV_SHAPE(c->m)));
}

/* The same tensor gathered twice (ITM: positives and sampled negatives come
 * from one batch) and concatenated: gradients of both uses add up. */
static xv_tensor *fd_gather_twice(xv_graph *g, xv_tensor **in, void *ctx) {
    gather_ctx *c = ctx;
    xv_tensor *a = xv_gather_rows(g, in[0], xv_tensor_wrap_i32(g, c->idx, XV_SHAPE(c->m)));
    return xv_concat(g, (xv_tensor *[]){in[0], a}, 2, 0);
}

static void test_gather_rows(void) {
    /* x [5, 3, 2] gathered at [4, 1, 4, 0, 4, 2, 1]: duplicates and a row never used (3). */
    int32_t idx[7] = {4, 1, 4, 0, 4, 2, 1};
    float x[30];
    xv_test_fill_uniform(x, 30, -1, 1, 9);
    xv_graph *g = xv_graph_new(0);
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(5, 3, 2));
    xt->requires_grad = true;
    xv_tensor *y = xv_gather_rows(g, xt, xv_tensor_wrap_i32(g, idx, XV_SHAPE(7)));
    CHECK(y && y->ndim == 3 && y->shape[0] == 7 && y->shape[1] == 3 && y->shape[2] == 2, "shape [7,3,2]");
    int bad = 0;
    for (int i = 0; y && i < 7; i++) bad += memcmp(y->data + i * 6, x + idx[i] * 6, sizeof(float) * 6) != 0;
    CHECK(bad == 0, "rows copied (%d wrong)", bad);
    float dout[42];
    for (int k = 0; k < 42; k++) dout[k] = (float)(k + 1);
    CHECK_OK(xv_backward_with(g, y, dout));
    float want[30] = {0};
    for (int i = 0; i < 7; i++)
        for (int d = 0; d < 6; d++) want[idx[i] * 6 + d] += dout[i * 6 + d];
    bad = 0;
    for (int k = 0; k < 30; k++) bad += xt->grad[k] != want[k];
    CHECK(bad == 0, "scatter-add (%d wrong); row 4 used three times: %g", bad, xt->grad[24]);
    xv_graph_free(g);

    gather_ctx c = {idx, 7};
    xv_fd_opts o = xv_fd_copy_opts(500);
    xv_fd_input in = {XV_SHAPE(5, 3, 2), x, true};
    CHECK(xv_fd_check("fd gather_rows", fd_gather, &c, &in, 1, &o) == 0, "fd gather");
    CHECK(xv_fd_check("fd gather twice", fd_gather_twice, &c, &in, 1, &o) == 0, "fd gather reuse");

    /* I32 rows (text / image attention masks of sampled negatives). */
    g = xv_graph_new(0);
    int32_t masks[6] = {1, 1, 0, 1, 0, 0};
    int32_t pick[2] = {2, 0};
    xv_tensor *mi = xv_gather_rows(g, xv_tensor_wrap_i32(g, masks, XV_SHAPE(3, 2)),
                                   xv_tensor_wrap_i32(g, pick, XV_SHAPE(2)));
    CHECK(mi && mi->dtype == XV_I32 && mi->idata[0] == 0 && mi->idata[1] == 0 && mi->idata[2] == 1 &&
              mi->idata[3] == 1,
          "I32 gather");
    int32_t oob[2] = {1, 5};
    CHECK(xv_gather_rows(g, xv_tensor_wrap_f32(g, x, XV_SHAPE(5, 6)), xv_tensor_wrap_i32(g, oob, XV_SHAPE(2))) ==
                  NULL &&
              xv_graph_status(g) == XV_ERR_INVALID_ARG,
          "index 5 of 5 rows refused");
    CHECK(strstr(xv_error_message(), "index 5") != NULL, "message: %s", xv_error_message());
    xv_graph_free(g);
}

int main(void) {
    test_embedding_forward_backward();
    test_embedding_errors();
    test_embedding_parallel();
    test_gather_rows();
    return xv_test_finish("test_ops_index");
}
