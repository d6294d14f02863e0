/* Losses: cross-entropy with an ignore index, soft-target cross-entropy, and
 * 1 - GIoU with the official degenerate-box rule. References are computed here
 * in double with plain loops; finite differences check every backward. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define IGNORE (-100)

/* log-softmax of one row, in double. */
static void ref_log_softmax(const float *x, int C, double *out) {
    double m = x[0], s = 0;
    for (int c = 1; c < C; c++) m = x[c] > m ? x[c] : m;
    for (int c = 0; c < C; c++) s += exp(x[c] - m);
    for (int c = 0; c < C; c++) out[c] = x[c] - m - log(s);
}

/* Finite-difference tolerance for the CE losses (logits in [-3, 3], h = 1e-2):
 * - the output is one float of size ~1-3, rounded to <= 2.4e-7, so
 *   L(x+h) - L(x-h) carries <= 4.8e-7·|r| of rounding: 2.4e-5 after / 2h;
 * - truncation h²/6·|d³L/dx³| <= 1e-4/6 · (1/count) · 0.4 < 1e-5.
 * Gradients are ~1/count ~ 0.05-0.2; atol 1e-4 + rtol 1e-3 is ~3x the bound. */
static xv_fd_opts ce_fd_opts(void) {
    xv_fd_opts o = xv_fd_defaults();
    o.atol = 1e-4;
    o.rtol = 1e-3;
    o.max_checks = 200;
    return o;
}

/* ---------------------------------------------------------------- hard targets */

typedef struct {
    int32_t *targets;
    const int64_t *tshape;
    int tndim;
} ce_ctx;

static xv_tensor *fd_ce(xv_graph *g, xv_tensor **in, void *ctx) {
    ce_ctx *c = ctx;
    return xv_cross_entropy(g, in[0], xv_tensor_wrap_i32(g, c->targets, c->tshape, c->tndim), IGNORE);
}

static void test_cross_entropy(void) {
    enum { N = 7, C = 5 };
    float x[N * C];
    xv_test_fill_uniform(x, N * C, -3, 3, 1);
    int32_t t[N] = {2, IGNORE, 0, 4, IGNORE, 4, 1};
    /* Reference: mean over the 5 kept rows of -log_softmax[target]. */
    double ref = 0, ls[C], dref[N * C] = {0};
    int kept = 0;
    for (int n = 0; n < N; n++) {
        if (t[n] == IGNORE) continue;
        ref_log_softmax(x + n * C, C, ls);
        ref -= ls[t[n]];
        kept++;
    }
    ref /= kept;
    for (int n = 0; n < N; n++) {
        if (t[n] == IGNORE) continue;
        ref_log_softmax(x + n * C, C, ls);
        for (int c = 0; c < C; c++) dref[n * C + c] = (exp(ls[c]) - (c == t[n])) / kept;
    }
    xv_graph *g = xv_graph_new(0);
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C));
    xt->requires_grad = true;
    xv_tensor *L = xv_cross_entropy(g, xt, xv_tensor_wrap_i32(g, t, XV_SHAPE(N)), IGNORE);
    /* One float rounding of a value ~1.5 (1.2e-7) plus float exps (~1e-7 relative). */
    CHECK(L && fabs(L->data[0] - ref) < 1e-6, "loss %.8g, reference %.8g", L ? L->data[0] : 0.0, ref);
    CHECK_OK(xv_backward(g, L));
    double worst = 0;
    int ignored_nonzero = 0;
    for (int k = 0; k < N * C; k++) {
        worst = fmax(worst, fabs(xt->grad[k] - dref[k]));
        if (t[k / C] == IGNORE) ignored_nonzero += xt->grad[k] != 0.0f;
    }
    /* Gradients (p - onehot)/5 <= 0.2. The exp argument x - lse (|.| <= 8) is
     * rounded to float (<= 4.8e-7 absolute, i.e. relative on p): 1e-7 on the
     * gradient, plus two roundings of values <= 0.2 (2.4e-8): 3e-7. */
    CHECK(worst < 3e-7, "gradient vs (softmax - onehot)/count: max diff %g", worst);
    CHECK(ignored_nonzero == 0, "ignored rows get exactly zero gradient");
    xv_graph_free(g);

    ce_ctx c = {t, XV_SHAPE(N)};
    xv_fd_opts o = ce_fd_opts();
    xv_fd_input in = {XV_SHAPE(N, C), x, true};
    CHECK(xv_fd_check("fd cross_entropy", fd_ce, &c, &in, 1, &o) == 0, "fd ce");
    /* Logits [B, M, C] with targets [B, M] (MLM shape). */
    int32_t t3[6] = {1, IGNORE, 3, 0, 2, IGNORE};
    ce_ctx c3 = {t3, XV_SHAPE(2, 3)};
    xv_fd_input in3 = {XV_SHAPE(2, 3, C), x, true};
    CHECK(xv_fd_check("fd cross_entropy 3-D", fd_ce, &c3, &in3, 1, &o) == 0, "fd ce 3-D");
}

static void test_cross_entropy_edges(void) {
    xv_graph *g = xv_graph_new(0);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t all_ignored[2] = {IGNORE, IGNORE};
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(2, 3));
    xt->requires_grad = true;
    xv_tensor *L = xv_cross_entropy(g, xt, xv_tensor_wrap_i32(g, all_ignored, XV_SHAPE(2)), IGNORE);
    CHECK(L && L->data[0] == 0.0f, "every row ignored: loss 0 (not NaN)");
    CHECK_OK(xv_backward(g, L));
    CHECK(xt->grad == NULL || (xt->grad[0] == 0 && xt->grad[5] == 0), "and no gradient");
    xv_graph_reset(g);
    int32_t bad[2] = {1, 3};
    xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(2, 3));
    CHECK(xv_cross_entropy(g, xt, xv_tensor_wrap_i32(g, bad, XV_SHAPE(2)), IGNORE) == NULL &&
              xv_graph_status(g) == XV_ERR_INVALID_ARG,
          "target 3 of 3 classes refused");
    CHECK(strstr(xv_error_message(), "target 3 of row 1") != NULL, "message: %s", xv_error_message());
    xv_graph_reset(g);
    xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(2, 3));
    CHECK(xv_cross_entropy(g, xt, xv_tensor_wrap_i32(g, bad, XV_SHAPE(1)), IGNORE) == NULL &&
              xv_graph_status(g) == XV_ERR_SHAPE,
          "1 target for 2 rows refused");
    xv_graph_reset(g);
    /* Large logits stay finite (max-shifted log-sum-exp). */
    float big[3] = {1000, -1000, 0};
    int32_t t0[1] = {0};
    L = xv_cross_entropy(g, xv_tensor_wrap_f32(g, big, XV_SHAPE(1, 3)), xv_tensor_wrap_i32(g, t0, XV_SHAPE(1)),
                         IGNORE);
    CHECK(L && L->data[0] == 0.0f, "logit 1000 on the target: loss 0, got %g", L ? L->data[0] : -1.0);
    xv_graph_free(g);
}

/* MLM-sized rows take the parallel path: identical results for 1 and 3 threads. */
static void test_cross_entropy_threads(void) {
    enum { N = 48, C = 30522 };
    float *x = malloc(sizeof(float) * N * C), *g1 = malloc(sizeof(float) * N * C);
    int32_t t[N];
    xv_test_fill_uniform(x, (int64_t)N * C, -4, 4, 7);
    for (int n = 0; n < N; n++) t[n] = n % 5 == 0 ? IGNORE : (int32_t)((n * 7919) % C);
    float loss1 = 0;
    const int threads[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(threads[k]);
        xv_graph *g = xv_graph_new(0);
        xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C));
        xt->requires_grad = true;
        xv_tensor *L = xv_cross_entropy(g, xt, xv_tensor_wrap_i32(g, t, XV_SHAPE(N)), IGNORE);
        CHECK_OK(xv_backward(g, L));
        if (k == 0) {
            loss1 = L->data[0];
            memcpy(g1, xt->grad, sizeof(float) * N * C);
        } else {
            CHECK(L->data[0] == loss1 && memcmp(g1, xt->grad, sizeof(float) * N * C) == 0,
                  "bitwise equal across thread counts");
        }
        xv_graph_free(g);
    }
    omp_set_num_threads(2);
    free(x);
    free(g1);
}

/* ---------------------------------------------------------------- soft targets */

static xv_tensor *fd_ce_soft(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    return xv_cross_entropy_soft(g, in[0], in[1]);
}

static void test_cross_entropy_soft(void) {
    enum { N = 6, C = 7 };
    float x[N * C], y[N * C];
    xv_test_fill_uniform(x, N * C, -3, 3, 2);
    /* Rows 0-2: ITC same-image positives (P / rowsum). Rows 3-5: captioning
     * smoothing, 0.9 on the target and 0.1/C on the others, so the rows sum
     * to 0.9 + 0.1·(C-1)/C, not 1 (the gradient must use the row sum). */
    memset(y, 0, sizeof y);
    y[0 * C + 0] = 1;
    y[1 * C + 1] = 0.5f, y[1 * C + 4] = 0.5f;
    y[2 * C + 1] = 0.5f, y[2 * C + 4] = 0.5f;
    for (int n = 3; n < N; n++)
        for (int c = 0; c < C; c++) y[n * C + c] = c == n ? 0.9f : 0.1f / C;
    double ref = 0, ls[C];
    for (int n = 0; n < N; n++) {
        ref_log_softmax(x + n * C, C, ls);
        for (int c = 0; c < C; c++) ref -= y[n * C + c] * ls[c];
    }
    ref /= N;
    xv_graph *g = xv_graph_new(0);
    xv_tensor *L = xv_cross_entropy_soft(g, xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C)),
                                         xv_tensor_wrap_f32(g, y, XV_SHAPE(N, C)));
    CHECK(L && fabs(L->data[0] - ref) < 1e-6, "soft loss %.8g, reference %.8g", L ? L->data[0] : 0.0, ref);
    /* One-hot soft targets equal the hard loss. */
    float onehot[N * C] = {0};
    int32_t t[N];
    for (int n = 0; n < N; n++) t[n] = (n * 3) % C, onehot[n * C + t[n]] = 1;
    xv_tensor *xs = xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C));
    xv_tensor *Ls = xv_cross_entropy_soft(g, xs, xv_tensor_wrap_f32(g, onehot, XV_SHAPE(N, C)));
    xv_tensor *Lh = xv_cross_entropy(g, xs, xv_tensor_wrap_i32(g, t, XV_SHAPE(N)), IGNORE);
    CHECK(Ls && Lh && fabs(Ls->data[0] - Lh->data[0]) < 1e-6, "one-hot soft = hard: %.8g vs %.8g",
          Ls ? Ls->data[0] : 0.0, Lh ? Lh->data[0] : 0.0);
    CHECK(xv_cross_entropy_soft(g, xs, xv_tensor_wrap_f32(g, onehot, XV_SHAPE(C, N))) == NULL &&
              xv_graph_status(g) == XV_ERR_SHAPE,
          "y of another shape refused");
    xv_graph_free(g);

    xv_fd_opts o = ce_fd_opts();
    xv_fd_input in[2] = {{XV_SHAPE(N, C), x, true}, {XV_SHAPE(N, C), y, false}};
    CHECK(xv_fd_check("fd cross_entropy_soft", fd_ce_soft, NULL, in, 2, &o) == 0, "fd soft ce");
}

/* ---------------------------------------------------------------- GIoU */

/* Independent double-precision 1 - GIoU of (cx, cy, w, h) boxes. */
static double ref_giou_loss(const double *p, const double *t) {
    double ax0 = p[0] - p[2] / 2, ax1 = p[0] + p[2] / 2, ay0 = p[1] - p[3] / 2, ay1 = p[1] + p[3] / 2;
    double bx0 = t[0] - t[2] / 2, bx1 = t[0] + t[2] / 2, by0 = t[1] - t[3] / 2, by1 = t[1] + t[3] / 2;
    double iw = fmax(0, fmin(ax1, bx1) - fmax(ax0, bx0)), ih = fmax(0, fmin(ay1, by1) - fmax(ay0, by0));
    double inter = iw * ih, uni = p[2] * p[3] + t[2] * t[3] - inter;
    double enc = (fmax(ax1, bx1) - fmin(ax0, bx0)) * (fmax(ay1, by1) - fmin(ay0, by0));
    return 1 - (inter / uni - (enc - uni) / enc);
}

static float giou_one(const float *p, const float *t, float *dp, float *dt) {
    xv_graph *g = xv_graph_new(0);
    float pc[4], tc[4];
    memcpy(pc, p, sizeof pc);
    memcpy(tc, t, sizeof tc);
    xv_tensor *pt = xv_tensor_wrap_f32(g, pc, XV_SHAPE(1, 4)), *tt = xv_tensor_wrap_f32(g, tc, XV_SHAPE(1, 4));
    pt->requires_grad = tt->requires_grad = true;
    xv_tensor *L = xv_giou_loss(g, pt, tt);
    float v = L ? L->data[0] : NAN;
    if (L && dp) {
        CHECK_OK(xv_backward(g, L));
        memcpy(dp, pt->grad, sizeof(float) * 4);
        memcpy(dt, tt->grad, sizeof(float) * 4);
    }
    xv_graph_free(g);
    return v;
}

static void test_giou_hand_cases(void) {
    /* Values ~1 after ~10 float operations: 2e-6 covers the roundings. */
    const double tol = 2e-6;
    float a[4] = {0.5f, 0.5f, 0.4f, 0.3f};
    CHECK(giou_one(a, a, NULL, NULL) == 0.0f, "identical boxes: exactly 0");
    /* Disjoint: [0.1,0.3]² vs [0.6,0.8]²: I = 0, U = 0.08, C = 0.49 -> 1 + 0.41/0.49. */
    float d1[4] = {0.2f, 0.2f, 0.2f, 0.2f}, d2[4] = {0.7f, 0.7f, 0.2f, 0.2f};
    CHECK(fabs(giou_one(d1, d2, NULL, NULL) - (1 + 0.41 / 0.49)) < tol, "disjoint: %.8g",
          giou_one(d1, d2, NULL, NULL));
    /* Containment: [0.4,0.6]² in [0.3,0.7]²: IoU 0.04/0.16 = 0.25, C = U -> 0.75. */
    float c1[4] = {0.5f, 0.5f, 0.2f, 0.2f}, c2[4] = {0.5f, 0.5f, 0.4f, 0.4f};
    CHECK(fabs(giou_one(c1, c2, NULL, NULL) - 0.75) < tol, "containment: %.8g", giou_one(c1, c2, NULL, NULL));
    /* Overlap: [0,0.4]² vs [0.2,0.6]²: I = 0.04, U = 0.28, C = 0.36 -> 1 - 1/7 + 0.08/0.36. */
    float o1[4] = {0.2f, 0.2f, 0.4f, 0.4f}, o2[4] = {0.4f, 0.4f, 0.4f, 0.4f};
    CHECK(fabs(giou_one(o1, o2, NULL, NULL) - (1 - 1.0 / 7 + 0.08 / 0.36)) < tol, "overlap: %.8g",
          giou_one(o1, o2, NULL, NULL));

    /* Kinks, against PyTorch autograd (tools/giou_reference.py): ties split
     * max/min gradients in half, clamp(min=0) passes at 0. Dyadic boxes, so the
     * values are exact up to the float roundings of the chain (1e-6). */
    float dp[4], dt[4];
    const struct {
        const char *name;
        float p[4], t[4], loss, dp[4], dt[4];
    } kinks[] = {
        {"identical", {0.5f, 0.5f, 0.4f, 0.3f}, {0.5f, 0.5f, 0.4f, 0.3f}, 0, {0, 0, 0, 0}, {0, 0, 0, 0}},
        {"shared edges", {0.375f, 0.5f, 0.25f, 0.5f}, {0.5f, 0.5f, 0.5f, 0.5f}, 0.5f,
         {-1.5f, 0, -1.25f, 0.25f}, {1.5f, 0, 0.25f, -0.25f}},
        {"touching", {0.375f, 0.5f, 0.25f, 0.5f}, {0.625f, 0.5f, 0.25f, 0.5f}, 1, {-2, 0, -1, 0}, {2, 0, -1, 0}},
    };
    for (size_t k = 0; k < sizeof kinks / sizeof kinks[0]; k++) {
        float v = giou_one(kinks[k].p, kinks[k].t, dp, dt);
        double worst = fabs(v - kinks[k].loss);
        for (int i = 0; i < 4; i++)
            worst = fmax(worst, fmax(fabs(dp[i] - kinks[k].dp[i]), fabs(dt[i] - kinks[k].dt[i])));
        CHECK(worst < 1e-6, "%s: loss and gradients as PyTorch's autograd (max diff %g; dpred %g %g %g %g)",
              kinks[k].name, worst, dp[0], dp[1], dp[2], dp[3]);
    }
}

static void test_giou_degenerate(void) {
    float p[12] = {0.5f, 0.5f, 0.2f, 0.2f, 0.3f, 0.3f, 0.1f, 0.1f, 0.6f, 0.6f, 0.2f, 0.3f};
    float t[12] = {0.4f, 0.5f, 0.2f, 0.2f, 0.3f, 0.4f, 0.1f, 0.1f, 0.6f, 0.5f, 0.2f, 0.3f};
    for (int which = 0; which < 2; which++) {
        float pp[12], tt[12];
        memcpy(pp, p, sizeof pp);
        memcpy(tt, t, sizeof tt);
        (which ? tt : pp)[4 * 2 + 2] = -0.01f; /* box 2 has negative width: x1 < x0 */
        xv_graph *g = xv_graph_new(0);
        xv_tensor *P = xv_tensor_wrap_f32(g, pp, XV_SHAPE(3, 4)), *T = xv_tensor_wrap_f32(g, tt, XV_SHAPE(3, 4));
        P->requires_grad = true;
        xv_tensor *L = xv_giou_loss(g, P, T);
        CHECK(L && L->data[0] == 0 && L->data[1] == 0 && L->data[2] == 0,
              "one degenerate %s box zeroes the whole batch", which ? "target" : "predicted");
        CHECK(L && !L->requires_grad, "and carries no gradient");
        xv_graph_free(g);
    }
    /* Zero width is not degenerate (x1 == x0): the term is computed. */
    float z[4] = {0.5f, 0.5f, 0.0f, 0.2f}, b[4] = {0.5f, 0.5f, 0.2f, 0.2f};
    CHECK(fabs(giou_one(z, b, NULL, NULL) - 1.0) < 2e-6, "zero-width box: IoU 0, C = U -> 1");
}

static xv_tensor *fd_giou(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    return xv_giou_loss(g, in[0], in[1]);
}

/* Random pairs kept only when every kink (equal corners, zero intersection
 * extent) is at least `margin` away, so steps of h stay on one smooth piece. */
static void random_pairs(float *p, float *t, int n, uint64_t seed, double margin) {
    xv_rng r;
    xv_rng_seed(&r, seed);
    for (int k = 0; k < n;) {
        float b[8];
        for (int i = 0; i < 8; i++) b[i] = i % 4 < 2 ? 0.3f + 0.4f * xv_rng_uniform(&r) : 0.1f + 0.4f * xv_rng_uniform(&r);
        bool ok = true;
        for (int ax = 0; ax < 2; ax++) {
            double a0 = b[ax] - b[ax + 2] / 2, a1 = b[ax] + b[ax + 2] / 2;
            double b0 = b[4 + ax] - b[6 + ax] / 2, b1 = b[4 + ax] + b[6 + ax] / 2;
            ok &= fabs(a0 - b0) > margin && fabs(a1 - b1) > margin && fabs(fmin(a1, b1) - fmax(a0, b0)) > margin;
        }
        if (!ok) continue;
        memcpy(p + 4 * k, b, sizeof(float) * 4);
        memcpy(t + 4 * k, b + 4, sizeof(float) * 4);
        k++;
    }
}

static void test_giou_gradients(void) {
    enum { N = 12 };
    float p[4 * N], t[4 * N];
    random_pairs(p, t, N, 77, 0.02);
    /* Harness FD with h = 1e-3 (kinks >= 0.02 away, so no crossing):
     * - output rounding: y ~ 1 after ~10 float ops, ~5 ulp = 6e-7, doubled
     *   and divided by 2h: 6e-4;
     * - truncation h²/6·|y'''| with boxes >= 0.1 wide: |y'''| <~ 1/0.1³ -> 2e-4.
     * Gradients are O(1-10): atol 2e-3 + rtol 5e-3. */
    xv_fd_opts o = xv_fd_defaults();
    o.h = 1e-3;
    o.atol = 2e-3;
    o.rtol = 5e-3;
    xv_fd_input in[2] = {{XV_SHAPE(N, 4), p, true}, {XV_SHAPE(N, 4), t, true}};
    CHECK(xv_fd_check("fd giou", fd_giou, NULL, in, 2, &o) == 0, "fd giou");

    /* Tighter: the op's analytic gradient against central differences of the
     * double reference above (h = 1e-6: truncation ~1e-9, rounding ~1e-10),
     * so the only error left is the op's float roundings (~1e-6 relative). */
    double worst = 0;
    for (int n = 0; n < N; n++) {
        float dp[4], dt[4];
        giou_one(p + 4 * n, t + 4 * n, dp, dt);
        double pd[4], td[4];
        for (int i = 0; i < 4; i++) pd[i] = p[4 * n + i], td[i] = t[4 * n + i];
        for (int i = 0; i < 8; i++) {
            double *v = i < 4 ? &pd[i] : &td[i - 4], v0 = *v;
            *v = v0 + 1e-6;
            double lp = ref_giou_loss(pd, td);
            *v = v0 - 1e-6;
            double lm = ref_giou_loss(pd, td);
            *v = v0;
            double num = (lp - lm) / 2e-6, ana = i < 4 ? dp[i] : dt[i - 4];
            worst = fmax(worst, fabs(num - ana) / (1e-3 + fabs(num)));
        }
    }
    CHECK(worst < 1e-4, "giou gradient vs double reference: worst relative diff %g", worst);
}

int main(void) {
    test_cross_entropy();
    test_cross_entropy_edges();
    test_cross_entropy_threads();
    test_cross_entropy_soft();
    test_giou_hand_cases();
    test_giou_degenerate();
    test_giou_gradients();
    return xv_test_finish("test_ops_loss");
}
