/* The all-gather of a batch dimension as a differentiable op: the official
 * AllGather (models/xvlm.py), whose backward hands each rank the rows of its
 * own items. */
#include "dist/dist.h"

#include <string.h>

static void all_gather_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad + (size_t)node->iarg[0] * (size_t)x->numel; /* this rank's rows */
    for (int64_t i = 0; i < x->numel; i++) gx[i] += gy[i];
}

xv_tensor *xv_dist_all_gather_rows(xv_graph *g, xv_tensor *x) {
    if (!x) return NULL;
    const int world = xv_dist_world();
    if (world == 1) return x;
    if (x->dtype != XV_F32 || x->ndim < 1)
        return xv_graph_fail(g, XV_ERR_SHAPE, "all-gather: expected an F32 tensor with a batch dimension");
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] *= world;
    xv_tensor *y = xv_tensor_new(g, XV_F32, shape, x->ndim);
    if (!y) return NULL;
    /* Every rank must hold the same shape: gather the shapes first, so a
     * mismatch is an error, not a garbled buffer. */
    int64_t *shapes = xv_graph_alloc(g, sizeof x->shape * (size_t)world);
    if (!shapes) return NULL;
    xv_status st = xv_dist_allgather(x->shape, shapes, sizeof x->shape);
    for (int r = 0; st == XV_OK && r < world; r++)
        if (memcmp(shapes + r * XV_MAX_DIMS, x->shape, sizeof x->shape))
            return xv_graph_fail(g, XV_ERR_SHAPE, "all-gather: rank %d holds a batch of another shape than rank %d",
                                 r, xv_dist_rank());
    if (st == XV_OK) st = xv_dist_allgather(x->data, y->data, sizeof(float) * (size_t)x->numel);
    if (st != XV_OK) return xv_graph_fail(g, st, "all-gather: %s", xv_error_message());
    xv_node *n = xv_record(g, "all_gather_rows", y, all_gather_backward, &x, 1);
    if (n) n->iarg[0] = xv_dist_rank();
    return y;
}
