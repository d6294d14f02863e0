/* Dense ops (linear, bmm, elementwise, reductions, norms, softmax):
 * 1. forward values against naive double-precision loops, with tolerances from
 *    the fp32 rounding each op performs (u = 2^-24, stated at each check);
 * 2. backward against central finite differences (xv_fd_check) on odd shapes,
 *    broadcasts, masks and a tensor reused by two consumers;
 * 3. determinism, bad-argument errors, and the accuracy of the vectorisable
 *    exp / erf in ops/fastmath.h.
 *
 * Finite-difference tolerance (xv_fd_check defaults: h = 1e-2, atol 2e-3,
 * rtol 1e-2): the checker evaluates L = Σ r_i·y_i (|r_i| <= 1) in fp32 ops
 * and double sums. Rounding noise in L is about u·sqrt(n)·max|y| <= 6e-8·40·10
 * for our n <= 1500 outputs of magnitude <= 10, i.e. <= 3e-5, so the
 * difference quotient carries <= 3e-5 / (2h) = 1.5e-3 absolute noise (< atol);
 * the O(h²) truncation term h²/6·|L'''| stays under 1% of the derivative for
 * the smooth functions tested (rtol). Non-smooth points (abs at 0, the l2
 * clamp) are kept more than h away from the inputs. */
#include <math.h>
#include <string.h>

#include "ops/fastmath.h"
#include "ops/gemm.h"
#include "testutil.h"

#define U 5.9604644775390625e-08 /* 2^-24, unit roundoff of fp32 */

static xv_graph *G; /* holds the test data; freed at the end */

static float *rnd(int64_t n, float lo, float hi, uint64_t seed) {
    float *x = xv_graph_alloc(G, sizeof(float) * (size_t)(n ? n : 1));
    xv_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

static double *dbuf(int64_t n) { return xv_graph_calloc(G, sizeof(double) * (size_t)(n ? n : 1)); }

/* Every |got - ref| <= tol (elementwise); reports the worst offender. */
static void check_close(const char *what, const float *got, const double *ref, const double *tol, int64_t n) {
    int64_t bad = 0, worst = -1;
    double worst_ratio = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        double ratio = err / (tol[i] > 0 ? tol[i] : 1e-300);
        if (!(err <= tol[i])) bad++;
        if (ratio > worst_ratio || got[i] != got[i]) worst_ratio = ratio, worst = i;
    }
    CHECK(bad == 0, "%s: %lld of %lld values outside tolerance; worst [%lld] got %.9g want %.9g tol %.3g", what,
          (long long)bad, (long long)n, (long long)worst, worst >= 0 ? got[worst] : 0.0,
          worst >= 0 ? ref[worst] : 0.0, worst >= 0 ? tol[worst] : 0.0);
}

static xv_tensor *wrap(xv_graph *g, float *d, const int64_t *shape, int nd) { return xv_tensor_wrap_f32(g, d, shape, nd); }

/* ============================================================ fastmath */

static void test_fastmath(void) {
    /* exp: the fit promises < 1 ulp without FMA; allow 2 ulp (FMA changes rounding). */
    double worst = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.3f + (float)i * (176.0f / 400000.0f);
        double ref = exp((double)x), got = xv_exp_f32(x);
        double ulp = nextafterf((float)ref, INFINITY) - (float)ref;
        worst = fmax(worst, fabs(got - ref) / ulp);
    }
    CHECK(worst <= 2.0, "exp worst error %.2f ulp", worst);
    CHECK(xv_exp_f32(-100.f) == 0.0f && xv_exp_f32(-1e9f) == 0.0f, "exp of masked scores is exactly 0");
    CHECK(isinf(xv_exp_f32(100.f)) && isnan(xv_exp_f32(NAN)) && xv_exp_f32(0.f) == 1.0f, "exp special values");
    /* erf: 2.3 ulp / 1.4e-7 absolute in the fit; allow 3 ulp and 2e-7. */
    double worst_ulp = 0, worst_abs = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = -5.0f + (float)i * (10.0f / 200000.0f);
        double ref = erf((double)x), got = xv_erf_f32(x);
        double ulp = fabs(nextafterf((float)fabs(ref), INFINITY) - (float)fabs(ref));
        if (fabs(ref) > 1e-30) worst_ulp = fmax(worst_ulp, fabs(got - ref) / ulp);
        worst_abs = fmax(worst_abs, fabs(got - ref));
    }
    CHECK(worst_ulp <= 3.0 && worst_abs <= 2e-7, "erf worst error %.2f ulp, %.3g absolute", worst_ulp, worst_abs);
    CHECK(isnan(xv_erf_f32(NAN)) && xv_erf_f32(10.f) == 1.0f && xv_erf_f32(-10.f) == -1.0f, "erf special values");
}

/* ============================================================ forward vs naive */

/* Small, then large enough for the backends' blocked kernels (K split in
 * blocks, several row and column tiles, tails). */
static void test_linear_forward(void) {
    static const int SH[2][3] = {{3 * 7, 13, 49}, {301, 300, 130}};
    printf("Linear forward backend: %s\n", xv_gemm_backend());
    for (int si = 0; si < 2; si++) {
        const int rows = SH[si][0], in = SH[si][1], out = SH[si][2];
        float *x = rnd(rows * in, -1, 1, 1), *w = rnd(out * in, -1, 1, 2), *b = rnd(out, -1, 1, 3);
        xv_graph *g = xv_graph_new(1 << 20);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            xv_tensor *y = xv_linear(g, wrap(g, x, XV_SHAPE(rows, in)), wrap(g, w, XV_SHAPE(out, in)),
                                     with_bias ? wrap(g, b, XV_SHAPE(out)) : NULL);
            CHECK(y && y->ndim == 2 && y->shape[1] == out, "linear shape");
            if (!y) continue;
            double *ref = dbuf(rows * out), *tol = dbuf(rows * out);
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < out; o++) {
                    double s = with_bias ? b[o] : 0, mag = fabs(s);
                    for (int k = 0; k < in; k++)
                        s += (double)x[r * in + k] * w[o * in + k], mag += fabs(x[r * in + k] * w[o * in + k]);
                    ref[r * out + o] = s;
                    /* recursive-summation bound, whatever the order: K+1 roundings of partial sums */
                    tol[r * out + o] = (in + 2) * U * mag;
                }
            check_close(with_bias ? "linear forward (bias)" : "linear forward", y->data, ref, tol, rows * out);
        }
        xv_graph_free(g);
    }
}

/* xv_gemm_product (the Linear backward's products) in all four layouts,
 * overwriting and accumulating, against double loops; shapes past the
 * kernels' 16/64-wide blocks with odd remainders. */
static void test_gemm_product(void) {
    const int m = 67, n = 35, k = 301;
    float *a = rnd(m * k, -1, 1, 21), *b = rnd(k * n, -1, 1, 22), *c0 = rnd(m * n, -1, 1, 23);
    float *c = rnd(m * n, 0, 0, 0);
    double *ref = dbuf(m * n), *tol = dbuf(m * n);
    xv_graph *g = xv_graph_new(1 << 20);
    for (int v = 0; v < 8; v++) {
        const bool ta = v & 1, tb = v & 2, acc = v & 4;
        memcpy(c, c0, sizeof(float) * (size_t)(m * n));
        bool ok = xv_gemm_product(g, ta, tb, m, n, k, a, b, acc, c);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = acc ? c0[i * n + j] : 0, mag = fabs(s);
                for (int p = 0; p < k; p++) {
                    double t = (double)a[ta ? p * m + i : i * k + p] * b[tb ? j * k + p : p * n + j];
                    s += t, mag += fabs(t);
                }
                ref[i * n + j] = s;
                tol[i * n + j] = (k + 2) * U * mag; /* k + 1 roundings of partial sums, any order */
            }
        char what[96];
        snprintf(what, sizeof what, "gemm product %s%s%s (%s)", ta ? "aT" : "a", tb ? "·bT" : "·b", acc ? " +=" : "",
                 xv_gemm_backend());
        CHECK(ok, "%s ran", what);
        check_close(what, c, ref, tol, m * n);
        xv_graph_reset(g);
    }
    xv_graph_free(g);
}

/* xv_linear_gelu: without recording one fused op (the backend's GELU), with
 * recording exactly xv_gelu of xv_linear. */
static void test_linear_gelu(void) {
    xv_graph *g = xv_graph_new(1 << 22);
    xv_graph_set_grad(g, false);
    /* The GELU alone, z = x·1 exact, on a grid over [-8, 8]: both backends stay
     * within 2e-7·max(1, |z|) of the exact value (fp32 rounding of the result,
     * ~0.5 ulp of |z|, plus the erf approximation). */
    const int n = 16001;
    xv_tensor *z = xv_tensor_new(g, XV_F32, XV_SHAPE(n, 1)), *one = xv_tensor_new(g, XV_F32, XV_SHAPE(1, 1));
    for (int i = 0; i < n; i++) z->data[i] = -8.0f + 16.0f * (float)i / (float)(n - 1);
    one->data[0] = 1;
    xv_tensor *y = xv_linear_gelu(g, z, one, NULL);
    double worst = 0;
    for (int i = 0; y && i < n; i++) {
        double v = z->data[i], ref = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        worst = fmax(worst, fabs(y->data[i] - ref) / fmax(1, fabs(v)));
    }
    CHECK(y && worst <= 2e-7, "fused GELU (%s) within %.3g·max(1,|z|) of the exact GELU", xv_gemm_backend(), worst);
    /* A blocked product with the GELU fused, against double sums. */
    const int rows = 301, in = 300, out = 130;
    float *x = rnd(rows * in, -1, 1, 11), *w = rnd(out * in, -0.2f, 0.2f, 12), *b = rnd(out, -1, 1, 13);
    y = xv_linear_gelu(g, wrap(g, x, XV_SHAPE(rows, in)), wrap(g, w, XV_SHAPE(out, in)), wrap(g, b, XV_SHAPE(out)));
    double *ref = dbuf(rows * out), *tol = dbuf(rows * out);
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b[o], mag = fabs(s);
            for (int k = 0; k < in; k++)
                s += (double)x[r * in + k] * w[o * in + k], mag += fabs(x[r * in + k] * w[o * in + k]);
            ref[r * out + o] = 0.5 * s * (1 + erf(s / sqrt(2.0)));
            /* the product's bound through GELU' (<= 1.13), plus the GELU's own */
            tol[r * out + o] = 1.13 * (in + 2) * U * mag + 2e-7 * fmax(1, fabs(s));
        }
    if (y) check_close("linear_gelu forward (inference)", y->data, ref, tol, rows * out);
    /* Recording: the same two ops as written out. */
    xv_graph_set_grad(g, true);
    xv_tensor *X = wrap(g, x, XV_SHAPE(rows, in)), *W = wrap(g, w, XV_SHAPE(out, in)), *B = wrap(g, b, XV_SHAPE(out));
    W->requires_grad = true;
    xv_tensor *y1 = xv_linear_gelu(g, X, W, B), *y2 = xv_gelu(g, xv_linear(g, X, W, B));
    CHECK(y1 && y2 && y1->node && !memcmp(y1->data, y2->data, sizeof(float) * (size_t)y1->numel),
          "recorded linear_gelu is gelu(linear) bitwise");
    xv_graph_free(g);
}

/* xv_linear_add: the residual added once after the biased product, as the two
 * ops do, so even the fused op (no recording) gives their bits. */
static void test_linear_add(void) {
    xv_graph *g = xv_graph_new(1 << 22);
    const int rows = 301, in = 300, out = 130;
    float *x = rnd(rows * in, -1, 1, 31), *w = rnd(out * in, -1, 1, 32), *b = rnd(out, -1, 1, 33);
    float *r = rnd(rows * out, -20, 20, 34);
    xv_tensor *X = wrap(g, x, XV_SHAPE(rows, in)), *W = wrap(g, w, XV_SHAPE(out, in)), *B = wrap(g, b, XV_SHAPE(out));
    xv_tensor *R = wrap(g, r, XV_SHAPE(rows, out));
    for (int rec = 0; rec < 2; rec++) {
        xv_graph_set_grad(g, rec);
        W->requires_grad = rec;
        xv_tensor *y1 = xv_linear_add(g, X, W, B, R), *y2 = xv_add(g, xv_linear(g, X, W, B), R);
        CHECK(y1 && y2 && (y1->node != NULL) == rec &&
                  !memcmp(y1->data, y2->data, sizeof(float) * (size_t)y1->numel),
              "linear_add equals linear + residual bitwise (%s, %s)", rec ? "recorded" : "fused", xv_gemm_backend());
    }
    xv_graph_set_grad(g, false);
    CHECK(!xv_linear_add(g, X, W, B, wrap(g, r, XV_SHAPE(rows, out - 1))) && xv_graph_status(g) == XV_ERR_SHAPE &&
              strstr(xv_error_message(), "residual"),
          "residual of another shape refused: %s", xv_error_message());
    xv_graph_free(g);
}

static void test_bmm_forward(void) {
    const int B = 2 * 3, M = 7, K = 5, N = 13;
    float *a = rnd(B * M * K, -1, 1, 4), *b = rnd(B * K * N, -1, 1, 5);
    xv_graph *g = xv_graph_new(1 << 20);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            xv_tensor *A = ta ? wrap(g, a, XV_SHAPE(2, 3, K, M)) : wrap(g, a, XV_SHAPE(2, 3, M, K));
            xv_tensor *Bt = tb ? wrap(g, b, XV_SHAPE(2, 3, N, K)) : wrap(g, b, XV_SHAPE(2, 3, K, N));
            xv_tensor *c = xv_bmm(g, A, Bt, ta, tb, 0.7f);
            CHECK(c && c->shape[2] == M && c->shape[3] == N, "bmm shape ta=%d tb=%d", ta, tb);
            if (!c) continue;
            double *ref = dbuf(B * M * N), *tol = dbuf(B * M * N);
            for (int i = 0; i < B; i++)
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        double s = 0, mag = 0;
                        for (int k = 0; k < K; k++) {
                            double av = a[i * M * K + (ta ? k * M + m : m * K + k)];
                            double bv = b[i * K * N + (tb ? n * K + k : k * N + n)];
                            s += av * bv, mag += fabs(av * bv);
                        }
                        ref[(i * M + m) * N + n] = 0.7 * s;
                        tol[(i * M + m) * N + n] = (K + 3) * U * 0.7 * mag; /* K sums + alpha + product */
                    }
            char what[64];
            snprintf(what, sizeof what, "bmm forward ta=%d tb=%d", ta, tb);
            check_close(what, c->data, ref, tol, B * M * N);
        }
    xv_graph_free(g);
}

static void test_elementwise_forward(void) {
    const int64_t n = 3 * 7 * 13;
    float *a = rnd(n, -3, 3, 6), *b = rnd(n, -3, 3, 7), *s = rnd(1, 0.5f, 2, 8);
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *A = wrap(g, a, XV_SHAPE(3, 7, 13));
    double *ref = dbuf(n), *tol = dbuf(n);
    /* b as the full shape, as [7,13] and as [13]: broadcast over the leading dims. */
    const int64_t bshapes[3][3] = {{3, 7, 13}, {7, 13}, {13}};
    const int bnd[3] = {3, 2, 1};
    const char *names[3] = {"add", "sub", "mul"};
    for (int bs = 0; bs < 3; bs++) {
        xv_tensor *Bt = wrap(g, b, bshapes[bs], bnd[bs]);
        int64_t nb = Bt->numel;
        xv_tensor *ys[3] = {xv_add(g, A, Bt), xv_sub(g, A, Bt), xv_mul(g, A, Bt)};
        for (int op = 0; op < 3; op++) {
            CHECK(ys[op] && xv_same_shape(ys[op], A), "%s shape", names[op]);
            if (!ys[op]) continue;
            for (int64_t i = 0; i < n; i++) {
                double av = a[i], bv = b[i % nb];
                ref[i] = op == 0 ? av + bv : op == 1 ? av - bv : av * bv;
                tol[i] = U * fabs(ref[i]); /* one correctly rounded operation */
            }
            char what[64];
            snprintf(what, sizeof what, "%s forward (b numel %lld)", names[op], (long long)nb);
            check_close(what, ys[op]->data, ref, tol, n);
        }
    }
    xv_tensor *y = xv_scale(g, A, -1.3f, 0.25f);
    for (int64_t i = 0; i < n; i++) {
        ref[i] = (double)-1.3f * a[i] + 0.25; /* alpha is the float nearest -1.3 */
        tol[i] = 2 * U * (fabs(1.3 * a[i]) + 0.25); /* product and sum (or one FMA) */
    }
    check_close("scale forward", y->data, ref, tol, n);
    y = xv_div_scalar(g, A, wrap(g, s, XV_SHAPE(1)));
    for (int64_t i = 0; i < n; i++) ref[i] = (double)a[i] / s[0], tol[i] = U * fabs(ref[i]);
    check_close("div_scalar forward", y->data, ref, tol, n);
    y = xv_gelu(g, A);
    for (int64_t i = 0; i < n; i++) {
        double x = a[i];
        ref[i] = 0.5 * x * (1 + erf(x / sqrt(2.0)));
        /* erf within 2e-7 absolute (+ u·|x| from rounding its argument), then 1+erf, ·x, ·0.5 */
        tol[i] = 0.5 * fabs(x) * (2e-7 + U * fabs(x) + 2 * U * 2) + U * fabs(ref[i]);
    }
    check_close("gelu forward", y->data, ref, tol, n);
    y = xv_sigmoid(g, A);
    for (int64_t i = 0; i < n; i++) ref[i] = 1 / (1 + exp(-(double)a[i])), tol[i] = 6 * U * ref[i]; /* exp 2u, add, divide */
    check_close("sigmoid forward", y->data, ref, tol, n);
    y = xv_abs(g, A);
    for (int64_t i = 0; i < n; i++) ref[i] = fabs((double)a[i]), tol[i] = 0; /* exact */
    check_close("abs forward", y->data, ref, tol, n);
    /* Large |x|: no overflow in sigmoid, exact limits. */
    float big[4] = {-200, -90, 90, 200};
    y = xv_sigmoid(g, wrap(g, big, XV_SHAPE(4)));
    CHECK(y && y->data[0] == 0 && y->data[1] >= 0 && y->data[1] < 1e-38 && y->data[2] == 1 && y->data[3] == 1,
          "sigmoid saturates cleanly: %g %g %g %g", y->data[0], y->data[1], y->data[2], y->data[3]);
    xv_graph_free(g);
}

static void test_reduce_forward(void) {
    const int64_t n = 100003; /* odd, and large enough to run in parallel */
    float *x = rnd(n, -1, 3, 9);
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *X = wrap(g, x, XV_SHAPE(n));
    double s = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) s += x[i], mag += fabs(x[i]);
    double ref[2] = {s, s / n}, tol[2] = {U * fabs(s) + 1e-13 * mag, U * fabs(s / n) + 1e-13 * mag / n};
    /* double accumulation (error ~n·2^-53·Σ|x|), one rounding to float */
    xv_tensor *ys = xv_sum(g, X), *ym = xv_mean(g, X);
    CHECK(ys && ym && ys->numel == 1 && ym->numel == 1, "reduction shapes");
    if (ys && ym) {
        check_close("sum forward", ys->data, ref, tol, 1);
        check_close("mean forward", ym->data, ref + 1, tol + 1, 1);
    }
    xv_graph_free(g);
}

static void test_norm_forward(void) {
    const int rows = 3 * 7, C = 49;
    float *x = rnd(rows * C, -2, 5, 10), *gm = rnd(C, 0.5f, 1.5f, 11), *bt = rnd(C, -1, 1, 12);
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *X = wrap(g, x, XV_SHAPE(3, 7, C));
    double *ref = dbuf(rows * C), *tol = dbuf(rows * C);
    const float eps_list[2] = {1e-5f, 1e-12f};
    for (int e = 0; e < 2; e++) {
        xv_tensor *y = xv_layernorm(g, X, wrap(g, gm, XV_SHAPE(C)), wrap(g, bt, XV_SHAPE(C)), eps_list[e]);
        CHECK(y && xv_same_shape(y, X), "layernorm shape");
        if (!y) continue;
        for (int r = 0; r < rows; r++) {
            double mu = 0, var = 0;
            for (int j = 0; j < C; j++) mu += x[r * C + j];
            mu /= C;
            for (int j = 0; j < C; j++) var += (x[r * C + j] - mu) * (x[r * C + j] - mu);
            double rstd = 1 / sqrt(var / C + eps_list[e]);
            for (int j = 0; j < C; j++) {
                double xh = (x[r * C + j] - mu) * rstd;
                ref[r * C + j] = xh * gm[j] + bt[j];
                /* mean rounded to float (u·|mu|·rstd·|γ|), then x-mu, ·rstd, ·γ, +β: 4 roundings */
                tol[r * C + j] = 2 * U * fabs(mu) * rstd * gm[j] + 6 * U * (fabs(xh * gm[j]) + fabs(bt[j]));
            }
        }
        check_close("layernorm forward", y->data, ref, tol, rows * C);
    }
    /* Without affine parameters. */
    xv_tensor *y = xv_layernorm(g, X, NULL, NULL, 1e-5f);
    CHECK(y != NULL, "layernorm without gamma/beta");
    if (y) {
        double s = 0, ss = 0;
        for (int j = 0; j < C; j++) s += y->data[j], ss += (double)y->data[j] * y->data[j];
        CHECK(fabs(s / C) < 1e-6 && fabs(ss / C - 1) < 1e-4, "normalised row: mean %g, var %g", s / C, ss / C);
    }
    /* l2: rows of norm ~3 and one row of norm 0.3 below eps = 1 (clamped divisor). */
    float *z = rnd(5 * 13, -1, 1, 13);
    for (int j = 0; j < 13; j++) z[2 * 13 + j] *= 0.15f;
    y = xv_l2_normalize(g, wrap(g, z, XV_SHAPE(5, 13)), 1.0f);
    double *r2 = dbuf(65), *t2 = dbuf(65);
    for (int r = 0; r < 5; r++) {
        double nrm = 0;
        for (int j = 0; j < 13; j++) nrm += (double)z[r * 13 + j] * z[r * 13 + j];
        nrm = fmax(sqrt(nrm), 1.0);
        for (int j = 0; j < 13; j++) r2[r * 13 + j] = z[r * 13 + j] / nrm, t2[r * 13 + j] = 2 * U * fabs(r2[r * 13 + j]);
    }
    check_close("l2_normalize forward", y->data, r2, t2, 65); /* norm rounded to float, one division */
    xv_graph_free(g);
}

static void test_softmax_forward(void) {
    const int R = 3 * 7, N = 13;
    float *x = rnd(R * N, -4, 4, 14);
    float *mask = rnd(7 * N, 0, 1, 15);
    /* Masks as the official code makes them: -10000 (text), -1e9 (image), -100
     * (Swin shift), one row fully masked with -100 and one with -10000. */
    for (int i = 0; i < 7 * N; i++) mask[i] = mask[i] < 0.3f ? -10000.f : mask[i] < 0.4f ? -1e9f : mask[i] < 0.5f ? -100.f : 0.f;
    for (int j = 0; j < N; j++) mask[2 * N + j] = -100.f, mask[5 * N + j] = -10000.f;
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *X = wrap(g, x, XV_SHAPE(3, 7, N)), *M = wrap(g, mask, XV_SHAPE(7, N));
    xv_tensor *y = xv_softmax(g, X, M), *y0 = xv_softmax(g, X, NULL), *ls = xv_log_softmax(g, X);
    CHECK(y && y0 && ls, "softmax ops");
    if (!y || !y0 || !ls) goto out;
    double *ref = dbuf(R * N), *tol = dbuf(R * N);
    for (int pass = 0; pass < 3; pass++) {
        for (int r = 0; r < R; r++) {
            double s[13], mx = -INFINITY, sum = 0, ds = 0;
            for (int j = 0; j < N; j++) {
                s[j] = (double)x[r * N + j] + (pass == 0 ? mask[(r % 7) * N + j] : 0);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < N; j++) sum += exp(s[j] - mx);
            for (int j = 0; j < N; j++) /* score rounding u·|s| (+u·|s-max|) where the term matters */
                if (exp(s[j] - mx) > 1e-30) ds = fmax(ds, U * (fabs(s[j]) + fabs(s[j] - mx)));
            for (int j = 0; j < N; j++) {
                double p = exp(s[j] - mx) / sum;
                if (pass < 2) {
                    ref[r * N + j] = p;
                    /* exp 2u, N-term sum, division; results below the smallest normal
                     * float (2^-126) may flush to 0 */
                    tol[r * N + j] = p * (2 * ds + (N + 6) * U) + 0x1p-126;
                } else {
                    ref[r * N + j] = s[j] - mx - log(sum);
                    tol[r * N + j] = 4 * U * (fabs(s[j] - mx) + fabs(log(sum))) + (N + 6) * U;
                }
            }
        }
        check_close(pass == 0 ? "softmax forward (masked)" : pass == 1 ? "softmax forward" : "log_softmax forward",
                    pass == 0 ? y->data : pass == 1 ? y0->data : ls->data, ref, tol, R * N);
    }
    /* Masked entries are exactly zero, as in fp32 PyTorch. */
    int zeros = 1;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < N; j++)
            if (mask[(r % 7) * N + j] <= -10000.f && (r % 7) != 5) zeros &= y->data[r * N + j] == 0.0f;
    CHECK(zeros, "masked probabilities are exactly 0");
out:
    xv_graph_free(g);
}

/* ============================================================ finite differences */

typedef struct {
    int kind;
    float f0, f1; /* op parameters (scale's alpha/beta, eps, bmm's alpha) */
    bool ta, tb;  /* bmm transposes */
} fd_ctx;

enum { F_LINEAR, F_LINEAR_NOBIAS, F_BMM, F_ADD, F_SUB, F_MUL, F_SCALE, F_DIV, F_GELU, F_SIGMOID, F_ABS, F_SUM, F_MEAN,
       F_LN, F_LN_NOAFFINE, F_L2, F_SOFTMAX, F_SOFTMAX_MASK, F_LOG_SOFTMAX, F_REUSE, F_SQUARE, F_LINEAR_GELU,
       F_LINEAR_ADD, F_REUSE_LIN_FIRST, F_REUSE_LN, F_REUSE_LN_FIRST };

/* first(x) + second(x), recorded in that order: backward runs second's first,
 * which stores into the fresh gradient of x; first's then adds into it. */
static xv_tensor *reuse_sum(xv_graph *g, xv_tensor *first, xv_tensor *second) { return xv_add(g, first, second); }

static xv_tensor *fd_fn(xv_graph *g, xv_tensor **in, void *p) {
    const fd_ctx *c = p;
    switch (c->kind) {
    case F_LINEAR: return xv_linear(g, in[0], in[1], in[2]);
    case F_LINEAR_NOBIAS: return xv_linear(g, in[0], in[1], NULL);
    case F_BMM: return xv_bmm(g, in[0], in[1], c->ta, c->tb, c->f0);
    case F_ADD: return xv_add(g, in[0], in[1]);
    case F_SUB: return xv_sub(g, in[0], in[1]);
    case F_MUL: return xv_mul(g, in[0], in[1]);
    case F_SCALE: return xv_scale(g, in[0], c->f0, c->f1);
    case F_DIV: return xv_div_scalar(g, in[0], in[1]);
    case F_GELU: return xv_gelu(g, in[0]);
    case F_SIGMOID: return xv_sigmoid(g, in[0]);
    case F_ABS: return xv_abs(g, in[0]);
    case F_SUM: return xv_sum(g, in[0]);
    case F_MEAN: return xv_mean(g, in[0]);
    case F_LN: return xv_layernorm(g, in[0], in[1], in[2], c->f0);
    case F_LN_NOAFFINE: return xv_layernorm(g, in[0], NULL, NULL, c->f0);
    case F_L2: return xv_l2_normalize(g, in[0], c->f0);
    case F_SOFTMAX: return xv_softmax(g, in[0], NULL);
    case F_SOFTMAX_MASK: return xv_softmax(g, in[0], in[1]);
    case F_LOG_SOFTMAX: return xv_log_softmax(g, in[0]);
    /* x feeds two consumers: its gradient must be the sum of both paths. */
    /* Both orders of each op that writes a fresh gradient first (linear, GELU, layernorm). */
    case F_REUSE: {
        xv_tensor *lin = xv_linear(g, in[0], in[1], in[2]);
        return reuse_sum(g, lin, xv_gelu(g, in[0]));
    }
    case F_REUSE_LIN_FIRST: {
        xv_tensor *gelu = xv_gelu(g, in[0]);
        return reuse_sum(g, gelu, xv_linear(g, in[0], in[1], in[2]));
    }
    case F_REUSE_LN: {
        xv_tensor *lin = xv_linear(g, in[0], in[1], in[2]);
        return reuse_sum(g, lin, xv_layernorm(g, in[0], NULL, NULL, 1e-5f));
    }
    case F_REUSE_LN_FIRST: {
        xv_tensor *ln = xv_layernorm(g, in[0], NULL, NULL, 1e-5f);
        return reuse_sum(g, ln, xv_linear(g, in[0], in[1], in[2]));
    }
    /* the same tensor as both operands of one op */
    case F_SQUARE: return xv_mul(g, in[0], in[0]);
    case F_LINEAR_GELU: return xv_linear_gelu(g, in[0], in[1], in[2]);
    case F_LINEAR_ADD: return xv_linear_add(g, in[0], in[1], in[2], in[3]);
    }
    return NULL;
}

#define IN(shape_arr, data, diff) {shape_arr, (int)(sizeof(shape_arr) / sizeof(int64_t)), data, diff}

static void fd(const char *name, int kind, float f0, float f1, const xv_fd_input *in, int n) {
    fd_ctx c = {kind, f0, f1, false, false};
    xv_fd_check(name, fd_fn, &c, in, n, NULL);
}

static void test_fd_linear(void) {
    static const int64_t sx[] = {3, 7, 13}, sw[] = {5, 13}, sb[] = {5}, sx1[] = {13}, sw2[] = {13, 13}, sb2[] = {13};
    float *x = rnd(3 * 7 * 13, -1, 1, 20), *w = rnd(13 * 13, -1, 1, 21), *b = rnd(13, -1, 1, 22);
    xv_fd_input lin[3] = {IN(sx, x, true), IN(sw, w, true), IN(sb, b, true)};
    fd("linear", F_LINEAR, 0, 0, lin, 3);
    fd("linear_gelu (recorded: gelu of linear)", F_LINEAR_GELU, 0, 0, lin, 3);
    static const int64_t sr[] = {3, 7, 5};
    float *res = rnd(3 * 7 * 5, -1, 1, 23);
    xv_fd_input lin_add[4] = {IN(sx, x, true), IN(sw, w, true), IN(sb, b, true), IN(sr, res, true)};
    fd("linear_add (recorded: linear + residual)", F_LINEAR_ADD, 0, 0, lin_add, 4);
    fd("linear without bias", F_LINEAR_NOBIAS, 0, 0, lin, 2);
    xv_fd_input lin1[3] = {IN(sx1, x, true), IN(sw, w, true), IN(sb, b, false)};
    fd("linear of a vector, constant bias", F_LINEAR, 0, 0, lin1, 3);
    xv_fd_input reuse[3] = {IN(sx, x, true), IN(sw2, w, true), IN(sb2, b, true)};
    fd("x reused: linear(x) + gelu(x)", F_REUSE, 0, 0, reuse, 3);
    fd("x reused: gelu(x) + linear(x)", F_REUSE_LIN_FIRST, 0, 0, reuse, 3);
    fd("x reused: linear(x) + layernorm(x)", F_REUSE_LN, 0, 0, reuse, 3);
    fd("x reused: layernorm(x) + linear(x)", F_REUSE_LN_FIRST, 0, 0, reuse, 3);

    static const int64_t sa[] = {2, 3, 7, 5}, sat[] = {2, 3, 5, 7}, sbm[] = {2, 3, 5, 4}, sbt[] = {2, 3, 4, 5};
    float *a = rnd(2 * 3 * 7 * 5, -1, 1, 23), *bb = rnd(2 * 3 * 5 * 4, -1, 1, 24);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            xv_fd_input in[2] = {ta ? (xv_fd_input)IN(sat, a, true) : (xv_fd_input)IN(sa, a, true),
                                 tb ? (xv_fd_input)IN(sbt, bb, true) : (xv_fd_input)IN(sbm, bb, true)};
            char name[64];
            snprintf(name, sizeof name, "bmm ta=%d tb=%d", ta, tb);
            fd_ctx c = {F_BMM, 0.7f, 0, ta, tb};
            xv_fd_check(name, fd_fn, &c, in, 2, NULL);
        }
}

/* a·aᵀ with one leaf: both gradient paths land in the same buffer. */
static xv_tensor *fd_gram(xv_graph *g, xv_tensor **in, void *p) {
    (void)p;
    return xv_bmm(g, in[0], in[0], false, true, 1.0f);
}

static void test_fd_elementwise(void) {
    static const int64_t s3[] = {3, 7, 13}, s2[] = {7, 13}, s1[] = {13}, one[] = {1};
    float *a = rnd(3 * 7 * 13, -2, 2, 30), *b = rnd(3 * 7 * 13, -2, 2, 31), *s = rnd(1, 0.6f, 0.9f, 32);
    const int kinds[3] = {F_ADD, F_SUB, F_MUL};
    const char *names[3] = {"add", "sub", "mul"};
    for (int k = 0; k < 3; k++) {
        char name[64];
        xv_fd_input full[2] = {IN(s3, a, true), IN(s3, b, true)};
        snprintf(name, sizeof name, "%s same shape", names[k]);
        fd(name, kinds[k], 0, 0, full, 2);
        xv_fd_input mid[2] = {IN(s3, a, true), IN(s2, b, true)};
        snprintf(name, sizeof name, "%s broadcast [7,13]", names[k]);
        fd(name, kinds[k], 0, 0, mid, 2);
        xv_fd_input vec[2] = {IN(s3, a, true), IN(s1, b, true)};
        snprintf(name, sizeof name, "%s broadcast [13]", names[k]);
        fd(name, kinds[k], 0, 0, vec, 2);
    }
    xv_fd_input sq[1] = {IN(s3, a, true)};
    fd("x*x (one tensor, both operands)", F_SQUARE, 0, 0, sq, 1);
    static const int64_t sg[] = {3, 7, 5};
    xv_fd_check("bmm a·aᵀ (one tensor, both operands)", fd_gram, NULL, (xv_fd_input[]){IN(sg, a, true)}, 1, NULL);
    xv_fd_input un[1] = {IN(s3, a, true)};
    fd("scale", F_SCALE, -1.3f, 0.5f, un, 1);
    fd("gelu", F_GELU, 0, 0, un, 1);
    fd("sigmoid", F_SIGMOID, 0, 0, un, 1);
    fd("sum", F_SUM, 0, 0, un, 1);
    fd("mean", F_MEAN, 0, 0, un, 1);
    /* abs: keep inputs more than h = 1e-2 away from the kink at 0. */
    float *aa = rnd(3 * 7 * 13, 0.05f, 2, 33);
    for (int i = 0; i < 3 * 7 * 13; i += 2) aa[i] = -aa[i];
    xv_fd_input ab[1] = {IN(s3, aa, true)};
    fd("abs", F_ABS, 0, 0, ab, 1);
    xv_fd_input dv[2] = {IN(s3, a, true), IN(one, s, true)};
    fd("div_scalar", F_DIV, 0, 0, dv, 2);
}

static void test_fd_norm_softmax(void) {
    static const int64_t sx[] = {3, 7, 49}, sc[] = {49}, s13[] = {5, 13}, sm3[] = {3, 7, 13}, sm2[] = {7, 13};
    float *x = rnd(3 * 7 * 49, -2, 2, 40), *gm = rnd(49, 0.5f, 1.5f, 41), *bt = rnd(49, -1, 1, 42);
    xv_fd_input ln[3] = {IN(sx, x, true), IN(sc, gm, true), IN(sc, bt, true)};
    fd("layernorm eps 1e-5", F_LN, 1e-5f, 0, ln, 3);
    fd("layernorm eps 1e-12", F_LN, 1e-12f, 0, ln, 3);
    fd("layernorm without affine", F_LN_NOAFFINE, 1e-5f, 0, ln, 1);
    float *z = rnd(5 * 13, -1, 1, 43);
    for (int j = 0; j < 13; j++) z[13 + j] *= 0.1f; /* norm ~0.2, far below eps: the clamped branch */
    xv_fd_input l2[1] = {IN(s13, z, true)};
    fd("l2_normalize (one row clamped at eps)", F_L2, 1.0f, 0, l2, 1);
    fd("l2_normalize eps 1e-12", F_L2, 1e-12f, 0, l2, 1);
    float *y = rnd(3 * 7 * 13, -3, 3, 44), *mask = rnd(7 * 13, 0, 1, 45);
    for (int i = 0; i < 7 * 13; i++) mask[i] = mask[i] < 0.25f ? -10000.f : mask[i] < 0.35f ? -1e9f : 0.f;
    for (int j = 0; j < 13; j++) mask[3 * 13 + j] = -100.f; /* a fully masked row (Swin's -100) */
    xv_fd_input sm[2] = {IN(sm3, y, true), IN(sm2, mask, false)};
    fd("softmax", F_SOFTMAX, 0, 0, sm, 1);
    fd("softmax with mask [7,13]", F_SOFTMAX_MASK, 0, 0, sm, 2);
    fd("log_softmax", F_LOG_SOFTMAX, 0, 0, sm, 1);
}

/* ============================================================ determinism, errors */

static void test_linear_determinism(void) {
    /* Tall enough to be split over threads, with several 1024-row steps each. */
    const int rows = 2501, in = 129, out = 257;
    float *x = rnd(rows * in, -1, 1, 50), *w = rnd(out * in, -1, 1, 51), *b = rnd(out, -1, 1, 52);
    float *dy = rnd(rows * out, -1, 1, 53);
    float *res[2][4];
    for (int run = 0; run < 2; run++) {
        xv_graph *g = xv_graph_new(1 << 20);
        xv_tensor *X = wrap(g, x, XV_SHAPE(rows, in)), *W = wrap(g, w, XV_SHAPE(out, in)), *B = wrap(g, b, XV_SHAPE(out));
        X->requires_grad = W->requires_grad = B->requires_grad = true;
        xv_tensor *y = xv_linear(g, X, W, B);
        CHECK_OK(xv_backward_with(g, y, dy));
        const float *src[4] = {y->data, X->grad, W->grad, B->grad};
        const int64_t cnt[4] = {rows * out, rows * in, out * in, out};
        for (int i = 0; i < 4; i++) {
            res[run][i] = xv_graph_alloc(G, sizeof(float) * (size_t)cnt[i]);
            memcpy(res[run][i], src[i], sizeof(float) * (size_t)cnt[i]);
        }
        xv_graph_free(g);
    }
    const int64_t cnt[4] = {rows * out, rows * in, out * in, out};
    const char *what[4] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(res[0][i], res[1][i], sizeof(float) * (size_t)cnt[i]) == 0, "linear %s bitwise identical", what[i]);
}

/* The backward works in steps of 1024 rows: check dX, dW, db against double
 * sums on 2500 rows (three steps, the last partial). */
static void test_linear_backward_steps(void) {
    const int rows = 2500, in = 13, out = 7;
    float *x = rnd(rows * in, -1, 1, 60), *w = rnd(out * in, -1, 1, 61), *b = rnd(out, -1, 1, 62);
    float *dy = rnd(rows * out, -1, 1, 63);
    xv_graph *g = xv_graph_new(1 << 20);
    xv_tensor *X = wrap(g, x, XV_SHAPE(rows, in)), *W = wrap(g, w, XV_SHAPE(out, in)), *B = wrap(g, b, XV_SHAPE(out));
    X->requires_grad = W->requires_grad = B->requires_grad = true;
    CHECK_OK(xv_backward_with(g, xv_linear(g, X, W, B), dy));
    double *rx = dbuf(rows * in), *tx = dbuf(rows * in), *rw = dbuf(out * in), *tw = dbuf(out * in);
    double *rb = dbuf(out), *tb = dbuf(out);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < in; k++) {
            double s = 0, mag = 0;
            for (int o = 0; o < out; o++) s += (double)dy[r * out + o] * w[o * in + k], mag += fabs(dy[r * out + o] * w[o * in + k]);
            rx[r * in + k] = s, tx[r * in + k] = (out + 2) * U * mag; /* out-term dot product */
        }
    for (int o = 0; o < out; o++) {
        double sb = 0, mb = 0;
        for (int k = 0; k < in; k++) {
            double s = 0, mag = 0;
            for (int r = 0; r < rows; r++) s += (double)dy[r * out + o] * x[r * in + k], mag += fabs(dy[r * out + o] * x[r * in + k]);
            rw[o * in + k] = s, tw[o * in + k] = (rows + 2) * U * mag; /* rows-term sum (summation-order bound) */
        }
        for (int r = 0; r < rows; r++) sb += dy[r * out + o], mb += fabs(dy[r * out + o]);
        rb[o] = sb, tb[o] = U * fabs(sb) + 1e-12 * mb; /* summed in double across steps, rounded once */
    }
    check_close("linear dX over row steps", X->grad, rx, tx, rows * in);
    check_close("linear dW over row steps", W->grad, rw, tw, out * in);
    check_close("linear db over row steps", B->grad, rb, tb, out);
    xv_graph_free(g);
}

static void test_errors(void) {
    xv_graph *g = xv_graph_new(1 << 20);
    float d[12] = {0};
    /* Tensor headers live in the arena: re-wrap after every reset. */
#define X3x4 wrap(g, d, XV_SHAPE(3, 4))
    CHECK(xv_linear(g, X3x4, wrap(g, d, XV_SHAPE(2, 3)), NULL) == NULL, "linear with mismatched weight fails");
    CHECK(xv_graph_status(g) == XV_ERR_SHAPE && strstr(xv_error_message(), "xv_linear"), "message names the op: %s",
          xv_error_message());
    CHECK(xv_gelu(g, X3x4) == NULL, "ops after an error return NULL");
    xv_graph_reset(g);
    CHECK(xv_add(g, X3x4, NULL) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "NULL input is an error");
    xv_graph_reset(g);
    CHECK(xv_mul(g, X3x4, wrap(g, d, XV_SHAPE(3))) == NULL && strstr(xv_error_message(), "suffix"),
          "non-suffix broadcast refused: %s", xv_error_message());
    xv_graph_reset(g);
    CHECK(xv_bmm(g, X3x4, X3x4, false, false, 1) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "bmm inner dims checked");
    xv_graph_reset(g);
    CHECK(xv_div_scalar(g, X3x4, X3x4) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "div_scalar needs one element");
    xv_graph_reset(g);
    CHECK(xv_layernorm(g, X3x4, wrap(g, d, XV_SHAPE(3)), NULL, 1e-5f) == NULL && xv_graph_status(g) == XV_ERR_SHAPE,
          "layernorm gamma checked");
    xv_graph_reset(g);
    CHECK(xv_softmax(g, X3x4, wrap(g, d, XV_SHAPE(5))) == NULL && xv_graph_status(g) == XV_ERR_SHAPE,
          "softmax mask checked");
    xv_graph_reset(g);
    xv_tensor *ids = xv_tensor_wrap_i32(g, (int32_t *)d, XV_SHAPE(3, 4));
    CHECK(xv_sigmoid(g, ids) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "I32 input refused");
    xv_graph_reset(g);
#undef X3x4
    /* Empty tensors pass through. */
    xv_tensor *e = wrap(g, d, XV_SHAPE(0, 4)), *we = wrap(g, d, XV_SHAPE(3, 4));
    xv_tensor *ye = xv_linear(g, e, we, NULL);
    CHECK(ye && ye->numel == 0 && xv_graph_status(g) == XV_OK, "linear of zero rows");
    xv_tensor *se = xv_sum(g, e);
    CHECK(xv_softmax(g, e, NULL) && se && se->data[0] == 0, "softmax and sum of empty");
    xv_graph_free(g);
}

int main(void) {
    G = xv_graph_new(1 << 22);
    test_fastmath();
    test_linear_forward();
    test_gemm_product();
    test_linear_gelu();
    test_linear_add();
    test_bmm_forward();
    test_elementwise_forward();
    test_reduce_forward();
    test_norm_forward();
    test_softmax_forward();
    test_fd_linear();
    test_fd_elementwise();
    test_fd_norm_softmax();
    test_linear_determinism();
    test_linear_backward_steps();
    test_errors();
    xv_graph_free(G);
    return xv_test_finish("test_ops_dense");
}
