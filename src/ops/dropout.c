/* Dropout and drop-path (stochastic depth), active only in training mode.
 *
 * Masks come from the graph's counter-based RNG, so they depend only on the
 * seed and the order of ops, never on the thread count:
 * - dropout reserves ceil(n/4) counters and element i uses 32-bit word i mod 4
 *   of Philox block base + i/4 (one block yields four uniforms: a quarter of
 *   the cost of one block per element, which made dropout cost as much as
 *   the Linear after it);
 * - drop-path reserves one counter per sample b: u = uniform_at(base + b).
 * A value is kept iff its uniform u >= p. The mask is saved (one byte per
 * element or sample) so backward applies exactly the same one. */
#include <string.h>

#include "ops/op_args.h"
#include "ops/ops.h"

static bool check_p(xv_graph *g, const char *op, float p) {
    if (p >= 0.0f && p <= 1.0f) return true;
    xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: probability %g outside [0, 1]", op, (double)p);
    return false;
}

/* Uniform in [0, 1) from one 32-bit word: the same 24-bit conversion as
 * xv_rng_uniform_at, which uses word 0. */
static inline float word_uniform(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* keep[i] = word i%4 of Philox(key, base + i/4) >= p. */
static void fill_element_mask(uint8_t *keep, int64_t n, float p, uint64_t key, uint64_t base) {
    int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= XV_PAR_MIN_ELEMS)
    for (int64_t b = 0; b < blocks; b++) {
        uint32_t w[4];
        xv_philox(key, base + (uint64_t)b, w);
        for (int64_t j = 0; j < 4 && 4 * b + j < n; j++) keep[4 * b + j] = word_uniform(w[j]) >= p;
    }
}

/* ---------------------------------------------------------------- dropout */

typedef struct {
    uint8_t *keep; /* [numel] */
    float scale;
} dropout_saved;

static void dropout_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    const dropout_saved *s = node->saved;
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t i = 0; i < x->numel; i++)
        if (s->keep[i]) gx[i] += gy[i] * s->scale;
}

xv_tensor *xv_dropout(xv_graph *g, xv_tensor *x, float p) {
    static const char op[] = "dropout";
    if (!xv_arg_f32(g, op, "x", x) || !check_p(g, op, p)) return NULL;
    if (!xv_graph_training(g) || p == 0.0f) return x;
    xv_tensor *out = xv_tensor_new(g, XV_F32, x->shape, x->ndim);
    uint8_t *keep = xv_graph_alloc(g, (size_t)(x->numel ? x->numel : 1));
    if (!out || !keep) return NULL;
    xv_rng *rng = xv_graph_rng(g);
    fill_element_mask(keep, x->numel, p, rng->key, xv_rng_reserve(rng, (uint64_t)(x->numel + 3) / 4));
    /* PyTorch multiplies by the float 1/(1-p); p = 1 drops everything. */
    float scale = p < 1.0f ? 1.0f / (float)(1.0 - (double)p) : 0.0f;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t i = 0; i < x->numel; i++) out->data[i] = keep[i] ? x->data[i] * scale : 0.0f;
    const dropout_saved s = {.keep = keep, .scale = scale};
    return xv_record_saved(g, op, out, dropout_backward, &x, 1, &s, sizeof s) ? out : NULL;
}

/* ---------------------------------------------------------------- drop-path */

typedef struct {
    uint8_t *keep; /* [B] */
    float keep_prob;
} drop_path_saved;

static void drop_path_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    const drop_path_saved *s = node->saved;
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
    int64_t B = x->shape[0], per = B ? x->numel / B : 0;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t b = 0; b < B; b++) {
        if (!s->keep[b]) continue;
        for (int64_t i = b * per; i < (b + 1) * per; i++) gx[i] += gy[i] / s->keep_prob;
    }
}

xv_tensor *xv_drop_path(xv_graph *g, xv_tensor *x, float p) {
    static const char op[] = "drop_path";
    if (!xv_arg_f32(g, op, "x", x) || !check_p(g, op, p)) return NULL;
    if (x->ndim < 1)
        return xv_graph_fail(g, XV_ERR_SHAPE, "drop_path: x needs a batch dim (got a scalar)");
    if (!xv_graph_training(g) || p == 0.0f) return x;
    int64_t B = x->shape[0], per = B ? x->numel / B : 0;
    xv_tensor *out = xv_tensor_new(g, XV_F32, x->shape, x->ndim);
    uint8_t *keep = xv_graph_alloc(g, (size_t)(B ? B : 1));
    if (!out || !keep) return NULL;
    xv_rng *rng = xv_graph_rng(g);
    uint64_t base = xv_rng_reserve(rng, (uint64_t)B);
    for (int64_t b = 0; b < B; b++) keep[b] = xv_rng_uniform_at(rng->key, base + (uint64_t)b) >= p;
    /* timm: x.div(keep_prob) * floor(keep_prob + u); p = 1 keeps no sample. */
    float keep_prob = 1.0f - p;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t b = 0; b < B; b++) {
        float *o = out->data + b * per;
        const float *xi = x->data + b * per;
        if (keep[b])
            for (int64_t i = 0; i < per; i++) o[i] = xi[i] / keep_prob;
        else
            memset(o, 0, sizeof(float) * (size_t)per);
    }
    const drop_path_saved s = {.keep = keep, .keep_prob = keep_prob};
    return xv_record_saved(g, op, out, drop_path_backward, &x, 1, &s, sizeof s) ? out : NULL;
}
