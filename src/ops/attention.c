/* Fused scaled-dot-product attention over (batch, head) pairs.
 *
 * For each pair, with Q, K, V the head's column blocks (read in place: the
 * row stride is heads·D, no copies of K or V):
 *   S = (scale·Q)·Kᵀ + bias[h] + group_mask[b % G] + key_mask[b]   (in that order)
 *   P = softmax_rows(S),  P̃ = dropout(P),  O = P̃·V  -> out[b, :, h·Dv:(h+1)·Dv]
 * Pairs run in parallel (static schedule; the BLAS calls inside are single-
 * threaded), each in its own scratch. Dropout keeps element e of P (flat index
 * in [B, heads, Lq, Lk]) by Philox counter base + e/4, lane e%4, so the mask
 * does not depend on scheduling and backward recomputes it instead of storing it.
 *
 * Recording: one node normally. With probs_out, two nodes (probabilities, then
 * context) so that P is an ordinary recorded tensor: its gradient collects
 * dL/dP from the context and from any other consumer, and stays readable. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "ops/dense_internal.h"
#include "ops/fastmath.h"
#include "ops/ops.h"

typedef struct {
    int64_t B, Lq, Lk, H, D, Dv, G;
    float scale;
    float drop;          /* 0 when not training */
    uint64_t key, base;  /* dropout stream */
    xv_tensor *q, *k, *v, *bias;
    const float *key_mask, *group_mask;
    float *probs;        /* [B, H, Lq, Lk], NULL in inference (P lives in scratch) */
    const float *zeros;  /* Lk zeros standing in for absent masks */
    xv_tensor *probs_t;  /* the recorded probabilities (two-node mode) */
    int64_t scratch;     /* floats of scratch per thread */
} attn_plan;

/* Per-thread scratch: Qs [Lq, D] then two [Lq, Lk] matrices, each 64-byte aligned. */
static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }
static float *scratch_qs(const attn_plan *a, float *s) { (void)a; return s; }
static float *scratch_mat(const attn_plan *a, float *s, int i) {
    return s + pad16(a->Lq * a->D) + i * pad16(a->Lq * a->Lk);
}

static const float *q_head(const attn_plan *a, int64_t b, int64_t h) {
    return a->q->data + b * a->Lq * a->H * a->D + h * a->D;
}
static const float *k_head(const attn_plan *a, int64_t b, int64_t h) {
    return a->k->data + b * a->Lk * a->H * a->D + h * a->D;
}
static const float *v_head(const attn_plan *a, int64_t b, int64_t h) {
    return a->v->data + b * a->Lk * a->H * a->Dv + h * a->Dv;
}

/* Qs = scale·Q (scaling q before the product rounds exactly as the official code). */
static void scaled_q(const attn_plan *a, int64_t b, int64_t h, float *qs) {
    const float *q = q_head(a, b, h);
    int64_t D = a->D, ld = a->H * a->D;
    for (int64_t i = 0; i < a->Lq; i++) {
#pragma omp simd
        for (int64_t d = 0; d < D; d++) qs[i * D + d] = a->scale * q[i * ld + d];
    }
}

/* dst = src·keep/(1-p) with the pair's dropout mask (dst may equal src). */
static void dropout_pair(const attn_plan *a, int64_t pair, const float *src, float *dst) {
    int64_t n = a->Lq * a->Lk, e0 = pair * n;
    float inv_keep = 1.0f / (1.0f - a->drop);
    uint32_t bits[4];
    int64_t have = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = e0 + i;
        if (e / 4 != have) {
            have = e / 4;
            xv_philox(a->key, a->base + (uint64_t)have, bits);
        }
        float u = (float)(bits[e % 4] >> 8) * (1.0f / 16777216.0f);
        dst[i] = u < a->drop ? 0.0f : src[i] * inv_keep;
    }
}

/* P (the pair's [Lq, Lk] block) = softmax(scale·Q·Kᵀ + masks). */
static void probs_pair(const attn_plan *a, int64_t b, int64_t h, float *qs, float *p) {
    int64_t Lq = a->Lq, Lk = a->Lk;
    scaled_q(a, b, h, qs);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Lq, (int)Lk, (int)a->D, 1.0f, qs,
                (int)a->D, k_head(a, b, h), (int)(a->H * a->D), 0.0f, p, (int)Lk);
    /* Absent masks read a row of zeros (adding +0 is exact), so one fused pass
     * adds all three in the official order and finds the row maximum. */
    const float *bias = a->bias ? a->bias->data + h * Lq * Lk : a->zeros;
    const float *gm = a->group_mask ? a->group_mask + (b % a->G) * Lq * Lk : a->zeros;
    const float *km = a->key_mask ? a->key_mask + b * Lk : a->zeros;
    int64_t step = a->bias ? Lk : 0, gstep = a->group_mask ? Lk : 0;
    for (int64_t i = 0; i < Lq; i++) {
        float *row = p + i * Lk;
        const float *br = bias + i * step, *gr = gm + i * gstep;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < Lk; j++) {
            float v = ((row[j] + br[j]) + gr[j]) + km[j];
            row[j] = v;
            mx = v > mx ? v : mx;
        }
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < Lk; j++) {
            row[j] = xv_exp_f32(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < Lk; j++) row[j] *= inv;
    }
}

/* out head block = dropout(P)·V. */
static void context_pair(const attn_plan *a, int64_t b, int64_t h, const float *p, float *pd, float *out) {
    if (a->drop > 0) {
        dropout_pair(a, b * a->H + h, p, pd);
        p = pd;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a->Lq, (int)a->Dv, (int)a->Lk, 1.0f, p,
                (int)a->Lk, v_head(a, b, h), (int)(a->H * a->Dv), 0.0f,
                out + b * a->Lq * a->H * a->Dv + h * a->Dv, (int)(a->H * a->Dv));
}

/* Backward through O = dropout(P)·V: dV += P̃ᵀ·dO; dP = mask(dO·Vᵀ), stored into
 * dp (accumulate = false) or added to it (accumulate = true). dv / dp may be NULL. */
static void context_backward_pair(const attn_plan *a, int64_t b, int64_t h, const float *p, const float *dout,
                                  float *dv, float *dp, bool accumulate, float *tmp) {
    int64_t Lq = a->Lq, Lk = a->Lk, Dv = a->Dv, ldv = a->H * Dv;
    const float *dO = dout + b * Lq * ldv + h * Dv;
    int64_t pair = b * a->H + h;
    if (dv) {
        const float *pd = p;
        if (a->drop > 0) {
            dropout_pair(a, pair, p, tmp);
            pd = tmp;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Lk, (int)Dv, (int)Lq, 1.0f, pd, (int)Lk,
                    dO, (int)ldv, 1.0f, dv + b * Lk * ldv + h * Dv, (int)ldv);
    }
    if (!dp) return;
    const float *vh = v_head(a, b, h);
    if (!accumulate || a->drop == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Lq, (int)Lk, (int)Dv, 1.0f, dO, (int)ldv, vh,
                    (int)ldv, accumulate ? 1.0f : 0.0f, dp, (int)Lk);
        if (a->drop > 0) dropout_pair(a, pair, dp, dp);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Lq, (int)Lk, (int)Dv, 1.0f, dO, (int)ldv, vh,
                (int)ldv, 0.0f, tmp, (int)Lk);
    dropout_pair(a, pair, tmp, tmp);
#pragma omp simd
    for (int64_t i = 0; i < Lq * Lk; i++) dp[i] += tmp[i];
}

/* Backward through P = softmax(scale·Q·Kᵀ + masks) given dL/dP: ds = dS (may
 * alias dp), dbias_acc[h] += dS, dq += scale·dS·K, dk += dSᵀ·(scale·Q). */
static void probs_backward_pair(const attn_plan *a, int64_t b, int64_t h, const float *p, const float *dp,
                                float *ds, float *qs, float *dq, float *dk, float *dbias_acc) {
    int64_t Lq = a->Lq, Lk = a->Lk, D = a->D, ld = a->H * D;
    float *acc = dbias_acc ? dbias_acc + h * Lq * Lk : NULL;
    for (int64_t i = 0; i < Lq; i++) {
        const float *pr = p + i * Lk, *dpr = dp + i * Lk;
        float *dsr = ds + i * Lk;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < Lk; j++) dot += pr[j] * dpr[j];
        if (acc) {
            float *ar = acc + i * Lk;
#pragma omp simd
            for (int64_t j = 0; j < Lk; j++) {
                dsr[j] = pr[j] * (dpr[j] - dot);
                ar[j] += dsr[j];
            }
        } else {
#pragma omp simd
            for (int64_t j = 0; j < Lk; j++) dsr[j] = pr[j] * (dpr[j] - dot);
        }
    }
    if (dq)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Lq, (int)D, (int)Lk, a->scale, ds, (int)Lk,
                    k_head(a, b, h), (int)ld, 1.0f, dq + b * Lq * ld + h * D, (int)ld);
    if (dk) {
        scaled_q(a, b, h, qs);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Lk, (int)D, (int)Lq, 1.0f, ds, (int)Lk, qs,
                    (int)D, 1.0f, dk + b * a->Lk * ld + h * D, (int)ld);
    }
}

/* ---------------------------------------------------------------- backward drivers */

typedef struct {
    float *dq, *dk, *dv, *dbias;
    float *dbias_parts; /* [threads, H, Lq, Lk] per-thread partial sums */
    float *scratch;     /* [threads, plan->scratch] */
    int threads;
} attn_grads;

/* Gradient buffers of whichever inputs need them, and per-thread scratch. */
static bool grads_begin(xv_graph *g, const attn_plan *a, bool want_qk, bool want_v, attn_grads *gr) {
    memset(gr, 0, sizeof *gr);
    gr->threads = omp_get_max_threads();
    if (want_qk && a->q->requires_grad) gr->dq = xv_grad(g, a->q);
    if (want_qk && a->k->requires_grad) gr->dk = xv_grad(g, a->k);
    if (want_v && a->v->requires_grad) gr->dv = xv_grad(g, a->v);
    if (want_qk && a->bias && a->bias->requires_grad) {
        gr->dbias = xv_grad(g, a->bias);
        gr->dbias_parts = xv_graph_calloc(g, sizeof(float) * (size_t)(gr->threads * a->H * a->Lq * a->Lk));
    }
    gr->scratch = xv_graph_alloc(g, sizeof(float) * (size_t)(gr->threads * a->scratch));
    return xv_graph_status(g) == XV_OK;
}

/* dbias += Σ_threads partials, in thread order (bitwise stable for a thread count). */
static void grads_end(const attn_plan *a, attn_grads *gr) {
    if (!gr->dbias) return;
    int64_t n = a->H * a->Lq * a->Lk;
    for (int t = 0; t < gr->threads; t++) {
        const float *part = gr->dbias_parts + t * n;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) gr->dbias[i] += part[i];
    }
}

static void attention_fused_backward(xv_graph *g, xv_node *n) {
    const attn_plan *a = n->saved;
    attn_grads gr;
    if (!grads_begin(g, a, true, true, &gr)) return;
    bool need_dp = gr.dq || gr.dk || gr.dbias;
    const float *dout = n->out->grad;
    int64_t pairs = a->B * a->H;
#pragma omp parallel for schedule(static) if (pairs > 1)
    for (int64_t t = 0; t < pairs; t++) {
        int tid = omp_get_thread_num();
        float *s = gr.scratch + tid * a->scratch;
        int64_t b = t / a->H, h = t % a->H;
        const float *p = a->probs + t * a->Lq * a->Lk;
        float *dp = scratch_mat(a, s, 0);
        context_backward_pair(a, b, h, p, dout, gr.dv, need_dp ? dp : NULL, false, scratch_mat(a, s, 1));
        if (need_dp)
            probs_backward_pair(a, b, h, p, dp, dp, scratch_qs(a, s), gr.dq, gr.dk,
                                gr.dbias ? gr.dbias_parts + tid * a->H * a->Lq * a->Lk : NULL);
    }
    grads_end(a, &gr);
}

/* Two-node mode, context part: dV, and dL/dP added into the probabilities' gradient. */
static void attention_context_backward(xv_graph *g, xv_node *n) {
    const attn_plan *a = n->saved;
    attn_grads gr;
    if (!grads_begin(g, a, false, true, &gr)) return;
    float *dprobs = a->probs_t->requires_grad ? xv_grad(g, a->probs_t) : NULL;
    if (xv_graph_status(g) != XV_OK) return;
    const float *dout = n->out->grad;
    int64_t pairs = a->B * a->H;
#pragma omp parallel for schedule(static) if (pairs > 1)
    for (int64_t t = 0; t < pairs; t++) {
        float *s = gr.scratch + omp_get_thread_num() * a->scratch;
        int64_t b = t / a->H, h = t % a->H, off = t * a->Lq * a->Lk;
        context_backward_pair(a, b, h, a->probs + off, dout, gr.dv, dprobs ? dprobs + off : NULL, true,
                              scratch_mat(a, s, 1));
    }
}

/* Two-node mode, probabilities part: from dL/dP (all consumers) to q, k, bias. */
static void attention_probs_backward(xv_graph *g, xv_node *n) {
    const attn_plan *a = n->saved;
    attn_grads gr;
    if (!grads_begin(g, a, true, false, &gr)) return;
    const float *dprobs = n->out->grad;
    int64_t pairs = a->B * a->H;
#pragma omp parallel for schedule(static) if (pairs > 1)
    for (int64_t t = 0; t < pairs; t++) {
        int tid = omp_get_thread_num();
        float *s = gr.scratch + tid * a->scratch;
        int64_t b = t / a->H, h = t % a->H, off = t * a->Lq * a->Lk;
        probs_backward_pair(a, b, h, a->probs + off, dprobs + off, scratch_mat(a, s, 0), scratch_qs(a, s),
                            gr.dq, gr.dk, gr.dbias ? gr.dbias_parts + tid * a->H * a->Lq * a->Lk : NULL);
    }
    grads_end(a, &gr);
}

/* ---------------------------------------------------------------- forward */

static bool check_mask(xv_graph *g, const char *what, const xv_tensor *m, int64_t d0, int64_t d1, int64_t d2,
                       int ndim) {
    if (!xv_dense_f32_arg(g, "xv_attention", what, m)) return false;
    int64_t want[3] = {d0, d1, d2};
    bool ok = m->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 ? m->shape[i] > 0 : m->shape[i] == want[i];
    if (!ok) {
        char sm[96];
        xv_graph_fail(g, XV_ERR_SHAPE, "xv_attention: %s has shape %s, want %s", what,
                      xv_shape_str(m, sm, sizeof sm),
                      ndim == 2 ? "[B, Lk]" : (d0 < 0 ? "[G, Lq, Lk]" : "[heads, Lq, Lk]"));
    }
    return ok;
}

/* Validates the arguments and fills the plan's shapes. */
static bool plan_shapes(xv_graph *g, xv_tensor *q, xv_tensor *k, xv_tensor *v, const xv_attn_args *args,
                        attn_plan *a) {
    static const char op[] = "xv_attention";
    if (!xv_dense_f32_arg(g, op, "q", q) || !xv_dense_f32_arg(g, op, "k", k) || !xv_dense_f32_arg(g, op, "v", v))
        return false;
    if (!args) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: args is NULL", op);
        return false;
    }
    char sq[96], sk[96], sv[96];
    int64_t H = args->heads;
    bool ok = H > 0 && q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && k->shape[0] == q->shape[0] &&
              v->shape[0] == q->shape[0] && v->shape[1] == k->shape[1] && q->shape[2] == k->shape[2] &&
              q->shape[2] % H == 0 && v->shape[2] % H == 0;
    if (!ok) {
        xv_graph_fail(g, XV_ERR_SHAPE,
                      "%s: q %s, k %s, v %s with %d heads: want q [B, Lq, heads·D], k [B, Lk, heads·D], "
                      "v [B, Lk, heads·Dv]",
                      op, xv_shape_str(q, sq, sizeof sq), xv_shape_str(k, sk, sizeof sk),
                      xv_shape_str(v, sv, sizeof sv), args->heads);
        return false;
    }
    if (q->shape[1] == 0 || k->shape[1] == 0 || q->shape[2] == 0 || v->shape[2] == 0) {
        xv_graph_fail(g, XV_ERR_SHAPE, "%s: empty sequence or head dim: q %s, k %s, v %s", op,
                      xv_shape_str(q, sq, sizeof sq), xv_shape_str(k, sk, sizeof sk),
                      xv_shape_str(v, sv, sizeof sv));
        return false;
    }
    *a = (attn_plan){.B = q->shape[0], .Lq = q->shape[1], .Lk = k->shape[1], .H = H, .D = q->shape[2] / H,
                     .Dv = v->shape[2] / H, .G = 1, .scale = args->scale, .q = q, .k = k, .v = v};
    if (a->Lq * a->H * a->D > INT32_MAX || a->Lk * a->H * a->Dv > INT32_MAX || a->Lq * a->Lk > INT32_MAX) {
        xv_graph_fail(g, XV_ERR_UNSUPPORTED, "%s: dims beyond 32-bit BLAS indices", op);
        return false;
    }
    if (args->key_mask) {
        if (!check_mask(g, "key_mask", args->key_mask, a->B, a->Lk, 0, 2)) return false;
        a->key_mask = args->key_mask->data;
    }
    if (args->group_mask) {
        if (!check_mask(g, "group_mask", args->group_mask, -1, a->Lq, a->Lk, 3)) return false;
        a->group_mask = args->group_mask->data;
        a->G = args->group_mask->shape[0];
    }
    if (args->bias) {
        if (!check_mask(g, "bias", args->bias, H, a->Lq, a->Lk, 3)) return false;
        a->bias = args->bias;
    }
    if (!(args->dropout >= 0 && args->dropout < 1)) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: dropout %g outside [0, 1)", op, args->dropout);
        return false;
    }
    return true;
}

xv_tensor *xv_attention(xv_graph *g, xv_tensor *q, xv_tensor *k, xv_tensor *v, const xv_attn_args *args) {
    if (!g) return NULL;
    attn_plan plan;
    if (!plan_shapes(g, q, k, v, args, &plan)) return NULL;
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(plan.B, plan.Lq, plan.H * plan.Dv));
    if (!out) return NULL;

    xv_tensor *qkb[3] = {q, k, plan.bias}, *all[4] = {q, k, v, plan.bias};
    bool record = xv_needs_grad(g, all, 4);
    bool two_nodes = args->probs_out != NULL;
    int64_t pairs = plan.B * plan.H, pn = plan.Lq * plan.Lk;
    if (xv_graph_training(g) && args->dropout > 0) {
        plan.drop = args->dropout;
        plan.key = xv_graph_rng(g)->key;
        plan.base = xv_rng_reserve(xv_graph_rng(g), (uint64_t)(pairs * pn + 3) / 4);
    }
    plan.scratch = pad16(plan.Lq * plan.D) + 2 * pad16(pn);
    plan.zeros = xv_graph_calloc(g, sizeof(float) * (size_t)plan.Lk);
    if (!plan.zeros) return NULL;
    if (record || two_nodes) {
        plan.probs_t = xv_tensor_new(g, XV_F32, XV_SHAPE(plan.B, plan.H, plan.Lq, plan.Lk));
        if (!plan.probs_t) return NULL;
        plan.probs = plan.probs_t->data;
    }
    int threads = omp_get_max_threads();
    float *scratch = xv_graph_alloc(g, sizeof(float) * (size_t)(threads * plan.scratch));
    if (!scratch) return NULL;

#pragma omp parallel for schedule(static) if (pairs > 1)
    for (int64_t t = 0; t < pairs; t++) {
        float *s = scratch + omp_get_thread_num() * plan.scratch;
        int64_t b = t / plan.H, h = t % plan.H;
        float *p = plan.probs ? plan.probs + t * pn : scratch_mat(&plan, s, 0);
        probs_pair(&plan, b, h, scratch_qs(&plan, s), p);
        context_pair(&plan, b, h, p, scratch_mat(&plan, s, 1), out->data);
    }

    if (!two_nodes) {
        xv_node *n = xv_record(g, "xv_attention", out, attention_fused_backward, all, 4);
        if (n) {
            attn_plan *saved = xv_graph_alloc(g, sizeof *saved);
            if (!saved) return NULL;
            *saved = plan;
            n->saved = saved;
        }
        return out;
    }
    attn_plan *saved = record ? xv_graph_alloc(g, sizeof *saved) : NULL;
    if (record && !saved) return NULL;
    if (saved) *saved = plan;
    xv_node *np = xv_record(g, "xv_attention_probs", plan.probs_t, attention_probs_backward, qkb, 3);
    if (np) np->saved = saved;
    xv_tensor *pv[2] = {plan.probs_t, v};
    xv_node *nc = xv_record(g, "xv_attention_context", out, attention_context_backward, pv, 2);
    if (nc) nc->saved = saved;
    *args->probs_out = plan.probs_t;
    return out;
}
