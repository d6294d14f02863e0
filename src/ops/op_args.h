/* Argument checks shared by the indexing, layout, pooling, loss and
 * regularisation ops. Each check records a sticky graph error naming the op and
 * the argument, and returns false, so an op can write
 * `if (!xv_arg_f32(g, "slice", "x", x)) return NULL;`. */
#ifndef XV_OPS_OP_ARGS_H
#define XV_OPS_OP_ARGS_H

#include <string.h>

#include "core/tensor.h"

/* Below this many elements a parallel region costs more than it saves. */
#define XV_PAR_MIN_ELEMS 32768

static inline bool xv_arg_present(xv_graph *g, const char *op, const char *what,
                                  const xv_tensor *t) {
    /* A NULL input usually means an earlier op failed: its error is kept
     * (first error wins) and this one only adds context if there was none. */
    if (t) return true;
    xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: %s is NULL", op, what);
    return false;
}

static inline bool xv_arg_dtype(xv_graph *g, const char *op, const char *what,
                                const xv_tensor *t, xv_dtype dt) {
    if (!xv_arg_present(g, op, what, t)) return false;
    if (t->dtype == dt) return true;
    xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: %s must be %s", op, what,
                  dt == XV_F32 ? "F32" : "I32");
    return false;
}

static inline bool xv_arg_f32(xv_graph *g, const char *op, const char *what, const xv_tensor *t) {
    return xv_arg_dtype(g, op, what, t, XV_F32);
}

static inline bool xv_arg_i32(xv_graph *g, const char *op, const char *what, const xv_tensor *t) {
    return xv_arg_dtype(g, op, what, t, XV_I32);
}

/* Raw 4-byte storage of an F32 or I32 tensor (pure copy ops handle both). */
static inline void *xv_arg_storage(const xv_tensor *t) {
    return t->dtype == XV_F32 ? (void *)t->data : (void *)t->idata;
}

/* A tensor of the given dtype whose storage aliases another tensor's. */
static inline xv_tensor *xv_arg_wrap(xv_graph *g, xv_dtype dt, void *storage,
                                     const int64_t *shape, int ndim) {
    return dt == XV_F32 ? xv_tensor_wrap_f32(g, storage, shape, ndim)
                        : xv_tensor_wrap_i32(g, storage, shape, ndim);
}

/* Record an op (xv_record) and give its backward a copy of `saved` (`bytes`,
 * kept in the graph arena). false only when that copy cannot be allocated
 * (the graph then holds the out-of-memory error); not recording is fine. */
static inline bool xv_record_saved(xv_graph *g, const char *op, xv_tensor *out, xv_backward_fn bw,
                                   xv_tensor *const *inputs, int n, const void *saved, size_t bytes) {
    xv_node *node = xv_record(g, op, out, bw, inputs, n);
    if (!node) return true;
    void *copy = xv_graph_alloc(g, bytes);
    if (!copy) return false;
    memcpy(copy, saved, bytes);
    node->saved = copy;
    return true;
}

#endif
