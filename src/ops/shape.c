/* Shape ops: concat, slice, reshape, permute. All are pure data movement, so
 * they accept I32 tensors too (masks, ids); only F32 ones are differentiated.
 * Backward of each is the transpose of its copy: gradients are added back to
 * the positions the values came from. */
#include <string.h>

#include "ops/op_args.h"
#include "ops/ops.h"

/* dim in [-ndim, ndim) (negative counts from the end, as in PyTorch). */
static bool normalise_dim(xv_graph *g, const char *op, int *dim, int ndim) {
    int d = *dim < 0 ? *dim + ndim : *dim;
    if (d < 0 || d >= ndim) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: dim %d outside a rank-%d tensor", op, *dim, ndim);
        return false;
    }
    *dim = d;
    return true;
}

static int64_t prod(const int64_t *shape, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= shape[i];
    return p;
}

/* dst[o, :] += src[o, :] for `outer` rows of `cols` strided by dst_stride / src_stride. */
static void add_strided_rows(float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                             int64_t outer, int64_t cols) {
#pragma omp parallel for schedule(static) if (outer * cols >= XV_PAR_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++) {
        float *d = dst + o * dst_stride;
        const float *s = src + o * src_stride;
        for (int64_t c = 0; c < cols; c++) d[c] += s[c];
    }
}

static void copy_strided_rows(void *dst, int64_t dst_stride, const void *src, int64_t src_stride,
                              int64_t outer, int64_t cols) {
#pragma omp parallel for schedule(static) if (outer * cols >= XV_PAR_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst + (size_t)(o * dst_stride) * 4,
               (const char *)src + (size_t)(o * src_stride) * 4, (size_t)cols * 4);
}

/* ---------------------------------------------------------------- concat */

static void concat_backward(xv_graph *g, xv_node *node) {
    const xv_tensor *out = node->out;
    int dim = (int)node->iarg[0], n = (int)node->iarg[1];
    int64_t outer = prod(out->shape, 0, dim), inner = prod(out->shape, dim + 1, out->ndim);
    int64_t out_row = out->shape[dim] * inner, offset = 0;
    for (int i = 0; i < n; i++) {
        xv_tensor *x = node->in[i];
        int64_t chunk = x->shape[dim] * inner;
        if (x->requires_grad) {
            float *gx = xv_grad(g, x);
            if (!gx) return;
            add_strided_rows(gx, chunk, out->grad + offset, out_row, outer, chunk);
        }
        offset += chunk;
    }
}

/* One recorded concat of at most XV_NODE_MAX_INPUTS tensors (already validated). */
static xv_tensor *concat_few(xv_graph *g, xv_tensor *const *xs, int n, int dim) {
    const xv_tensor *x0 = xs[0];
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof(int64_t) * (size_t)x0->ndim);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) shape[dim] += xs[i]->shape[dim];
    xv_tensor *out = xv_tensor_new(g, x0->dtype, shape, x0->ndim);
    if (!out) return NULL;
    int64_t outer = prod(shape, 0, dim), inner = prod(shape, dim + 1, x0->ndim);
    int64_t out_row = shape[dim] * inner, offset = 0;
    for (int i = 0; i < n; i++) {
        int64_t chunk = xs[i]->shape[dim] * inner;
        copy_strided_rows((char *)xv_arg_storage(out) + (size_t)offset * 4, out_row,
                          xv_arg_storage(xs[i]), chunk, outer, chunk);
        offset += chunk;
    }
    if (x0->dtype == XV_F32) {
        xv_node *node = xv_record(g, "concat", out, concat_backward, xs, n);
        if (node) {
            node->iarg[0] = dim;
            node->iarg[1] = n;
        }
    }
    return out;
}

xv_tensor *xv_concat(xv_graph *g, xv_tensor *const *xs, int n, int dim) {
    static const char op[] = "concat";
    if (n < 1 || !xs) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "concat: no inputs (n = %d)", n);
    for (int i = 0; i < n; i++)
        if (!xv_arg_present(g, op, "an input", xs[i])) return NULL;
    const xv_tensor *x0 = xs[0];
    if (!normalise_dim(g, op, &dim, x0->ndim)) return NULL;
    char b0[64], bi[64];
    for (int i = 1; i < n; i++) {
        const xv_tensor *x = xs[i];
        bool fits = x->dtype == x0->dtype && x->ndim == x0->ndim;
        for (int d = 0; fits && d < x0->ndim; d++) fits = d == dim || x->shape[d] == x0->shape[d];
        if (!fits)
            return xv_graph_fail(g, XV_ERR_SHAPE,
                                 "concat on dim %d: input %d %s (%s) does not fit input 0 %s (%s)",
                                 dim, i, xv_shape_str(x, bi, sizeof bi), x->dtype == XV_F32 ? "F32" : "I32",
                                 xv_shape_str(x0, b0, sizeof b0), x0->dtype == XV_F32 ? "F32" : "I32");
    }
    if (n <= XV_NODE_MAX_INPUTS) return concat_few(g, xs, n, dim);
    /* A tape node holds at most XV_NODE_MAX_INPUTS inputs: concatenate in groups,
     * then concatenate the groups (concat is associative). */
    xv_tensor *parts[XV_NODE_MAX_INPUTS];
    int per = (n + XV_NODE_MAX_INPUTS - 1) / XV_NODE_MAX_INPUTS, np = 0;
    for (int i = 0; i < n; i += per) {
        int k = n - i < per ? n - i : per;
        parts[np] = xv_concat(g, xs + i, k, dim);
        if (!parts[np]) return NULL;
        np++;
    }
    return concat_few(g, parts, np, dim);
}

/* ---------------------------------------------------------------- slice */

static void slice_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    int dim = (int)node->iarg[0];
    int64_t start = node->iarg[1], len = node->iarg[2];
    int64_t outer = prod(x->shape, 0, dim), inner = prod(x->shape, dim + 1, x->ndim);
    float *gx = xv_grad(g, x);
    if (!gx) return;
    add_strided_rows(gx + start * inner, x->shape[dim] * inner, node->out->grad, len * inner, outer,
                     len * inner);
}

xv_tensor *xv_slice(xv_graph *g, xv_tensor *x, int dim, int64_t start, int64_t len) {
    static const char op[] = "slice";
    if (!xv_arg_present(g, op, "x", x) || !normalise_dim(g, op, &dim, x->ndim)) return NULL;
    char buf[64];
    if (start < 0 || len < 0 || start > x->shape[dim] - len)
        return xv_graph_fail(g, XV_ERR_SHAPE, "slice: [%lld, %lld+%lld) outside dim %d of %s",
                             (long long)start, (long long)start, (long long)len, dim,
                             xv_shape_str(x, buf, sizeof buf));
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[dim] = len;
    xv_tensor *out = xv_tensor_new(g, x->dtype, shape, x->ndim);
    if (!out) return NULL;
    int64_t outer = prod(x->shape, 0, dim), inner = prod(x->shape, dim + 1, x->ndim);
    copy_strided_rows(xv_arg_storage(out), len * inner,
                      (char *)xv_arg_storage(x) + (size_t)(start * inner) * 4, x->shape[dim] * inner,
                      outer, len * inner);
    if (x->dtype == XV_F32) {
        xv_node *node = xv_record(g, op, out, slice_backward, &x, 1);
        if (node) {
            node->iarg[0] = dim;
            node->iarg[1] = start;
            node->iarg[2] = len;
        }
    }
    return out;
}

/* ---------------------------------------------------------------- reshape */

static void reshape_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t i = 0; i < x->numel; i++) gx[i] += gy[i];
}

xv_tensor *xv_reshape(xv_graph *g, xv_tensor *x, const int64_t *shape, int ndim) {
    static const char op[] = "reshape";
    if (!xv_arg_present(g, op, "x", x)) return NULL;
    if (ndim < 0 || ndim > XV_MAX_DIMS)
        return xv_graph_fail(g, XV_ERR_SHAPE, "reshape: rank %d outside 0..%d", ndim, XV_MAX_DIMS);
    /* One dim may be -1: inferred from the others, as in PyTorch. */
    int64_t s[XV_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) infer = i;
        else if (s[i] < 0)
            return xv_graph_fail(g, XV_ERR_SHAPE, "reshape: bad size %lld at dim %d", (long long)s[i], i);
        else known *= s[i];
    }
    if (infer >= 0) s[infer] = known ? x->numel / known : 0;
    char buf[64];
    if (xv_shape_numel(s, ndim) != x->numel)
        return xv_graph_fail(g, XV_ERR_SHAPE, "reshape: %s has %lld elements, the new shape %lld",
                             xv_shape_str(x, buf, sizeof buf), (long long)x->numel,
                             (long long)xv_shape_numel(s, ndim));
    /* Contiguous row-major data is already in the new shape's order: share it. */
    xv_tensor *out = xv_arg_wrap(g, x->dtype, xv_arg_storage(x), s, ndim);
    if (!out) return NULL;
    if (x->dtype == XV_F32) xv_record(g, op, out, reshape_backward, &x, 1);
    return out;
}

/* ---------------------------------------------------------------- permute */

/* The walk shared by forward and backward: output row r (all dims but the
 * last) starts at input offset row_offset(r) and steps by the input stride
 * of the dim that became last. */
typedef struct {
    int ndim;
    int64_t out_shape[XV_MAX_DIMS];
    int64_t in_stride_of_out[XV_MAX_DIMS]; /* input stride of each output dim */
} permute_walk;

static permute_walk make_walk(const xv_tensor *x, const int *perm) {
    permute_walk w = {.ndim = x->ndim};
    int64_t stride[XV_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= x->shape[d];
    }
    for (int k = 0; k < x->ndim; k++) {
        w.out_shape[k] = x->shape[perm[k]];
        w.in_stride_of_out[k] = stride[perm[k]];
    }
    return w;
}

static inline int64_t row_offset(const permute_walk *w, int64_t r) {
    int64_t off = 0;
    for (int k = w->ndim - 2; k >= 0; k--) {
        off += (r % w->out_shape[k]) * w->in_stride_of_out[k];
        r /= w->out_shape[k];
    }
    return off;
}

static void permute_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    const permute_walk *w = node->saved;
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
    int64_t last = w->out_shape[w->ndim - 1], step = w->in_stride_of_out[w->ndim - 1];
    int64_t rows = last ? x->numel / last : 0;
    /* A permutation is a bijection: distinct rows touch distinct elements. */
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        float *dst = gx + row_offset(w, r);
        const float *src = gy + r * last;
        for (int64_t j = 0; j < last; j++) dst[j * step] += src[j];
    }
}

xv_tensor *xv_permute(xv_graph *g, xv_tensor *x, const int *perm) {
    static const char op[] = "permute";
    if (!xv_arg_present(g, op, "x", x)) return NULL;
    if (!perm) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "permute: perm is NULL");
    bool seen[XV_MAX_DIMS] = {false};
    for (int k = 0; k < x->ndim; k++) {
        if (perm[k] < 0 || perm[k] >= x->ndim || seen[perm[k]])
            return xv_graph_fail(g, XV_ERR_INVALID_ARG,
                                 "permute: perm[%d] = %d is not a fresh dim of a rank-%d tensor", k,
                                 perm[k], x->ndim);
        seen[perm[k]] = true;
    }
    if (x->ndim == 0) return xv_reshape(g, x, NULL, 0);
    permute_walk w = make_walk(x, perm);
    xv_tensor *out = xv_tensor_new(g, x->dtype, w.out_shape, x->ndim);
    if (!out) return NULL;
    int64_t last = w.out_shape[w.ndim - 1], step = w.in_stride_of_out[w.ndim - 1];
    int64_t rows = last ? x->numel / last : 0;
    /* 4-byte elements moved as bytes (memcpy), valid for F32 and I32 alike. */
    const char *src = xv_arg_storage(x);
    char *dst = xv_arg_storage(out);
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        const char *s = src + (size_t)row_offset(&w, r) * 4;
        char *d = dst + (size_t)(r * last) * 4;
        if (step == 1) memcpy(d, s, (size_t)last * 4);
        else
            for (int64_t j = 0; j < last; j++) memcpy(d + j * 4, s + (size_t)(j * step) * 4, 4);
    }
    if (x->dtype == XV_F32 && !xv_record_saved(g, op, out, permute_backward, &x, 1, &w, sizeof w)) return NULL;
    return out;
}
