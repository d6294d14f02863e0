/* Fused scaled-dot-product attention over (batch, head) pairs.
 *
 * For each pair, with Q, K, V the head's column blocks (K and V read in place:
 * row stride heads·D, or 3·heads·D within a packed qkv; no copies):
 *   S = (scale·Q)·Kᵀ + bias[h] + group_mask[b % G] + key_mask[b]   (in that order)
 *   P = softmax_rows(S),  P̃ = dropout(P),  O = P̃·V  -> out[b, :, h·Dv:(h+1)·Dv]
 *
 * Internally every [Lq, Lk] matrix of a pair is held transposed, [Lk, Lq]:
 * Sᵀ = K·(scale·Q)ᵀ is a plain NN product (the scaled copy of Q is written
 * transposed for free), the softmax over keys becomes elementwise work across
 * the Lq columns (no horizontal reductions), and the other products but one
 * (V·dOᵀ) are NN or TN, the layouts OpenBLAS's small-matrix kernels run
 * fastest (forward 1.25-1.5x faster than with row-major S; bench_attention).
 * Pairs run in parallel in chunks (see ATTN_CHUNKS; the BLAS calls inside are
 * single-threaded), each thread in its own scratch. Dropout keeps element e of
 * P (flat index in [B, heads, Lq, Lk]) by Philox counter base + e/4, lane e%4,
 * so the mask does not depend on scheduling and backward recomputes it
 * instead of storing it.
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
    /* Row strides of q, k, v and where their heads start in a row: H·D (H·Dv)
     * and 0 for separate tensors; 3·H·D and 0, H·D, 2·H·D for one packed qkv. */
    int64_t ldq, ldk, ldv, offq, offk, offv;
    float scale;
    float drop;            /* 0 when not training */
    uint64_t key, base;    /* dropout stream */
    xv_tensor *q, *k, *v, *bias;
    const float *key_mask; /* [B, Lk] or NULL */
    const float *bias_t;   /* [H, Lk, Lq]: bias transposed, or NULL */
    const float *group_t;  /* [G, Lk, Lq]: group mask transposed, or NULL */
    const float *zeros;    /* Lq zeros standing in for an absent mask row */
    float *probs_t;        /* [B, H, Lk, Lq] probabilities, kept for backward (else NULL) */
    xv_tensor *probs;      /* [B, H, Lq, Lk] the recorded probabilities (two-node mode) */
    int64_t scratch;       /* floats of scratch per thread */
} attn_plan;

/* Per-thread scratch: a [Lq, D] copy of Q, two [Lk, Lq] matrices and two Lq
 * vectors, each 64-byte aligned. */
static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }
static float *scratch_q(float *s) { return s; }
static float *scratch_mat(const attn_plan *a, float *s, int i) {
    return s + pad16(a->Lq * a->D) + i * pad16(a->Lk * a->Lq);
}
static float *scratch_vec(const attn_plan *a, float *s) { return scratch_mat(a, s, 2); }

/* Head h of batch b in q, k, v (or in their gradients: same layout). */
static int64_t q_at(const attn_plan *a, int64_t b, int64_t h) { return a->offq + b * a->Lq * a->ldq + h * a->D; }
static int64_t k_at(const attn_plan *a, int64_t b, int64_t h) { return a->offk + b * a->Lk * a->ldk + h * a->D; }
static int64_t v_at(const attn_plan *a, int64_t b, int64_t h) { return a->offv + b * a->Lk * a->ldv + h * a->Dv; }
static const float *q_head(const attn_plan *a, int64_t b, int64_t h) { return a->q->data + q_at(a, b, h); }
static const float *k_head(const attn_plan *a, int64_t b, int64_t h) { return a->k->data + k_at(a, b, h); }
static const float *v_head(const attn_plan *a, int64_t b, int64_t h) { return a->v->data + v_at(a, b, h); }

/* dst[c·rows + r] = src[r·ld + c] for a rows x cols block (dst dense). */
static void transpose(const float *src, int64_t rows, int64_t cols, int64_t ld, float *dst) {
    for (int64_t r0 = 0; r0 < rows; r0 += 16)
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows, c1 = c0 + 16 < cols ? c0 + 16 : cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * ld + c];
        }
}

/* scale·Q, scaled before the product as the official code does, either as
 * [Lq, D] or transposed [D, Lq]. */
static void scaled_q(const attn_plan *a, int64_t b, int64_t h, float *qs, bool transposed) {
    const float *q = q_head(a, b, h);
    int64_t Lq = a->Lq, D = a->D, ld = a->ldq;
    float sc = a->scale;
    if (transposed) {
        for (int64_t d = 0; d < D; d++) {
            float *row = qs + d * Lq;
#pragma omp simd
            for (int64_t i = 0; i < Lq; i++) row[i] = sc * q[i * ld + d];
        }
        return;
    }
    for (int64_t i = 0; i < Lq; i++) {
#pragma omp simd
        for (int64_t d = 0; d < D; d++) qs[i * D + d] = sc * q[i * ld + d];
    }
}

/* dst = src·keep/(1-p) with the pair's dropout mask, both [Lk, Lq] (dst may be src). */
static void dropout_pair(const attn_plan *a, int64_t pair, const float *src, float *dst) {
    int64_t Lq = a->Lq, Lk = a->Lk, e0 = pair * Lq * Lk;
    float inv_keep = 1.0f / (1.0f - a->drop);
    uint32_t bits[4];
    int64_t have = -1;
    for (int64_t i = 0; i < Lq; i++)
        for (int64_t j = 0; j < Lk; j++) {
            int64_t e = e0 + i * Lk + j;
            if (e / 4 != have) {
                have = e / 4;
                xv_philox(a->key, a->base + (uint64_t)have, bits);
            }
            float u = (float)(bits[e % 4] >> 8) * (1.0f / 16777216.0f);
            dst[j * Lq + i] = u < a->drop ? 0.0f : src[j * Lq + i] * inv_keep;
        }
}

/* Pᵀ of the pair: Sᵀ = K·(scale·Q)ᵀ, masks added, softmax down each column. */
static void probs_pair(const attn_plan *a, int64_t b, int64_t h, float *qst, float *pt, float *vec) {
    int64_t Lq = a->Lq, Lk = a->Lk;
    scaled_q(a, b, h, qst, true);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Lk, (int)Lq, (int)a->D, 1.0f, k_head(a, b, h),
                (int)a->ldk, qst, (int)Lq, 0.0f, pt, (int)Lq);
    /* Absent masks read zeros (adding +0 is exact). */
    const float *bias = a->bias_t ? a->bias_t + h * Lk * Lq : a->zeros;
    const float *gm = a->group_t ? a->group_t + (b % a->G) * Lk * Lq : a->zeros;
    int64_t bstep = a->bias_t ? Lq : 0, gstep = a->group_t ? Lq : 0;
    float *mx = vec, *sum = vec + pad16(Lq);
    for (int64_t i = 0; i < Lq; i++) mx[i] = -INFINITY, sum[i] = 0.0f;
    for (int64_t j = 0; j < Lk; j++) {
        float *x = pt + j * Lq;
        const float *br = bias + j * bstep, *gr = gm + j * gstep;
        float km = a->key_mask ? a->key_mask[b * Lk + j] : 0.0f;
#pragma omp simd
        for (int64_t i = 0; i < Lq; i++) {
            float v = ((x[i] + br[i]) + gr[i]) + km;
            x[i] = v;
            mx[i] = v > mx[i] ? v : mx[i];
        }
    }
    for (int64_t j = 0; j < Lk; j++) {
        float *x = pt + j * Lq;
#pragma omp simd
        for (int64_t i = 0; i < Lq; i++) {
            x[i] = xv_exp_f32(x[i] - mx[i]);
            sum[i] += x[i];
        }
    }
    for (int64_t i = 0; i < Lq; i++) sum[i] = 1.0f / sum[i];
    for (int64_t j = 0; j < Lk; j++) {
        float *x = pt + j * Lq;
#pragma omp simd
        for (int64_t i = 0; i < Lq; i++) x[i] *= sum[i];
    }
}

/* out head block = dropout(P)·V = (P̃ᵀ)ᵀ·V. */
static void context_pair(const attn_plan *a, int64_t b, int64_t h, const float *pt, float *ptd, float *out) {
    if (a->drop > 0) {
        dropout_pair(a, b * a->H + h, pt, ptd);
        pt = ptd;
    }
    int64_t ldo = a->H * a->Dv;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)a->Lq, (int)a->Dv, (int)a->Lk, 1.0f, pt, (int)a->Lq,
                v_head(a, b, h), (int)a->ldv, 0.0f, out + b * a->Lq * ldo + h * a->Dv, (int)ldo);
}

/* Backward through O = dropout(P)·V: dV += P̃ᵀ·dO, and (when dpt is given)
 * dpt = (dL/dP)ᵀ = mask(V·dOᵀ). tmp: [Lk, Lq] scratch. */
static void context_backward_pair(const attn_plan *a, int64_t b, int64_t h, const float *pt, const float *dout,
                                  float *dv, float *dpt, float *tmp) {
    int64_t Lq = a->Lq, Lk = a->Lk, Dv = a->Dv, ldo = a->H * Dv, ldv = a->ldv, pair = b * a->H + h;
    const float *dO = dout + b * Lq * ldo + h * Dv;
    if (dv) {
        if (a->drop > 0) {
            dropout_pair(a, pair, pt, tmp);
            pt = tmp;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Lk, (int)Dv, (int)Lq, 1.0f, pt, (int)Lq, dO,
                    (int)ldo, 1.0f, dv + v_at(a, b, h), (int)ldv);
    }
    if (!dpt) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Lk, (int)Lq, (int)Dv, 1.0f, v_head(a, b, h), (int)ldv,
                dO, (int)ldo, 0.0f, dpt, (int)Lq);
    if (a->drop > 0) dropout_pair(a, pair, dpt, dpt);
}

/* Backward through P = softmax(scale·Q·Kᵀ + masks). dst holds (dL/dP)ᵀ on entry
 * and dSᵀ on return; dbias_t[h] += dSᵀ; dq += scale·dS·K; dk += dSᵀ·(scale·Q). */
static void probs_backward_pair(const attn_plan *a, int64_t b, int64_t h, const float *pt, float *dst, float *qs,
                                float *vec, float *dq, float *dk, float *dbias_t) {
    int64_t Lq = a->Lq, Lk = a->Lk, D = a->D;
    float *dot = vec;
    for (int64_t i = 0; i < Lq; i++) dot[i] = 0.0f;
    for (int64_t j = 0; j < Lk; j++) {
        const float *p = pt + j * Lq, *d = dst + j * Lq;
#pragma omp simd
        for (int64_t i = 0; i < Lq; i++) dot[i] += p[i] * d[i];
    }
    float *acc = dbias_t ? dbias_t + h * Lk * Lq : NULL;
    for (int64_t j = 0; j < Lk; j++) {
        const float *p = pt + j * Lq;
        float *d = dst + j * Lq;
#pragma omp simd
        for (int64_t i = 0; i < Lq; i++) d[i] = p[i] * (d[i] - dot[i]);
        if (acc) {
            float *ar = acc + j * Lq;
#pragma omp simd
            for (int64_t i = 0; i < Lq; i++) ar[i] += d[i];
        }
    }
    if (dq)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Lq, (int)D, (int)Lk, a->scale, dst, (int)Lq,
                    k_head(a, b, h), (int)a->ldk, 1.0f, dq + q_at(a, b, h), (int)a->ldq);
    if (dk) {
        scaled_q(a, b, h, qs, false);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Lk, (int)D, (int)Lq, 1.0f, dst, (int)Lq, qs,
                    (int)D, 1.0f, dk + k_at(a, b, h), (int)a->ldk);
    }
}

/* ---------------------------------------------------------------- backward drivers */

/* Work is handed out as chunks of consecutive (batch, head) pairs, dynamically,
 * so that a thread which loses its core on a busy machine does not hold the
 * others up. The chunks depend on the shapes only, and the bias gradient is
 * summed per chunk and then over the chunks in order: every result is the
 * same bits whatever the thread count or the schedule. */
#define ATTN_CHUNKS 16

static int64_t chunk_count(int64_t pairs, int64_t most) { return pairs < most ? pairs : most; }
static int64_t chunk_start(int64_t pairs, int64_t chunks, int64_t c) { return pairs * c / chunks; }

typedef struct {
    float *dq, *dk, *dv, *dbias;
    float *dbias_parts; /* [chunks, H, Lk, Lq] per-chunk partial sums (transposed) */
    float *scratch;     /* [threads, plan->scratch] */
    int64_t chunks;
} attn_grads;

/* Gradient buffers of whichever inputs need them, per-chunk bias sums and
 * per-thread scratch. */
static bool grads_begin(xv_graph *g, const attn_plan *a, bool want_qk, bool want_v, attn_grads *gr) {
    memset(gr, 0, sizeof *gr);
    gr->chunks = chunk_count(a->B * a->H, ATTN_CHUNKS);
    if (want_qk && a->q->requires_grad) gr->dq = xv_grad(g, a->q);
    if (want_qk && a->k->requires_grad) gr->dk = xv_grad(g, a->k);
    if (want_v && a->v->requires_grad) gr->dv = xv_grad(g, a->v);
    if (want_qk && a->bias && a->bias->requires_grad) {
        gr->dbias = xv_grad(g, a->bias);
        gr->dbias_parts = xv_graph_calloc(g, sizeof(float) * (size_t)(gr->chunks * a->H * a->Lq * a->Lk));
    }
    gr->scratch = xv_graph_alloc(g, sizeof(float) * (size_t)(omp_get_max_threads() * a->scratch));
    return xv_graph_status(g) == XV_OK;
}

static float *chunk_bias_part(const attn_plan *a, const attn_grads *gr, int64_t c) {
    return gr->dbias ? gr->dbias_parts + c * a->H * a->Lk * a->Lq : NULL;
}

/* dbias[h,i,j] += Σ_chunks partial[h,j,i], chunks in order. */
static void grads_end(const attn_plan *a, attn_grads *gr) {
    if (!gr->dbias) return;
    int64_t Lq = a->Lq, Lk = a->Lk, n = a->H * Lq * Lk;
    for (int64_t c = 0; c < gr->chunks; c++)
        for (int64_t h = 0; h < a->H; h++) {
            const float *part = gr->dbias_parts + c * n + h * Lk * Lq;
            float *db = gr->dbias + h * Lq * Lk;
            for (int64_t i = 0; i < Lq; i++)
                for (int64_t j = 0; j < Lk; j++) db[i * Lk + j] += part[j * Lq + i];
        }
}

/* What a backward node differentiates: the whole attention (fused mode), or
 * one of the two nodes of the two-node mode. */
typedef enum { BACKWARD_FUSED, BACKWARD_CONTEXT, BACKWARD_PROBS } backward_part;

/* Pair t (batch t / H, head t % H) of chunk c, with thread scratch s. `dout`
 * is the gradient of the node's output (the context, or in BACKWARD_PROBS the
 * probabilities); `dprobs` (BACKWARD_CONTEXT) receives dL/dP when the
 * probabilities need it. */
static void pair_backward(const attn_plan *a, const attn_grads *gr, backward_part part, const float *dout,
                          float *dprobs, int64_t c, int64_t t, float *s) {
    int64_t b = t / a->H, h = t % a->H, Lq = a->Lq, Lk = a->Lk;
    const float *pt = a->probs_t + t * Lq * Lk;
    float *dpt = scratch_mat(a, s, 0); /* dL/dP of this pair, transposed [Lk, Lq] */
    bool want_dp = part == BACKWARD_CONTEXT ? dprobs != NULL : (gr->dq || gr->dk || gr->dbias);
    if (part == BACKWARD_PROBS) transpose(dout + t * Lq * Lk, Lq, Lk, Lk, dpt);
    else context_backward_pair(a, b, h, pt, dout, gr->dv, want_dp ? dpt : NULL, scratch_mat(a, s, 1));
    if (part == BACKWARD_CONTEXT) {
        if (!dprobs) return;
        float *dp = dprobs + t * Lq * Lk;
        for (int64_t i = 0; i < Lq; i++)
            for (int64_t j = 0; j < Lk; j++) dp[i * Lk + j] += dpt[j * Lq + i];
    } else if (part == BACKWARD_PROBS || want_dp) {
        probs_backward_pair(a, b, h, pt, dpt, scratch_q(s), scratch_vec(a, s), gr->dq, gr->dk,
                            chunk_bias_part(a, gr, c));
    }
}

/* The (batch, head) pairs in chunks, in parallel; the bias gradient summed
 * over chunks in order at the end (deterministic for any thread count). */
static void attention_backward(xv_graph *g, xv_node *n, backward_part part) {
    const attn_plan *a = n->saved;
    attn_grads gr;
    if (!grads_begin(g, a, part != BACKWARD_CONTEXT, part != BACKWARD_PROBS, &gr)) return;
    float *dprobs = part == BACKWARD_CONTEXT && a->probs->requires_grad ? xv_grad(g, a->probs) : NULL;
    if (xv_graph_status(g) != XV_OK) return;
    const float *dout = n->out->grad;
    int64_t pairs = a->B * a->H;
#pragma omp parallel for schedule(dynamic, 1) if (gr.chunks > 1)
    for (int64_t c = 0; c < gr.chunks; c++) {
        float *s = gr.scratch + omp_get_thread_num() * a->scratch;
        for (int64_t t = chunk_start(pairs, gr.chunks, c); t < chunk_start(pairs, gr.chunks, c + 1); t++)
            pair_backward(a, &gr, part, dout, dprobs, c, t, s);
    }
    grads_end(a, &gr);
}

static void attention_fused_backward(xv_graph *g, xv_node *n) { attention_backward(g, n, BACKWARD_FUSED); }

/* Two-node mode, context part: dV, and dL/dP added into the probabilities' gradient. */
static void attention_context_backward(xv_graph *g, xv_node *n) { attention_backward(g, n, BACKWARD_CONTEXT); }

/* Two-node mode, probabilities part: from dL/dP (all consumers) to q, k, bias. */
static void attention_probs_backward(xv_graph *g, xv_node *n) { attention_backward(g, n, BACKWARD_PROBS); }

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

/* Validates the masks, bias and dropout against the plan's shapes. */
static bool plan_args(xv_graph *g, const char *op, const xv_attn_args *args, attn_plan *a) {
    if (a->Lq * a->ldq > INT32_MAX || a->Lk * a->ldk > INT32_MAX || a->Lk * a->ldv > INT32_MAX ||
        a->Lq * a->Lk > INT32_MAX) {
        xv_graph_fail(g, XV_ERR_UNSUPPORTED, "%s: dims beyond 32-bit BLAS indices", op);
        return false;
    }
    if (args->key_mask) {
        if (!check_mask(g, "key_mask", args->key_mask, a->B, a->Lk, 0, 2)) return false;
        a->key_mask = args->key_mask->data;
    }
    if (args->group_mask) {
        if (!check_mask(g, "group_mask", args->group_mask, -1, a->Lq, a->Lk, 3)) return false;
        a->G = args->group_mask->shape[0];
    }
    if (args->bias) {
        if (!check_mask(g, "bias", args->bias, a->H, a->Lq, a->Lk, 3)) return false;
        a->bias = args->bias;
    }
    if (!(args->dropout >= 0 && args->dropout < 1)) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: dropout %g outside [0, 1)", op, args->dropout);
        return false;
    }
    return true;
}

/* Validates separate q, k, v and fills the plan. */
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
                     .Dv = v->shape[2] / H, .G = 1, .ldq = q->shape[2], .ldk = k->shape[2], .ldv = v->shape[2],
                     .scale = args->scale, .q = q, .k = k, .v = v};
    return plan_args(g, op, args, a);
}

/* Validates a packed qkv [B, L, 3·heads·D] and fills the plan (q, k, v all
 * point at it, at column offsets 0, heads·D, 2·heads·D). */
static bool plan_packed(xv_graph *g, xv_tensor *qkv, const xv_attn_args *args, attn_plan *a) {
    static const char op[] = "xv_attention_packed";
    if (!xv_dense_f32_arg(g, op, "qkv", qkv)) return false;
    if (!args) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: args is NULL", op);
        return false;
    }
    int64_t H = args->heads;
    if (H <= 0 || qkv->ndim != 3 || qkv->shape[1] == 0 || qkv->shape[2] == 0 || qkv->shape[2] % (3 * H) != 0) {
        char sq[96];
        xv_graph_fail(g, XV_ERR_SHAPE, "%s: qkv %s with %d heads: want [B, L, 3·heads·D], D > 0", op,
                      xv_shape_str(qkv, sq, sizeof sq), args->heads);
        return false;
    }
    int64_t W = qkv->shape[2], HD = W / 3;
    *a = (attn_plan){.B = qkv->shape[0], .Lq = qkv->shape[1], .Lk = qkv->shape[1], .H = H, .D = HD / H,
                     .Dv = HD / H, .G = 1, .ldq = W, .ldk = W, .ldv = W, .offq = 0, .offk = HD, .offv = 2 * HD,
                     .scale = args->scale, .q = qkv, .k = qkv, .v = qkv};
    return plan_args(g, op, args, a);
}

/* [n, R, C] -> [n, C, R] in the graph arena. */
static const float *transposed_copy(xv_graph *g, const float *src, int64_t n, int64_t R, int64_t C) {
    float *dst = xv_graph_alloc(g, sizeof(float) * (size_t)(n * R * C));
    if (dst)
        for (int64_t m = 0; m < n; m++) transpose(src + m * R * C, R, C, C, dst + m * R * C);
    return dst;
}

/* Runs a validated plan (q, k, v may be one packed tensor, recorded thrice). */
static xv_tensor *run_plan(xv_graph *g, attn_plan plan, const xv_attn_args *args) {
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(plan.B, plan.Lq, plan.H * plan.Dv));
    if (!out) return NULL;

    xv_tensor *qkb[3] = {plan.q, plan.k, plan.bias}, *all[4] = {plan.q, plan.k, plan.v, plan.bias};
    bool record = xv_needs_grad(g, all, 4);
    bool two_nodes = args->probs_out != NULL;
    int64_t pairs = plan.B * plan.H, pn = plan.Lq * plan.Lk;
    if (xv_graph_training(g) && args->dropout > 0) {
        plan.drop = args->dropout;
        plan.key = xv_graph_rng(g)->key;
        plan.base = xv_rng_reserve(xv_graph_rng(g), (uint64_t)(pairs * pn + 3) / 4);
    }
    plan.scratch = pad16(plan.Lq * plan.D) + 2 * pad16(pn) + 2 * pad16(plan.Lq);
    plan.zeros = xv_graph_calloc(g, sizeof(float) * (size_t)plan.Lq);
    if (plan.bias) plan.bias_t = transposed_copy(g, plan.bias->data, plan.H, plan.Lq, plan.Lk);
    if (args->group_mask) plan.group_t = transposed_copy(g, args->group_mask->data, plan.G, plan.Lq, plan.Lk);
    if (record || two_nodes) plan.probs_t = xv_graph_alloc(g, sizeof(float) * (size_t)(pairs * pn));
    if (two_nodes) plan.probs = xv_tensor_new(g, XV_F32, XV_SHAPE(plan.B, plan.H, plan.Lq, plan.Lk));
    int threads = omp_get_max_threads();
    float *scratch = xv_graph_alloc(g, sizeof(float) * (size_t)(threads * plan.scratch));
    if (xv_graph_status(g) != XV_OK) return NULL;

    /* No reduction here, so finer chunks (each pair's result is independent). */
    int64_t chunks = chunk_count(pairs, 4 * ATTN_CHUNKS);
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        float *s = scratch + omp_get_thread_num() * plan.scratch;
        for (int64_t t = chunk_start(pairs, chunks, c); t < chunk_start(pairs, chunks, c + 1); t++) {
            int64_t b = t / plan.H, h = t % plan.H;
            float *pt = plan.probs_t ? plan.probs_t + t * pn : scratch_mat(&plan, s, 0);
            probs_pair(&plan, b, h, scratch_q(s), pt, scratch_vec(&plan, s));
            context_pair(&plan, b, h, pt, scratch_mat(&plan, s, 1), out->data);
            if (plan.probs) transpose(pt, plan.Lk, plan.Lq, plan.Lq, plan.probs->data + t * pn);
        }
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
    xv_node *np = xv_record(g, "xv_attention_probs", plan.probs, attention_probs_backward, qkb, 3);
    if (np) np->saved = saved;
    xv_tensor *pv[2] = {plan.probs, plan.v};
    xv_node *nc = xv_record(g, "xv_attention_context", out, attention_context_backward, pv, 2);
    if (nc) nc->saved = saved;
    *args->probs_out = plan.probs;
    return out;
}

xv_tensor *xv_attention(xv_graph *g, xv_tensor *q, xv_tensor *k, xv_tensor *v, const xv_attn_args *args) {
    if (!g) return NULL;
    attn_plan plan;
    if (!plan_shapes(g, q, k, v, args, &plan)) return NULL;
    return run_plan(g, plan, args);
}

xv_tensor *xv_attention_packed(xv_graph *g, xv_tensor *qkv, const xv_attn_args *args) {
    if (!g) return NULL;
    attn_plan plan;
    if (!plan_packed(g, qkv, args, &plan)) return NULL;
    return run_plan(g, plan, args);
}
