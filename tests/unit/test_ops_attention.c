/* xv_attention: forward (output and probabilities) against a naive double
 * reference with every argument at once (heads, scale on q, key mask with
 * -10000 / -1e9 and a fully masked key set, differentiable rel-pos bias, shift
 * group mask with -100, dropout); backward against finite differences; the
 * probabilities' gradient (Grad-CAM); determinism; the packed-qkv variant
 * (equal bits to separate q, k, v, finite differences); argument errors.
 * Finite-difference tolerances: see tests/unit/test_ops_dense.c (same h, atol,
 * rtol; here at most 504 outputs of magnitude <= 2). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "testutil.h"

#define U 5.9604644775390625e-08 /* 2^-24 */

static xv_graph *G; /* test data */

static float *rnd(int64_t n, float lo, float hi, uint64_t seed) {
    float *x = xv_graph_alloc(G, sizeof(float) * (size_t)n);
    xv_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}
static double *dbuf(int64_t n) { return xv_graph_calloc(G, sizeof(double) * (size_t)n); }

static void check_close(const char *what, const float *got, const double *ref, const double *tol, int64_t n) {
    int64_t bad = 0, worst = 0;
    double wr = -1;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), r = err / (tol[i] > 0 ? tol[i] : 1e-300);
        if (!(err <= tol[i])) bad++;
        if (r > wr || got[i] != got[i]) wr = r, worst = i;
    }
    CHECK(bad == 0, "%s: %lld of %lld outside tolerance; worst [%lld] got %.9g want %.9g tol %.3g", what,
          (long long)bad, (long long)n, (long long)worst, got[worst], ref[worst], tol[worst]);
}

/* One attention problem: shapes and data (NULL masks / bias = absent). */
typedef struct {
    int B, Lq, Lk, H, D, Dv, G;
    float scale, dropout;
    bool training;
    float *q, *k, *v, *bias, *key_mask, *group_mask;
} attn_case;

/* Masks as the official code builds them: key_mask entries 0, -10000 or -1e9
 * (never a whole row of -1e9: fp32 then rounds every score to -1e9, which the
 * double reference cannot follow); batch `full_row` entirely -10000; the group
 * mask 0 / -100 with row 0 of group 0 entirely -100. */
static attn_case make_case(int B, int Lq, int Lk, int H, int D, int Dv, int Gr, bool bias, bool kmask, int full_row,
                           uint64_t seed) {
    attn_case c = {B, Lq, Lk, H, D, Dv, Gr, 1.0f / sqrtf((float)D), 0, false, NULL, NULL, NULL, NULL, NULL, NULL};
    c.q = rnd((int64_t)B * Lq * H * D, -1, 1, seed);
    c.k = rnd((int64_t)B * Lk * H * D, -1, 1, seed + 1);
    c.v = rnd((int64_t)B * Lk * H * Dv, -1, 1, seed + 2);
    if (bias) c.bias = rnd((int64_t)H * Lq * Lk, -2, 2, seed + 3);
    if (kmask) {
        c.key_mask = rnd((int64_t)B * Lk, 0, 1, seed + 4);
        for (int i = 0; i < B * Lk; i++) c.key_mask[i] = c.key_mask[i] < 0.2f ? -10000.f : c.key_mask[i] < 0.3f ? -1e9f : 0.f;
        for (int b = 0; b < B; b++) c.key_mask[b * Lk] = 0; /* key 0 always visible */
        if (full_row >= 0)
            for (int j = 0; j < Lk; j++) c.key_mask[full_row * Lk + j] = -10000.f;
    }
    if (Gr > 0) {
        c.group_mask = rnd((int64_t)Gr * Lq * Lk, 0, 1, seed + 5);
        for (int i = 0; i < Gr * Lq * Lk; i++) c.group_mask[i] = c.group_mask[i] < 0.3f ? -100.f : 0.f;
        for (int j = 0; j < Lk; j++) c.group_mask[j] = -100.f;
    } else {
        c.G = 1;
    }
    return c;
}

static xv_tensor *run_case(xv_graph *g, const attn_case *c, xv_tensor **leaves, xv_tensor **probs) {
    xv_attn_args a = {.heads = c->H, .scale = c->scale, .dropout = c->dropout, .probs_out = probs};
    if (c->key_mask) a.key_mask = xv_tensor_wrap_f32(g, c->key_mask, XV_SHAPE(c->B, c->Lk));
    if (c->group_mask) a.group_mask = xv_tensor_wrap_f32(g, c->group_mask, XV_SHAPE(c->G, c->Lq, c->Lk));
    xv_tensor *q = leaves ? leaves[0] : xv_tensor_wrap_f32(g, c->q, XV_SHAPE(c->B, c->Lq, c->H * c->D));
    xv_tensor *k = leaves ? leaves[1] : xv_tensor_wrap_f32(g, c->k, XV_SHAPE(c->B, c->Lk, c->H * c->D));
    xv_tensor *v = leaves ? leaves[2] : xv_tensor_wrap_f32(g, c->v, XV_SHAPE(c->B, c->Lk, c->H * c->Dv));
    if (c->bias) a.bias = leaves ? leaves[3] : xv_tensor_wrap_f32(g, c->bias, XV_SHAPE(c->H, c->Lq, c->Lk));
    return xv_attention(g, q, k, v, &a);
}

/* Keep decision of probability element e under the documented counter layout. */
static bool kept(uint64_t key, uint64_t base, int64_t e, float p) {
    uint32_t bits[4];
    xv_philox(key, base + (uint64_t)(e / 4), bits);
    return (float)(bits[e % 4] >> 8) * (1.0f / 16777216.0f) >= p;
}

/* Double reference. Tolerances from fp32: scores carry (D+3)·u·Σ|scale·q·k|
 * from the product plus u per mask addition; softmax adds u·|s-max| (shift),
 * 2u (exp), Lk·u (sum), u (divide); the output sums Lk products. */
static void reference(const attn_case *c, uint64_t key, uint64_t base, double *out, double *tol_out, double *probs,
                      double *tol_p) {
    int HD = c->H * c->D, HDv = c->H * c->Dv;
    double *s = dbuf(c->Lk), *ds = dbuf(c->Lk);
    float inv_keep = 1.0f / (1.0f - c->dropout);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Lq; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < c->Lk; j++) {
                    double acc = 0, mag = 0;
                    for (int d = 0; d < c->D; d++) {
                        double t = (double)c->scale * c->q[(b * c->Lq + i) * HD + h * c->D + d] *
                                   c->k[(b * c->Lk + j) * HD + h * c->D + d];
                        acc += t, mag += fabs(t);
                    }
                    double bias = c->bias ? c->bias[(h * c->Lq + i) * c->Lk + j] : 0;
                    double gm = c->group_mask ? c->group_mask[((b % c->G) * c->Lq + i) * c->Lk + j] : 0;
                    double km = c->key_mask ? c->key_mask[b * c->Lk + j] : 0;
                    s[j] = acc + bias + gm + km;
                    ds[j] = (c->D + 3) * U * mag + 3 * U * (fabs(acc) + fabs(bias) + fabs(gm) + fabs(km));
                    mx = fmax(mx, s[j]);
                }
                double sum = 0, worst = 0;
                for (int j = 0; j < c->Lk; j++) sum += exp(s[j] - mx);
                for (int j = 0; j < c->Lk; j++)
                    if (exp(s[j] - mx) > 1e-30) worst = fmax(worst, ds[j] + U * fabs(s[j] - mx));
                int64_t prow = (((int64_t)b * c->H + h) * c->Lq + i) * c->Lk;
                double rel = 2 * worst + (c->Lk + 5) * U;
                for (int d = 0; d < c->Dv; d++) {
                    double o = 0, mag = 0;
                    for (int j = 0; j < c->Lk; j++) {
                        double p = exp(s[j] - mx) / sum;
                        if (c->dropout > 0 && c->training) p = kept(key, base, prow + j, c->dropout) ? p * inv_keep : 0;
                        double vv = c->v[(b * c->Lk + j) * HDv + h * c->Dv + d];
                        o += p * vv;
                        mag += fabs(p * vv);
                    }
                    out[(b * c->Lq + i) * HDv + h * c->Dv + d] = o;
                    tol_out[(b * c->Lq + i) * HDv + h * c->Dv + d] = mag * (rel + (c->Lk + 2) * U) + 0x1p-120;
                }
                for (int j = 0; j < c->Lk; j++) {
                    double p = exp(s[j] - mx) / sum;
                    probs[prow + j] = p;
                    tol_p[prow + j] = p * rel + 0x1p-126; /* below the smallest normal: may flush to 0 */
                }
            }
}

static void check_forward(const char *name, attn_case c) {
    xv_graph *g = xv_graph_new(1 << 20);
    xv_graph_set_training(g, c.training);
    xv_rng_seed(xv_graph_rng(g), 99);
    uint64_t key = xv_graph_rng(g)->key, base = xv_graph_rng(g)->counter;
    xv_tensor *probs = NULL;
    xv_tensor *y = run_case(g, &c, NULL, &probs);
    CHECK(y && probs, "%s: forward ran (%s)", name, xv_error_message());
    if (y && probs) {
        CHECK(y->ndim == 3 && y->shape[0] == c.B && y->shape[1] == c.Lq && y->shape[2] == c.H * c.Dv, "%s: shape", name);
        int64_t no = (int64_t)c.B * c.Lq * c.H * c.Dv, np = (int64_t)c.B * c.H * c.Lq * c.Lk;
        double *ref = dbuf(no), *tol = dbuf(no), *pr = dbuf(np), *pt = dbuf(np);
        reference(&c, key, base, ref, tol, pr, pt);
        char what[128];
        snprintf(what, sizeof what, "%s: output", name);
        check_close(what, y->data, ref, tol, no);
        snprintf(what, sizeof what, "%s: probabilities", name);
        check_close(what, probs->data, pr, pt, np);
        /* Without probs_out (one fused node, P in scratch when not recording) the output is the same. */
        xv_graph_rng(g)->counter = base; /* the same dropout masks */
        xv_tensor *y2 = run_case(g, &c, NULL, NULL);
        CHECK(y2 && memcmp(y2->data, y->data, sizeof(float) * (size_t)no) == 0, "%s: same output without probs_out", name);
    }
    xv_graph_free(g);
}

static void test_forward(void) {
    /* Everything at once, cross-attention shapes (Lq != Lk, Dv != D), odd sizes. */
    check_forward("all masks", make_case(6, 7, 13, 3, 5, 4, 3, true, true, 4, 100));
    /* Swin window: 49 tokens, 2 images x 4 windows sharing 4 shift masks, rel-pos bias. */
    check_forward("swin window", make_case(8, 49, 49, 2, 8, 8, 4, true, false, -1, 200));
    /* BERT: key padding mask, one fully padded sequence. */
    check_forward("bert", make_case(3, 13, 13, 4, 16, 16, 0, false, true, 1, 300));
    /* Dropout in training mode, every mask. */
    attn_case c = make_case(6, 7, 13, 3, 5, 4, 3, true, true, 4, 400);
    c.dropout = 0.3f, c.training = true;
    check_forward("dropout 0.3 (training)", c);
    /* Eval mode: dropout off. */
    c.training = false;
    check_forward("dropout 0.3 (eval)", c);
}

static void test_dropout_statistics(void) {
    attn_case c = make_case(16, 49, 49, 4, 8, 8, 0, false, false, -1, 500);
    xv_graph *g = xv_graph_new(1 << 20);
    xv_graph_set_training(g, true);
    c.dropout = 0.25f;
    uint64_t key = xv_graph_rng(g)->key, base = xv_graph_rng(g)->counter;
    int64_t n = (int64_t)c.B * c.H * c.Lq * c.Lk, dropped = 0;
    for (int64_t e = 0; e < n; e++) dropped += !kept(key, base, e, c.dropout);
    double frac = (double)dropped / (double)n, sd = sqrt(0.25 * 0.75 / (double)n);
    CHECK(fabs(frac - 0.25) < 5 * sd, "dropped fraction %.4f (want 0.25 +- %.4f)", frac, 5 * sd);
    /* Each call draws fresh counters: two calls differ. */
    xv_tensor *y1 = run_case(g, &c, NULL, NULL), *y2 = run_case(g, &c, NULL, NULL);
    CHECK(y1 && y2 && memcmp(y1->data, y2->data, sizeof(float) * (size_t)y1->numel) != 0, "fresh masks per call");
    CHECK(xv_graph_rng(g)->counter == base + 2 * (uint64_t)((n + 3) / 4), "counters reserved: %llu",
          (unsigned long long)xv_graph_rng(g)->counter);
    xv_graph_free(g);
}

/* ---------------------------------------------------------------- finite differences */

typedef struct {
    attn_case c;
    bool use_probs; /* output = Σ out·W1 + Σ P·W2: P gets gradient from a second consumer */
    float *w1, *w2;
} fd_ctx;

static xv_tensor *fd_fn(xv_graph *g, xv_tensor **in, void *p) {
    fd_ctx *f = p;
    xv_tensor *probs = NULL;
    xv_tensor *y = run_case(g, &f->c, in, f->use_probs ? &probs : NULL);
    if (!f->use_probs || !y) return y;
    xv_tensor *w1 = xv_tensor_wrap_f32(g, f->w1, y->shape, y->ndim);
    xv_tensor *w2 = xv_tensor_wrap_f32(g, f->w2, probs->shape, probs->ndim);
    return xv_add(g, xv_sum(g, xv_mul(g, y, w1)), xv_sum(g, xv_mul(g, probs, w2)));
}

static void fd_case(const char *name, attn_case c, bool use_probs) {
    fd_ctx f = {c, use_probs, rnd((int64_t)c.B * c.Lq * c.H * c.Dv, -1, 1, 76),
                rnd((int64_t)c.B * c.H * c.Lq * c.Lk, -2, 2, 77)};
    const int64_t sq[3] = {c.B, c.Lq, c.H * c.D}, sk[3] = {c.B, c.Lk, c.H * c.D}, sv[3] = {c.B, c.Lk, c.H * c.Dv},
                  sb[3] = {c.H, c.Lq, c.Lk};
    xv_fd_input in[4] = {{sq, 3, c.q, true}, {sk, 3, c.k, true}, {sv, 3, c.v, true}, {sb, 3, c.bias, true}};
    xv_fd_opts o = xv_fd_defaults();
    o.training = c.training;
    xv_fd_check(name, fd_fn, &f, in, c.bias ? 4 : 3, &o);
}

static void test_fd(void) {
    fd_case("fd all masks + bias", make_case(6, 7, 13, 3, 5, 4, 3, true, true, -1, 600), false);
    fd_case("fd swin window (49 tokens, -100 rows)", make_case(2, 49, 49, 2, 3, 3, 2, true, false, -1, 610), false);
    fd_case("fd bert key mask", make_case(3, 13, 13, 2, 4, 4, 0, false, true, -1, 620), false);
    attn_case c = make_case(6, 7, 13, 3, 5, 4, 3, true, true, -1, 630);
    c.dropout = 0.2f, c.training = true;
    fd_case("fd dropout 0.2", c, false);
    fd_case("fd probs_out with a second consumer", make_case(6, 7, 13, 3, 5, 4, 3, true, true, -1, 640), true);
    fd_case("fd probs_out + dropout", c, true);
}

/* ---------------------------------------------------------------- Grad-CAM, consistency, determinism */

typedef struct {
    float *out, *dq, *dk, *dv, *dbias, *probs, *dprobs;
} attn_result;

static float *keep_copy(const float *src, int64_t n) {
    if (!src) return NULL;
    float *d = xv_graph_alloc(G, sizeof(float) * (size_t)n);
    memcpy(d, src, sizeof(float) * (size_t)n);
    return d;
}

/* Forward + backward of L = Σ r·out, everything copied out of the graph. */
static attn_result run_backward(const attn_case *c, bool with_probs, const float *r) {
    xv_graph *g = xv_graph_new(1 << 20);
    xv_graph_set_training(g, c->training);
    xv_tensor *lv[4] = {xv_tensor_wrap_f32(g, c->q, XV_SHAPE(c->B, c->Lq, c->H * c->D)),
                        xv_tensor_wrap_f32(g, c->k, XV_SHAPE(c->B, c->Lk, c->H * c->D)),
                        xv_tensor_wrap_f32(g, c->v, XV_SHAPE(c->B, c->Lk, c->H * c->Dv)),
                        c->bias ? xv_tensor_wrap_f32(g, c->bias, XV_SHAPE(c->H, c->Lq, c->Lk)) : NULL};
    for (int i = 0; i < 4; i++)
        if (lv[i]) lv[i]->requires_grad = true;
    xv_tensor *probs = NULL;
    xv_tensor *y = run_case(g, c, lv, with_probs ? &probs : NULL);
    attn_result res = {0};
    if (!y || xv_backward_with(g, y, r) != XV_OK) {
        CHECK(0, "backward failed: %s", xv_error_message());
        xv_graph_free(g);
        return res;
    }
    res.out = keep_copy(y->data, y->numel);
    res.dq = keep_copy(lv[0]->grad, lv[0]->numel);
    res.dk = keep_copy(lv[1]->grad, lv[1]->numel);
    res.dv = keep_copy(lv[2]->grad, lv[2]->numel);
    if (lv[3]) res.dbias = keep_copy(lv[3]->grad, lv[3]->numel);
    if (probs) {
        res.probs = keep_copy(probs->data, probs->numel);
        res.dprobs = keep_copy(probs->grad, probs->numel);
    }
    xv_graph_free(g);
    return res;
}

static bool same(const float *a, const float *b, int64_t n) { return a && b && memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void test_grads_consistency(void) {
    attn_case c = make_case(6, 7, 13, 3, 5, 4, 3, true, true, 4, 700);
    int64_t no = (int64_t)c.B * c.Lq * c.H * c.Dv, nq = (int64_t)c.B * c.Lq * c.H * c.D,
            nk = (int64_t)c.B * c.Lk * c.H * c.D, nb = (int64_t)c.H * c.Lq * c.Lk, np = c.B * nb;
    float *r = rnd(no, -1, 1, 701);
    for (int drop = 0; drop < 2; drop++) {
        c.dropout = drop ? 0.3f : 0, c.training = drop;
        attn_result fused = run_backward(&c, false, r), split = run_backward(&c, true, r);
        /* The two-node path (probs_out) does the same arithmetic in the same order. */
        CHECK(same(fused.out, split.out, no) && same(fused.dq, split.dq, nq) && same(fused.dk, split.dk, nk) &&
                  same(fused.dv, split.dv, nk / c.D * c.Dv) && same(fused.dbias, split.dbias, nb),
              "fused and probs_out paths agree bitwise (dropout %d)", drop);
        /* Grad-CAM: dL/dP[b,h,i,j] = keep·inv·Σ_d r[b,i,h,d]·v[b,j,h,d]. */
        xv_graph *g = xv_graph_new(1 << 20);
        uint64_t key = xv_graph_rng(g)->key, base = xv_graph_rng(g)->counter;
        xv_graph_free(g);
        double *ref = dbuf(np), *tol = dbuf(np);
        for (int b = 0; b < c.B; b++)
            for (int h = 0; h < c.H; h++)
                for (int i = 0; i < c.Lq; i++)
                    for (int j = 0; j < c.Lk; j++) {
                        double s = 0, mag = 0;
                        for (int d = 0; d < c.Dv; d++) {
                            double t = (double)r[(b * c.Lq + i) * c.H * c.Dv + h * c.Dv + d] *
                                       c.v[(b * c.Lk + j) * c.H * c.Dv + h * c.Dv + d];
                            s += t, mag += fabs(t);
                        }
                        int64_t e = (((int64_t)b * c.H + h) * c.Lq + i) * c.Lk + j;
                        double f = drop ? (kept(key, base, e, c.dropout) ? (double)(1.0f / (1.0f - c.dropout)) : 0) : 1;
                        ref[e] = s * f;
                        tol[e] = (c.Dv + 2) * U * mag * f; /* Dv-term dot product, then the keep scale */
                    }
        CHECK(split.dprobs != NULL, "probabilities received a gradient");
        if (split.dprobs) check_close(drop ? "dL/dP with dropout" : "dL/dP (Grad-CAM)", split.dprobs, ref, tol, np);
    }
    /* Determinism: same inputs and thread count -> identical bits, twice. */
    c.dropout = 0.1f, c.training = true;
    attn_result a = run_backward(&c, false, r), b = run_backward(&c, false, r);
    CHECK(same(a.out, b.out, no) && same(a.dq, b.dq, nq) && same(a.dk, b.dk, nk) && same(a.dv, b.dv, nk / c.D * c.Dv) &&
              same(a.dbias, b.dbias, nb),
          "attention forward and backward bitwise reproducible");
    /* Nor do they depend on the thread count: each (batch, head) pair is
     * computed alone and the bias gradient is summed over fixed chunks. */
    int nt = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads += 2) {
        omp_set_num_threads(threads);
        attn_result other = run_backward(&c, false, r);
        CHECK(same(a.out, other.out, no) && same(a.dq, other.dq, nq) && same(a.dk, other.dk, nk) &&
                  same(a.dv, other.dv, nk / c.D * c.Dv) && same(a.dbias, other.dbias, nb),
              "forward and every gradient identical with %d threads and %d", threads, nt);
    }
    omp_set_num_threads(nt);
}

/* ---------------------------------------------------------------- packed qkv */

/* q, k, v of a self-attention case interleaved into one [B, L, 3·H·D] buffer. */
static float *pack_qkv(const attn_case *c) {
    int64_t HD = (int64_t)c->H * c->D, rows = (int64_t)c->B * c->Lq;
    float *p = xv_graph_alloc(G, sizeof(float) * (size_t)(rows * 3 * HD));
    for (int64_t r = 0; r < rows; r++) {
        memcpy(p + r * 3 * HD, c->q + r * HD, sizeof(float) * (size_t)HD);
        memcpy(p + r * 3 * HD + HD, c->k + r * HD, sizeof(float) * (size_t)HD);
        memcpy(p + r * 3 * HD + 2 * HD, c->v + r * HD, sizeof(float) * (size_t)HD);
    }
    return p;
}

static xv_tensor *run_packed(xv_graph *g, const attn_case *c, xv_tensor *qkv, xv_tensor *bias) {
    xv_attn_args a = {.heads = c->H, .scale = c->scale, .dropout = c->dropout, .bias = bias};
    if (c->key_mask) a.key_mask = xv_tensor_wrap_f32(g, c->key_mask, XV_SHAPE(c->B, c->Lk));
    if (c->group_mask) a.group_mask = xv_tensor_wrap_f32(g, c->group_mask, XV_SHAPE(c->G, c->Lq, c->Lk));
    return xv_attention_packed(g, qkv, &a);
}

typedef struct {
    attn_case c;
} fd_packed_ctx;

static xv_tensor *fd_packed_fn(xv_graph *g, xv_tensor **in, void *p) {
    fd_packed_ctx *f = p;
    return run_packed(g, &f->c, in[0], f->c.bias ? in[1] : NULL);
}

static void test_packed(void) {
    /* Self-attention (Lq = Lk, D = Dv) with every mask, with and without dropout. */
    attn_case c = make_case(4, 9, 9, 3, 4, 4, 2, true, true, -1, 900);
    int64_t HD = (int64_t)c.H * c.D, rows = (int64_t)c.B * c.Lq, no = rows * HD, nb = (int64_t)c.H * c.Lq * c.Lk;
    float *packed = pack_qkv(&c), *r = rnd(no, -1, 1, 901);
    for (int drop = 0; drop < 2; drop++) {
        c.dropout = drop ? 0.25f : 0, c.training = drop;
        attn_result sep = run_backward(&c, false, r);
        xv_graph *g = xv_graph_new(1 << 20);
        xv_graph_set_training(g, c.training);
        xv_tensor *qkv = xv_tensor_wrap_f32(g, packed, XV_SHAPE(c.B, c.Lq, 3 * HD));
        xv_tensor *bias = xv_tensor_wrap_f32(g, c.bias, XV_SHAPE(c.H, c.Lq, c.Lk));
        qkv->requires_grad = bias->requires_grad = true;
        xv_tensor *y = run_packed(g, &c, qkv, bias);
        CHECK(y && xv_backward_with(g, y, r) == XV_OK, "packed backward: %s", xv_error_message());
        if (!y || !qkv->grad) {
            xv_graph_free(g);
            continue;
        }
        /* Same arithmetic in the same order, only the strides differ: equal bits
         * (dropout draws the same mask: same RNG stream, same element numbering). */
        bool grads = true;
        for (int64_t i = 0; i < rows && sep.dq; i++)
            grads &= !memcmp(qkv->grad + i * 3 * HD, sep.dq + i * HD, sizeof(float) * (size_t)HD) &&
                     !memcmp(qkv->grad + i * 3 * HD + HD, sep.dk + i * HD, sizeof(float) * (size_t)HD) &&
                     !memcmp(qkv->grad + i * 3 * HD + 2 * HD, sep.dv + i * HD, sizeof(float) * (size_t)HD);
        CHECK(same(y->data, sep.out, no), "packed forward equals separate q, k, v bitwise (dropout %d)", drop);
        CHECK(grads && same(bias->grad, sep.dbias, nb), "packed gradients equal separate ones bitwise (dropout %d)",
              drop);
        xv_graph_free(g);
    }
    /* Finite differences through the packed input (bias and masks on, then dropout). */
    for (int drop = 0; drop < 2; drop++) {
        c.dropout = drop ? 0.2f : 0, c.training = drop;
        fd_packed_ctx f = {c};
        const int64_t sq[3] = {c.B, c.Lq, 3 * HD}, sb[3] = {c.H, c.Lq, c.Lk};
        xv_fd_input in[2] = {{sq, 3, packed, true}, {sb, 3, c.bias, true}};
        xv_fd_opts o = xv_fd_defaults();
        o.training = c.training;
        xv_fd_check(drop ? "fd packed qkv + dropout" : "fd packed qkv", fd_packed_fn, &f, in, 2, &o);
    }
    /* A width that is not 3·heads·D is refused by name. */
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *bad = xv_tensor_wrap_f32(g, packed, XV_SHAPE(c.B, c.Lq, 3 * HD - 3));
    xv_attn_args a = {.heads = c.H, .scale = 1};
    CHECK(!xv_attention_packed(g, bad, &a) && xv_graph_status(g) == XV_ERR_SHAPE &&
              strstr(xv_error_message(), "xv_attention_packed"),
          "packed width refused: %s", xv_error_message());
    xv_graph_free(g);
}

/* xv_attention on q [2,3,4] and k = v [2,4,4] of c with args a must fail with
 * `code`, its message naming `what`; the graph is reset after. */
static void expect_refused(xv_graph *g, const attn_case *c, const xv_attn_args *a, xv_status code,
                           const char *what) {
    xv_tensor *q = xv_tensor_wrap_f32(g, c->q, XV_SHAPE(2, 3, 4)), *k = xv_tensor_wrap_f32(g, c->k, XV_SHAPE(2, 4, 4));
    CHECK(xv_attention(g, q, k, k, a) == NULL && xv_graph_status(g) == code && strstr(xv_error_message(), what),
          "%s refused: %s", what, xv_error_message());
    xv_graph_reset(g);
}

static void test_errors(void) {
    xv_graph *g = xv_graph_new(1 << 20);
    attn_case c = make_case(2, 3, 4, 2, 2, 2, 0, false, false, -1, 800);
    expect_refused(g, &c, &(xv_attn_args){.heads = 3, .scale = 1}, XV_ERR_SHAPE, "xv_attention"); /* 3 heads, width 4 */
    const xv_attn_args ok = {.heads = 2, .scale = 1};
    xv_attn_args a = ok;
    a.key_mask = xv_tensor_wrap_f32(g, c.k, XV_SHAPE(2, 3));
    expect_refused(g, &c, &a, XV_ERR_SHAPE, "key_mask");
    a = ok;
    a.bias = xv_tensor_wrap_f32(g, c.k, XV_SHAPE(3, 3, 4));
    expect_refused(g, &c, &a, XV_ERR_SHAPE, "bias");
    a = ok;
    a.group_mask = xv_tensor_wrap_f32(g, c.k, XV_SHAPE(2, 4, 3));
    expect_refused(g, &c, &a, XV_ERR_SHAPE, "group_mask");
    a = ok;
    a.dropout = 1.0f;
    expect_refused(g, &c, &a, XV_ERR_INVALID_ARG, "dropout");
    xv_tensor *q = xv_tensor_wrap_f32(g, c.q, XV_SHAPE(2, 3, 4));
    CHECK(xv_attention(g, q, NULL, q, &ok) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "NULL k refused");
    xv_graph_free(g);
}

int main(void) {
    G = xv_graph_new(1 << 22);
    test_forward();
    test_dropout_statistics();
    test_fd();
    test_grads_consistency();
    test_packed();
    test_errors();
    xv_graph_free(G);
    return xv_test_finish("test_ops_attention");
}
