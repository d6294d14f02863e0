/* Elementwise ops: a ∘ b with b broadcast over a's leading dims, affine maps,
 * division by a learnable scalar, GELU (erf), sigmoid, abs. */
#include <math.h>

#include "ops/dense_internal.h"
#include "ops/fastmath.h"
#include "ops/ops.h"

#define PAR_IF(n) if ((n) > XV_DENSE_PAR_MIN)

/* ---------------------------------------------------------------- a ∘ b */

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL } bin_kind;

/* y[i] = a[i] ∘ b[i] for i < n. */
static void binary_span(bin_kind kind, const float *a, const float *b, float *y, int64_t n) {
    switch (kind) {
    case BIN_ADD:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
        break;
    case BIN_SUB:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = a[i] - b[i];
        break;
    case BIN_MUL:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
        break;
    }
}

#define SPAN 4096 /* elements per parallel work item when the shapes are equal */

/* y = a ∘ b for `rows` rows of b's `nb` values (rows = 1 when the shapes are equal). */
static void binary_forward(bin_kind kind, const float *a, const float *b, float *y, int64_t rows,
                           int64_t nb) {
    if (rows == 1) {
        int64_t spans = (nb + SPAN - 1) / SPAN;
#pragma omp parallel for schedule(static) PAR_IF(nb)
        for (int64_t s = 0; s < spans; s++) {
            int64_t o = s * SPAN, len = nb - o < SPAN ? nb - o : SPAN;
            binary_span(kind, a + o, b + o, y + o, len);
        }
        return;
    }
#pragma omp parallel for schedule(static) PAR_IF(rows * nb)
    for (int64_t r = 0; r < rows; r++) binary_span(kind, a + r * nb, b, y + r * nb, nb);
}

static void binary_backward(xv_graph *g, xv_node *n) {
    xv_tensor *a = n->in[0], *b = n->in[1];
    bin_kind kind = (bin_kind)n->iarg[0];
    const float *dy = n->out->grad;
    int64_t nb = b->numel, rows = nb ? a->numel / nb : 0;
    if (a->requires_grad) {
        float *da = xv_grad(g, a);
        if (!da) return;
        if (kind == BIN_MUL) { /* da += dy·b */
#pragma omp parallel for schedule(static) PAR_IF(a->numel)
            for (int64_t r = 0; r < rows; r++) {
#pragma omp simd
                for (int64_t j = 0; j < nb; j++) da[r * nb + j] += dy[r * nb + j] * b->data[j];
            }
        } else {
#pragma omp parallel for simd schedule(static) PAR_IF(a->numel)
            for (int64_t i = 0; i < a->numel; i++) da[i] += dy[i];
        }
    }
    if (b->requires_grad) { /* sum over the broadcast rows */
        float *db = xv_grad(g, b);
        if (!db) return;
        xv_dense_colsum(dy, kind == BIN_MUL ? a->data : NULL, rows, nb, kind == BIN_SUB ? -1.0f : 1.0f,
                        db);
    }
}

static xv_tensor *binary_op(xv_graph *g, const char *op, bin_kind kind, xv_tensor *a, xv_tensor *b) {
    if (!g || !xv_dense_f32_arg(g, op, "a", a) || !xv_dense_f32_arg(g, op, "b", b)) return NULL;
    if (!xv_dense_suffix_shape(g, op, a, b)) return NULL;
    xv_tensor *y = xv_dense_new_like(g, a);
    if (!y) return NULL;
    int64_t nb = b->numel;
    if (nb > 0) binary_forward(kind, a->data, b->data, y->data, a->numel / nb, nb);
    xv_tensor *ins[2] = {a, b};
    xv_node *n = xv_record(g, op, y, binary_backward, ins, 2);
    if (n) n->iarg[0] = kind;
    return y;
}

xv_tensor *xv_add(xv_graph *g, xv_tensor *a, xv_tensor *b) { return binary_op(g, "xv_add", BIN_ADD, a, b); }
xv_tensor *xv_sub(xv_graph *g, xv_tensor *a, xv_tensor *b) { return binary_op(g, "xv_sub", BIN_SUB, a, b); }
xv_tensor *xv_mul(xv_graph *g, xv_tensor *a, xv_tensor *b) { return binary_op(g, "xv_mul", BIN_MUL, a, b); }

/* ---------------------------------------------------------------- alpha·x + beta */

static void scale_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0];
    float *dx = xv_grad(g, x);
    if (!dx) return;
    const float *dy = n->out->grad;
    float alpha = n->farg[0];
#pragma omp parallel for simd schedule(static) PAR_IF(x->numel)
    for (int64_t i = 0; i < x->numel; i++) dx[i] += alpha * dy[i];
}

xv_tensor *xv_scale(xv_graph *g, xv_tensor *x, float alpha, float beta) {
    if (!g || !xv_dense_f32_arg(g, "xv_scale", "x", x)) return NULL;
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
#pragma omp parallel for simd schedule(static) PAR_IF(x->numel)
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = alpha * x->data[i] + beta;
    xv_node *n = xv_record(g, "xv_scale", y, scale_backward, &x, 1);
    if (n) n->farg[0] = alpha;
    return y;
}

/* ---------------------------------------------------------------- x / s */

static void div_scalar_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0], *s = n->in[1];
    const float *dy = n->out->grad;
    float sv = s->data[0];
    if (x->requires_grad) {
        float *dx = xv_grad(g, x);
        if (!dx) return;
#pragma omp parallel for simd schedule(static) PAR_IF(x->numel)
        for (int64_t i = 0; i < x->numel; i++) dx[i] += dy[i] / sv;
    }
    if (s->requires_grad) { /* d(x/s)/ds = -x/s² */
        float *ds = xv_grad(g, s);
        if (!ds) return;
        double acc = 0;
        for (int64_t i = 0; i < x->numel; i++) acc += (double)dy[i] * x->data[i];
        ds[0] += (float)(-acc / ((double)sv * sv));
    }
}

xv_tensor *xv_div_scalar(xv_graph *g, xv_tensor *x, xv_tensor *s) {
    static const char op[] = "xv_div_scalar";
    if (!g || !xv_dense_f32_arg(g, op, "x", x) || !xv_dense_f32_arg(g, op, "s", s)) return NULL;
    if (s->numel != 1) {
        char ss[96];
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: divisor must have one element, got %s", op,
                             xv_shape_str(s, ss, sizeof ss));
    }
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
    float sv = s->data[0];
#pragma omp parallel for simd schedule(static) PAR_IF(x->numel)
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = x->data[i] / sv;
    xv_tensor *ins[2] = {x, s};
    xv_record(g, op, y, div_scalar_backward, ins, 2);
    return y;
}

/* ---------------------------------------------------------------- unary maps */

typedef enum { UN_GELU, UN_SIGMOID, UN_ABS } unary_kind;

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

static inline float sigmoid_f32(float x) {
    /* exp of a non-positive argument only: no overflow for large |x|. */
    float e = xv_exp_f32(x < 0 ? x : -x);
    return x < 0 ? e / (1.0f + e) : 1.0f / (1.0f + e);
}

void xv_dense_gelu(const float *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) PAR_IF(n)
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + xv_erf_f32(x[i] * INV_SQRT2));
}

/* d/dx x·Φ(x) = Φ(x) + x·φ(x) */
static inline float gelu_slope(float v) {
    float cdf = 0.5f * (1.0f + xv_erf_f32(v * INV_SQRT2));
    float pdf = INV_SQRT_2PI * xv_exp_f32(-0.5f * v * v);
    return cdf + v * pdf;
}

static void unary_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0];
    bool fresh; /* GELU is the first writer of dx (the fc1 output's gradient): it stores */
    float *dx = (unary_kind)n->iarg[0] == UN_GELU ? xv_grad_for_write(g, x, &fresh) : xv_grad(g, x);
    if (!dx) return;
    const float *dy = n->out->grad, *xd = x->data, *yd = n->out->data;
    int64_t cnt = x->numel;
    switch ((unary_kind)n->iarg[0]) {
    case UN_GELU:
        if (fresh) {
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
            for (int64_t i = 0; i < cnt; i++) dx[i] = dy[i] * gelu_slope(xd[i]);
        } else {
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
            for (int64_t i = 0; i < cnt; i++) dx[i] += dy[i] * gelu_slope(xd[i]);
        }
        break;
    case UN_SIGMOID:
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
        for (int64_t i = 0; i < cnt; i++) dx[i] += dy[i] * yd[i] * (1.0f - yd[i]);
        break;
    case UN_ABS:
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
        for (int64_t i = 0; i < cnt; i++)
            dx[i] += xd[i] > 0 ? dy[i] : (xd[i] < 0 ? -dy[i] : 0.0f);
        break;
    }
}

static xv_tensor *unary_op(xv_graph *g, const char *op, unary_kind kind, xv_tensor *x) {
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
    const float *xd = x->data;
    float *yd = y->data;
    int64_t cnt = x->numel;
    switch (kind) {
    case UN_GELU:
        xv_dense_gelu(xd, yd, cnt);
        break;
    case UN_SIGMOID:
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
        for (int64_t i = 0; i < cnt; i++) yd[i] = sigmoid_f32(xd[i]);
        break;
    case UN_ABS:
#pragma omp parallel for simd schedule(static) PAR_IF(cnt)
        for (int64_t i = 0; i < cnt; i++) yd[i] = fabsf(xd[i]);
        break;
    }
    xv_node *n = xv_record(g, op, y, unary_backward, &x, 1);
    if (n) n->iarg[0] = kind;
    return y;
}

xv_tensor *xv_gelu(xv_graph *g, xv_tensor *x) { return unary_op(g, "xv_gelu", UN_GELU, x); }
xv_tensor *xv_sigmoid(xv_graph *g, xv_tensor *x) { return unary_op(g, "xv_sigmoid", UN_SIGMOID, x); }
xv_tensor *xv_abs(xv_graph *g, xv_tensor *x) { return unary_op(g, "xv_abs", UN_ABS, x); }
