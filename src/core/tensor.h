/* Tensors and the graph (tape) that records differentiable ops.
 *
 * Design
 * - A tensor is dense, contiguous and row-major; ops that permute produce copies.
 *   F32 tensors carry `data` (and `grad` once a backward needs it); I32 tensors
 *   (ids, indices, masks) carry `idata` and are never differentiated.
 * - Activations live in the graph's arena and die at xv_graph_reset().
 *   Parameters (xv_param) live outside any graph and keep their gradients.
 * - Every op appends a node to the graph's tape (when grad is enabled and some
 *   input requires grad). xv_backward() walks the tape in reverse; each node's
 *   backward *adds* into its inputs' gradients, so a tensor used by several
 *   consumers receives the sum of their gradients.
 * - Errors are sticky: an op that gets bad shapes (or runs out of memory) records
 *   the error in the graph and returns NULL; every op given a NULL input returns
 *   NULL at once. Callers chain ops freely and check xv_graph_status() once. */
#ifndef XV_CORE_TENSOR_H
#define XV_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"

#define XV_MAX_DIMS 6
#define XV_NODE_MAX_INPUTS 6

typedef enum { XV_F32 = 0, XV_I32 = 1 } xv_dtype;

typedef struct xv_node xv_node;
typedef struct xv_graph xv_graph;

typedef struct xv_tensor {
    xv_dtype dtype;
    int ndim;
    int64_t shape[XV_MAX_DIMS];
    int64_t numel;
    float *data;        /* F32 values (NULL for I32) */
    int32_t *idata;     /* I32 values (NULL for F32) */
    float *grad;        /* d(loss)/d(data); allocated on demand during backward */
    bool requires_grad; /* leaf parameters, or outputs of ops on such tensors */
    bool persistent;    /* owned outside the graph (parameters); grad is not arena memory */
    xv_node *node;      /* op that produced it (NULL for leaves) */
    const char *name;   /* parameters: the official state_dict key */
    uint16_t *bf16;     /* parameters: a bf16 copy of data that Linear products read instead
                           (--precision bf16, model/precision.h), owned by the params; else NULL */
} xv_tensor;

/* Backward of one recorded op: reads node->out->grad, adds into inputs' grads. */
typedef void (*xv_backward_fn)(xv_graph *g, xv_node *node);

struct xv_node {
    xv_backward_fn backward;
    const char *op;                       /* op name, for debugging and errors */
    xv_tensor *out;
    xv_tensor *in[XV_NODE_MAX_INPUTS];    /* differentiable inputs (may be NULL) */
    void *saved;                          /* op-specific saved state (arena memory) */
    int64_t iarg[8];                      /* small integer arguments */
    float farg[4];                        /* small float arguments */
    xv_node *prev;                        /* tape: previous node */
};

/* ---- graph lifecycle ---------------------------------------------------- */
xv_graph *xv_graph_new(size_t arena_chunk_bytes); /* 0 = default (64 MiB) */
void xv_graph_free(xv_graph *g);
/* Drop every activation, gradient buffer and tape node; keep the memory. */
void xv_graph_reset(xv_graph *g);

/* Child graph i of g: created on first use (recording off, eval mode), kept
 * with its memory across resets of either graph, freed with g, so repeated
 * inference forwards on one graph reuse memory that is already mapped instead
 * of faulting in fresh pages. What each slot is for is decided above core
 * (nn/child_graphs.h). Not thread-safe: create children before handing them
 * to threads. NULL (error set) when out of memory. */
#define XV_GRAPH_CHILDREN 66
xv_graph *xv_graph_child(xv_graph *g, int i);

/* Recording for backward (default on). Off = inference: no tape, no saved state. */
void xv_graph_set_grad(xv_graph *g, bool enabled);
bool xv_graph_grad_enabled(const xv_graph *g);
/* Training mode: dropout and drop-path active (default off = eval). */
void xv_graph_set_training(xv_graph *g, bool training);
bool xv_graph_training(const xv_graph *g);
/* Free each activation gradient once the op that produced the activation has
 * passed it on in backward (default off). Training turns it on: a step's peak
 * memory then holds only the gradients in flight. Off, every gradient stays
 * readable until the next reset (tests of intermediate gradients). */
void xv_graph_set_free_used_grads(xv_graph *g, bool enabled);
/* Called by a backward walk with each node of the tape, newest first, just
 * before the node's backward runs (skipped or not): every gradient the nodes
 * before it in the walk add into is then final for the nodes that only those
 * read. Data-parallel training starts its gradient all-reduces from it
 * (src/dist/). NULL removes it. */
typedef void (*xv_backward_hook)(void *user, const xv_node *node);
void xv_graph_set_backward_hook(xv_graph *g, xv_backward_hook fn, void *user);
/* The newest node of the tape (NULL when empty); older ones follow ->prev. */
const xv_node *xv_graph_tape(const xv_graph *g);
/* High-water mark of the activation gradients' bytes over the graph's life. */
size_t xv_graph_grads_peak(const xv_graph *g);
/* The RNG used by stochastic ops (dropout, drop-path). */
xv_rng *xv_graph_rng(xv_graph *g);
xv_arena *xv_graph_arena(xv_graph *g);

/* Sticky error state. */
xv_status xv_graph_status(const xv_graph *g);
/* Record an error (first one wins); returns NULL for use in `return xv_graph_fail(...)`. */
xv_tensor *xv_graph_fail(xv_graph *g, xv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- tensors ------------------------------------------------------------ */
/* Usage: xv_tensor_new(g, XV_F32, XV_SHAPE(B, L, C)); contents uninitialised. */
#define XV_SHAPE(...)                                                                  \
    (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
xv_tensor *xv_tensor_new(xv_graph *g, xv_dtype dt, const int64_t *shape, int ndim);
xv_tensor *xv_tensor_zeros(xv_graph *g, xv_dtype dt, const int64_t *shape, int ndim);
/* Wrap caller-owned memory (not copied; must outlive the graph step). */
xv_tensor *xv_tensor_wrap_f32(xv_graph *g, float *data, const int64_t *shape, int ndim);
xv_tensor *xv_tensor_wrap_i32(xv_graph *g, int32_t *data, const int64_t *shape, int ndim);
/* Allocate in the graph arena (NULL + sticky error when out of memory). */
void *xv_graph_alloc(xv_graph *g, size_t bytes);
void *xv_graph_calloc(xv_graph *g, size_t bytes);

/* Shape helpers. */
int64_t xv_shape_numel(const int64_t *shape, int ndim);
bool xv_same_shape(const xv_tensor *a, const xv_tensor *b);
/* "[2,3,4]" into buf; returns buf. */
const char *xv_shape_str(const xv_tensor *t, char *buf, size_t n);
/* Size of the last dim and the product of the others. */
static inline int64_t xv_last_dim(const xv_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t xv_rows(const xv_tensor *t) { return t->numel / t->shape[t->ndim - 1]; }

/* ---- tape --------------------------------------------------------------- */
/* True when an op on these inputs must be recorded. */
bool xv_needs_grad(const xv_graph *g, xv_tensor *const *inputs, int n);
/* Record an op producing `out` (sets out->requires_grad and out->node).
 * Returns the node so the op can fill saved/iarg/farg; NULL when not recorded. */
xv_node *xv_record(xv_graph *g, const char *op, xv_tensor *out, xv_backward_fn bw,
                   xv_tensor *const *inputs, int n);
/* Gradient buffer of a tensor, allocated zeroed on first use (arena for
 * activations; parameters own theirs). NULL only on out-of-memory. */
float *xv_grad(xv_graph *g, xv_tensor *t);
/* For a backward that writes every element of t's gradient: when t has none
 * yet, a new buffer with undefined contents and *fresh = true (the caller must
 * store, not add: no zeroing pass, no reads of zeros); else xv_grad's buffer
 * and *fresh = false (add into it). Parameters always get xv_grad's. */
float *xv_grad_for_write(xv_graph *g, xv_tensor *t, bool *fresh);

/* Seed d(loss)/d(loss) = 1 (loss must have one element) and run the tape backwards.
 * Gradients accumulate into parameters' grad buffers. */
xv_status xv_backward(xv_graph *g, xv_tensor *loss);
/* Same with a caller-given output gradient of out's shape (for tests). */
xv_status xv_backward_with(xv_graph *g, xv_tensor *out, const float *dout);

#endif
