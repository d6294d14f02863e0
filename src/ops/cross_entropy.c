/* Cross-entropy losses on logits: hard targets with an ignore index (ITC, ITM,
 * MLM) and soft targets (ITC with same-image positives, captioning smoothing).
 * The per-row log-sum-exp is kept (double) for backward, which then needs one
 * exp per logit and no second reduction. */
#include <math.h>

#include "ops/op_args.h"
#include "ops/ops.h"

/* log(sum_c exp(x_c)), shifted by the max for range safety. The exps are
 * float (as PyTorch's), their sum double. */
static double row_logsumexp(const float *x, int64_t C) {
    float m = -INFINITY;
    for (int64_t c = 0; c < C; c++) m = x[c] > m ? x[c] : m;
    double s = 0;
    for (int64_t c = 0; c < C; c++) s += expf(x[c] - m);
    return m + log(s);
}

static bool check_logits(xv_graph *g, const char *op, const xv_tensor *logits) {
    if (!xv_arg_f32(g, op, "logits", logits)) return false;
    if (logits->ndim >= 1 && xv_last_dim(logits) > 0) return true;
    char buf[64];
    xv_graph_fail(g, XV_ERR_SHAPE, "%s: logits must be [..., C] with C > 0, got %s", op,
                  xv_shape_str(logits, buf, sizeof buf));
    return false;
}

/* One target per row of logits, each in [0, C) or the ignore index; *kept
 * counts the rows not ignored. */
static bool check_targets(xv_graph *g, const char *op, const xv_tensor *logits, const xv_tensor *targets,
                          int ignore_index, int64_t *kept) {
    if (!xv_arg_i32(g, op, "targets", targets)) return false;
    int64_t C = xv_last_dim(logits), N = logits->numel / C;
    char bl[64];
    if (targets->numel != N) {
        xv_graph_fail(g, XV_ERR_SHAPE, "%s: %lld targets for logits %s (%lld rows)", op, (long long)targets->numel,
                      xv_shape_str(logits, bl, sizeof bl), (long long)N);
        return false;
    }
    *kept = 0;
    for (int64_t n = 0; n < N; n++) {
        int32_t t = targets->idata[n];
        if (t == ignore_index) continue;
        if (t < 0 || t >= C) {
            xv_graph_fail(g, XV_ERR_INVALID_ARG,
                          "%s: target %d of row %lld is outside [0, %lld) and is not the ignore index %d", op, (int)t,
                          (long long)n, (long long)C, ignore_index);
            return false;
        }
        (*kept)++;
    }
    return true;
}

/* ---------------------------------------------------------------- backward */

/* The three losses differ in their targets; the backward of each row needs
 * p = softmax(x_n) = exp(x - lse_n) and those targets. */
typedef enum { CE_HARD, CE_SOFT, CE_TOKEN } ce_kind;

typedef struct {
    ce_kind kind;
    const xv_tensor *targets; /* CE_HARD, CE_TOKEN: [N] class ids */
    const xv_tensor *y;       /* CE_SOFT: [N, C] target weights */
    double *lse;              /* [N] */
    int64_t count;            /* CE_HARD: rows whose target is not ignored */
    int ignore_index;
    double eps; /* CE_TOKEN: label smoothing */
} ce_saved;

static float row_prob(const float *x, double lse, int64_t c) { return expf((float)((double)x[c] - lse)); }

/* Row n's gradient into d. `scale` is d(loss)/d(mean) / rows (CE_HARD, CE_SOFT). */
static void row_backward(const ce_saved *s, const float *gout, double scale, int64_t n, const float *x, int64_t C,
                         float *d) {
    const double lse = s->lse[n];
    if (s->kind == CE_SOFT) {
        /* d loss / d x[n, c] = (softmax(x_n)_c · sum_c' y[n, c'] - y[n, c]) / N; the
         * row sum of y need not be 1 (label smoothing 0.9 + 0.1/V). */
        const float *y = s->y->data + n * C;
        double ysum = 0;
        for (int64_t c = 0; c < C; c++) ysum += y[c];
        for (int64_t c = 0; c < C; c++) d[c] += (float)(scale * (row_prob(x, lse, c) * ysum - y[c]));
        return;
    }
    int32_t t = s->targets->idata[n];
    if (t == s->ignore_index) return;
    if (s->kind == CE_HARD) {
        /* d loss / d x[n, c] = (softmax(x_n)_c - [c == t_n]) / count for kept rows. */
        for (int64_t c = 0; c < C; c++) d[c] += (float)(scale * row_prob(x, lse, c));
        d[t] -= (float)scale;
        return;
    }
    /* CE_TOKEN: loss_n = -sum_c w_c·log p_c with w_t = 1-eps, w_c = eps/C
     * otherwise: d loss_n / d x_c = p_c·sum(w) - w_c. */
    double go = gout[n];
    if (go == 0) return;
    const double off = s->eps / (double)C, on = 1.0 - s->eps, wsum = on + off * (double)(C - 1);
    for (int64_t c = 0; c < C; c++) d[c] += (float)(go * (row_prob(x, lse, c) * wsum - (c == t ? on : off)));
}

static void cross_entropy_backward(xv_graph *g, xv_node *node) {
    xv_tensor *logits = node->in[0];
    const ce_saved *s = node->saved;
    if (s->kind == CE_HARD && s->count == 0) return; /* constant 0: no gradient */
    int64_t C = xv_last_dim(logits), N = logits->numel / C;
    float *gx = xv_grad(g, logits);
    if (!gx) return;
    const float *gout = node->out->grad;
    double scale = s->kind == CE_TOKEN ? 0 : (double)gout[0] / (double)(s->kind == CE_HARD ? s->count : N);
#pragma omp parallel for schedule(static) if (logits->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) row_backward(s, gout, scale, n, logits->data + n * C, C, gx + n * C);
}

/* ---------------------------------------------------------------- hard targets */

xv_tensor *xv_cross_entropy(xv_graph *g, xv_tensor *logits, xv_tensor *targets, int ignore_index) {
    static const char op[] = "cross_entropy";
    int64_t count;
    if (!check_logits(g, op, logits) || !check_targets(g, op, logits, targets, ignore_index, &count)) return NULL;
    int64_t C = xv_last_dim(logits), N = logits->numel / C;
    double *lse = xv_graph_alloc(g, sizeof(double) * (size_t)(N ? N : 1));
    double *row_loss = xv_graph_alloc(g, sizeof(double) * (size_t)(N ? N : 1));
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(1));
    if (!lse || !row_loss || !out) return NULL;
#pragma omp parallel for schedule(static) if (logits->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        int32_t t = targets->idata[n];
        if (t == ignore_index) {
            row_loss[n] = 0;
            continue;
        }
        const float *x = logits->data + n * C;
        lse[n] = row_logsumexp(x, C);
        row_loss[n] = lse[n] - x[t];
    }
    double total = 0; /* summed in row order: deterministic for any thread count */
    for (int64_t n = 0; n < N; n++) total += row_loss[n];
    /* Every row ignored: 0 (PyTorch would return 0/0 = NaN). */
    out->data[0] = count ? (float)(total / (double)count) : 0.0f;

    const ce_saved s = {.kind = CE_HARD, .targets = targets, .lse = lse, .count = count, .ignore_index = ignore_index};
    return xv_record_saved(g, op, out, cross_entropy_backward, &logits, 1, &s, sizeof s) ? out : NULL;
}

/* ---------------------------------------------------------------- soft targets */

xv_tensor *xv_cross_entropy_soft(xv_graph *g, xv_tensor *logits, xv_tensor *y) {
    static const char op[] = "cross_entropy_soft";
    if (!check_logits(g, op, logits) || !xv_arg_f32(g, op, "y", y)) return NULL;
    char bl[64], by[64];
    if (!xv_same_shape(logits, y))
        return xv_graph_fail(g, XV_ERR_SHAPE, "cross_entropy_soft: y %s must have the shape of logits %s",
                             xv_shape_str(y, by, sizeof by), xv_shape_str(logits, bl, sizeof bl));
    int64_t C = xv_last_dim(logits), N = logits->numel / C;
    double *lse = xv_graph_alloc(g, sizeof(double) * (size_t)(N ? N : 1));
    double *row_loss = xv_graph_alloc(g, sizeof(double) * (size_t)(N ? N : 1));
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(1));
    if (!lse || !row_loss || !out) return NULL;
#pragma omp parallel for schedule(static) if (logits->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits->data + n * C, *yr = y->data + n * C;
        lse[n] = row_logsumexp(x, C);
        double l = 0;
        for (int64_t c = 0; c < C; c++) l -= (double)yr[c] * ((double)x[c] - lse[n]);
        row_loss[n] = l;
    }
    double total = 0;
    for (int64_t n = 0; n < N; n++) total += row_loss[n];
    out->data[0] = N ? (float)(total / (double)N) : 0.0f;

    const ce_saved s = {.kind = CE_SOFT, .y = y, .lse = lse};
    return xv_record_saved(g, op, out, cross_entropy_backward, &logits, 1, &s, sizeof s) ? out : NULL;
}

/* ---------------------------------------------------------------- per-token losses */

xv_tensor *xv_token_cross_entropy(xv_graph *g, xv_tensor *logits, xv_tensor *targets, int ignore_index,
                                  float smoothing) {
    static const char op[] = "token_cross_entropy";
    int64_t kept;
    if (!check_logits(g, op, logits) || !check_targets(g, op, logits, targets, ignore_index, &kept)) return NULL;
    if (!(smoothing >= 0 && smoothing < 1))
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: label smoothing %g outside [0, 1)", op, smoothing);
    int64_t C = xv_last_dim(logits), N = logits->numel / C;
    double *lse = xv_graph_alloc(g, sizeof(double) * (size_t)(N ? N : 1));
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(N));
    if (!lse || !out) return NULL;
    const double eps = smoothing, off = eps / (double)C, on = 1.0 - eps;
#pragma omp parallel for schedule(static) if (logits->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t n = 0; n < N; n++) {
        int32_t t = targets->idata[n];
        if (t == ignore_index) {
            out->data[n] = 0.0f;
            continue;
        }
        const float *x = logits->data + n * C;
        lse[n] = row_logsumexp(x, C);
        double l = on * (lse[n] - x[t]);
        if (eps > 0) {
            double rest = 0; /* sum over c != t of -log p_c */
            for (int64_t c = 0; c < C; c++)
                if (c != t) rest += lse[n] - x[c];
            l += off * rest;
        }
        out->data[n] = (float)l;
    }
    const ce_saved s = {.kind = CE_TOKEN, .targets = targets, .lse = lse, .ignore_index = ignore_index, .eps = eps};
    return xv_record_saved(g, op, out, cross_entropy_backward, &logits, 1, &s, sizeof s) ? out : NULL;
}
