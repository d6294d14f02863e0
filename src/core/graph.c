#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grad_store.h"
#include "core/tensor.h"

struct xv_graph {
    xv_arena arena;
    xv_grad_store grads; /* gradients of activations (grad_store.h) */
    bool free_used_grads;
    xv_node *tape; /* last recorded node */
    xv_backward_hook hook; /* called after each node of a backward walk (NULL: none) */
    void *hook_user;
    bool grad_enabled;
    bool training;
    xv_status status;
    char message[1024];
    xv_rng rng;
    xv_graph *child[XV_GRAPH_CHILDREN]; /* created on first use (xv_graph_child) */
};

xv_graph *xv_graph_new(size_t arena_chunk_bytes) {
    xv_graph *g = calloc(1, sizeof *g);
    if (!g) {
        xv_error(XV_ERR_NOMEM, "out of memory creating a graph");
        return NULL;
    }
    xv_arena_init(&g->arena, arena_chunk_bytes);
    g->grad_enabled = true;
    xv_rng_seed(&g->rng, 0x5eed);
    return g;
}

void xv_graph_free(xv_graph *g) {
    if (!g) return;
    for (int i = 0; i < XV_GRAPH_CHILDREN; i++) xv_graph_free(g->child[i]);
    xv_grad_store_release_all(&g->grads);
    xv_arena_free(&g->arena);
    free(g);
}

void xv_graph_reset(xv_graph *g) {
    xv_grad_store_clear(&g->grads);
    xv_arena_reset(&g->arena);
    g->tape = NULL;
    g->status = XV_OK;
    g->message[0] = '\0';
}

xv_graph *xv_graph_child(xv_graph *g, int i) {
    if (i < 0 || i >= XV_GRAPH_CHILDREN) {
        xv_error(XV_ERR_INTERNAL, "child graph %d outside [0, %d)", i, XV_GRAPH_CHILDREN);
        return NULL;
    }
    if (!g->child[i]) {
        g->child[i] = xv_graph_new(0);
        if (!g->child[i]) return NULL;
        xv_graph_set_grad(g->child[i], false);
    }
    return g->child[i];
}

void xv_graph_set_grad(xv_graph *g, bool enabled) { g->grad_enabled = enabled; }
bool xv_graph_grad_enabled(const xv_graph *g) { return g->grad_enabled; }
void xv_graph_set_training(xv_graph *g, bool training) { g->training = training; }
bool xv_graph_training(const xv_graph *g) { return g->training; }
void xv_graph_set_free_used_grads(xv_graph *g, bool enabled) { g->free_used_grads = enabled; }
size_t xv_graph_grads_peak(const xv_graph *g) { return g->grads.peak; }
void xv_graph_set_backward_hook(xv_graph *g, xv_backward_hook fn, void *user) { g->hook = fn, g->hook_user = user; }
const xv_node *xv_graph_tape(const xv_graph *g) { return g->tape; }
xv_rng *xv_graph_rng(xv_graph *g) { return &g->rng; }
xv_arena *xv_graph_arena(xv_graph *g) { return &g->arena; }

xv_status xv_graph_status(const xv_graph *g) {
    if (g->status != XV_OK) xv_error(g->status, "%s", g->message);
    return g->status;
}

xv_tensor *xv_graph_fail(xv_graph *g, xv_status code, const char *fmt, ...) {
    if (g->status == XV_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->message, sizeof g->message, fmt, ap);
        va_end(ap);
        g->status = code;
        xv_error(code, "%s", g->message);
    }
    return NULL;
}

void *xv_graph_alloc(xv_graph *g, size_t bytes) {
    void *p = xv_arena_alloc(&g->arena, bytes);
    if (!p) xv_graph_fail(g, XV_ERR_NOMEM, "out of memory allocating %zu bytes of activations", bytes);
    return p;
}

void *xv_graph_calloc(xv_graph *g, size_t bytes) {
    void *p = xv_arena_calloc(&g->arena, bytes);
    if (!p) xv_graph_fail(g, XV_ERR_NOMEM, "out of memory allocating %zu bytes of activations", bytes);
    return p;
}

int64_t xv_shape_numel(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

bool xv_same_shape(const xv_tensor *a, const xv_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *xv_shape_str(const xv_tensor *t, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < t->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

static xv_tensor *tensor_header(xv_graph *g, xv_dtype dt, const int64_t *shape, int ndim) {
    if (g->status != XV_OK) return NULL;
    if (ndim < 0 || ndim > XV_MAX_DIMS)
        return xv_graph_fail(g, XV_ERR_SHAPE, "tensor rank %d outside 0..%d", ndim, XV_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || shape[i] > ((int64_t)1 << 40))
            return xv_graph_fail(g, XV_ERR_SHAPE, "tensor dim %d has invalid size %lld", i,
                                 (long long)shape[i]);
    xv_tensor *t = xv_graph_calloc(g, sizeof *t);
    if (!t) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = xv_shape_numel(shape, ndim);
    return t;
}

xv_tensor *xv_tensor_new(xv_graph *g, xv_dtype dt, const int64_t *shape, int ndim) {
    xv_tensor *t = tensor_header(g, dt, shape, ndim);
    if (!t) return NULL;
    void *p = xv_graph_alloc(g, (size_t)t->numel * 4);
    if (!p) return NULL;
    if (dt == XV_F32) t->data = p;
    else t->idata = p;
    return t;
}

xv_tensor *xv_tensor_zeros(xv_graph *g, xv_dtype dt, const int64_t *shape, int ndim) {
    xv_tensor *t = xv_tensor_new(g, dt, shape, ndim);
    if (t) memset(dt == XV_F32 ? (void *)t->data : (void *)t->idata, 0, (size_t)t->numel * 4);
    return t;
}

xv_tensor *xv_tensor_wrap_f32(xv_graph *g, float *data, const int64_t *shape, int ndim) {
    xv_tensor *t = tensor_header(g, XV_F32, shape, ndim);
    if (t) t->data = data;
    return t;
}

xv_tensor *xv_tensor_wrap_i32(xv_graph *g, int32_t *data, const int64_t *shape, int ndim) {
    xv_tensor *t = tensor_header(g, XV_I32, shape, ndim);
    if (t) t->idata = data;
    return t;
}

bool xv_needs_grad(const xv_graph *g, xv_tensor *const *inputs, int n) {
    if (!g->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

xv_node *xv_record(xv_graph *g, const char *op, xv_tensor *out, xv_backward_fn bw,
                   xv_tensor *const *inputs, int n) {
    if (!out || !xv_needs_grad(g, inputs, n)) return NULL;
    if (n > XV_NODE_MAX_INPUTS) {
        xv_graph_fail(g, XV_ERR_INTERNAL, "op %s records %d inputs (max %d)", op, n,
                      XV_NODE_MAX_INPUTS);
        return NULL;
    }
    xv_node *node = xv_graph_calloc(g, sizeof *node);
    if (!node) return NULL;
    node->backward = bw;
    node->op = op;
    node->out = out;
    for (int i = 0; i < n; i++) node->in[i] = inputs[i];
    node->prev = g->tape;
    g->tape = node;
    out->requires_grad = true;
    out->node = node;
    return node;
}

float *xv_grad(xv_graph *g, xv_tensor *t) {
    if (t->grad) return t->grad;
    if (t->persistent) {
        /* Parameters own their gradient (kept across graph resets). */
        t->grad = calloc((size_t)t->numel, sizeof(float));
        if (!t->grad) xv_graph_fail(g, XV_ERR_NOMEM, "out of memory for the gradient of %s",
                                    t->name ? t->name : "a parameter");
        return t->grad;
    }
    t->grad = xv_grad_store_alloc(&g->grads, (size_t)t->numel);
    if (!t->grad) xv_graph_fail(g, XV_ERR_NOMEM, "out of memory for a gradient of %lld floats", (long long)t->numel);
    return t->grad;
}

float *xv_grad_for_write(xv_graph *g, xv_tensor *t, bool *fresh) {
    *fresh = false;
    if (t->grad || t->persistent) return xv_grad(g, t);
    t->grad = xv_grad_store_alloc_uninit(&g->grads, (size_t)t->numel);
    if (!t->grad) {
        xv_graph_fail(g, XV_ERR_NOMEM, "out of memory for a gradient of %lld floats", (long long)t->numel);
        return NULL;
    }
    *fresh = true;
    return t->grad;
}

/* Gradients live outside the arena, so whatever a node's backward allocates
 * in the arena is its scratch: the space goes back once the node is done. */
static xv_status run_tape(xv_graph *g) {
    for (xv_node *n = g->tape; n; n = n->prev) {
        if (g->hook) g->hook(g->hook_user, n);
        if (!n->out->grad) continue; /* nothing downstream of this node reached the loss */
        const xv_arena_mark_t mark = xv_arena_mark(&g->arena);
        n->backward(g, n);
        xv_arena_release(&g->arena, mark);
        if (g->status != XV_OK) return xv_graph_status(g);
        if (g->free_used_grads && !n->out->persistent) { /* every consumer has added into it; it is passed on */
            xv_grad_store_free(&g->grads, n->out->grad);
            n->out->grad = NULL;
        }
    }
    return XV_OK;
}

xv_status xv_backward(xv_graph *g, xv_tensor *loss) {
    if (g->status != XV_OK) return xv_graph_status(g);
    if (!loss) return xv_error(XV_ERR_INVALID_ARG, "backward: loss is NULL");
    if (loss->numel != 1 || loss->dtype != XV_F32)
        return xv_error(XV_ERR_SHAPE, "backward: loss must be one float (got %lld elements)",
                        (long long)loss->numel);
    float *gl = xv_grad(g, loss);
    if (!gl) return xv_graph_status(g);
    gl[0] += 1.0f;
    return run_tape(g);
}

xv_status xv_backward_with(xv_graph *g, xv_tensor *out, const float *dout) {
    if (g->status != XV_OK) return xv_graph_status(g);
    if (!out || out->dtype != XV_F32) return xv_error(XV_ERR_INVALID_ARG, "backward: bad output");
    float *go = xv_grad(g, out);
    if (!go) return xv_graph_status(g);
    for (int64_t i = 0; i < out->numel; i++) go[i] += dout[i];
    return run_tape(g);
}
