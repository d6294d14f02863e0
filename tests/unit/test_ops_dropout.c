/* Dropout and drop-path: identity in eval mode; in training, masks fixed by
 * the graph seed through counter-based Philox (dropout: element i <-> word
 * i mod 4 of block base + i/4; drop-path: sample b <-> counter base + b),
 * independent of the thread count, with the right keep rate and scaling, and
 * the same mask applied by backward. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef xv_tensor *(*reg_op)(xv_graph *g, xv_tensor *x, float p);

/* A new graph in training mode (*g) and x [rows, cols] on it as a leaf that
 * wants a gradient. */
static xv_tensor *training_leaf(xv_graph **g, float *x, int64_t rows, int64_t cols) {
    *g = xv_graph_new(0);
    xv_graph_set_training(*g, true);
    xv_tensor *t = xv_tensor_wrap_f32(*g, x, XV_SHAPE(rows, cols));
    t->requires_grad = true;
    return t;
}

/* Runs op in training mode with the graph seed; returns the output copy
 * (caller frees) and, if base != NULL, the first counter the op used. */
static float *run_training(reg_op op, const float *x, const int64_t *shape, int ndim, float p,
                           uint64_t seed, uint64_t *base) {
    int64_t n = xv_shape_numel(shape, ndim);
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_training(g, true);
    xv_rng_seed(xv_graph_rng(g), seed);
    xv_rng_reserve(xv_graph_rng(g), 5); /* earlier draws in the same step */
    if (base) *base = xv_graph_rng(g)->counter;
    xv_tensor *y = op(g, xv_tensor_wrap_f32(g, (float *)x, shape, ndim), p);
    float *out = malloc(sizeof(float) * (size_t)n);
    if (y) memcpy(out, y->data, sizeof(float) * (size_t)n);
    CHECK(y != NULL, "training forward: %s", xv_error_message());
    xv_graph_free(g);
    return out;
}

static void test_eval_identity(void) {
    float x[12];
    xv_test_fill_uniform(x, 12, -1, 1, 1);
    xv_graph *g = xv_graph_new(0);
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(3, 4));
    uint64_t c0 = xv_graph_rng(g)->counter;
    CHECK(xv_dropout(g, xt, 0.5f) == xt && xv_drop_path(g, xt, 0.5f) == xt, "eval mode: identity");
    CHECK(xv_graph_rng(g)->counter == c0, "eval mode draws no random numbers");
    xv_graph_set_training(g, true);
    CHECK(xv_dropout(g, xt, 0.0f) == xt && xv_drop_path(g, xt, 0.0f) == xt, "p = 0: identity");
    CHECK(xv_dropout(g, xt, 1.5f) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "p > 1 refused");
    xv_graph_reset(g);
    xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(3, 4));
    xv_tensor *all = xv_dropout(g, xt, 1.0f);
    int nonzero = 0;
    for (int i = 0; all && i < 12; i++) nonzero += all->data[i] != 0.0f;
    CHECK(all && nonzero == 0, "p = 1 drops everything (no inf/NaN)");
    xv_graph_free(g);
}

static void test_dropout_mask_contract(void) {
    enum { N = (1 << 20) + 3 }; /* not a multiple of 4: the last block is partly used */
    const float p = 0.1f;
    float *x = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
    uint64_t base;
    float *y = run_training(xv_dropout, x, XV_SHAPE(N), p, 42, &base);
    /* Element i is kept iff word i%4 of Philox(seed, base + i/4), as a 24-bit
     * uniform, is >= p; kept values are x · float(1/(1-p)) exactly. */
    const float scale = 1.0f / (float)(1.0 - (double)p);
    int64_t kept = 0, wrong = 0;
    for (int64_t i = 0; i < N; i++) {
        uint32_t w[4];
        xv_philox(42, base + (uint64_t)i / 4, w);
        bool keep = (float)(w[i % 4] >> 8) * (1.0f / 16777216.0f) >= p;
        kept += keep;
        wrong += y[i] != (keep ? x[i] * scale : 0.0f);
    }
    CHECK(wrong == 0, "mask = Philox words of blocks base+i/4, kept values scaled by 1/(1-p): %lld wrong",
          (long long)wrong);
    /* Keep rate: binomial, sd = sqrt(p(1-p)/N) = 2.9e-4; 5 sd = 1.5e-3. */
    double rate = (double)kept / N;
    CHECK(fabs(rate - 0.9) < 1.5e-3, "keep rate %.5f", rate);
    /* Unbiased: E[y] = E[x]. For x = 1: mean(y) = rate·scale, sd of the mean
     * sqrt(p/(1-p)/N) = 3.3e-4; 5 sd. */
    double s = 0;
    float *ones = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    float *y1 = run_training(xv_dropout, ones, XV_SHAPE(N), p, 43, NULL);
    for (int i = 0; i < N; i++) s += y1[i];
    CHECK(fabs(s / N - 1.0) < 1.7e-3, "mean of dropout(1) = %.5f", s / N);

    /* Same seed, same mask; another seed, another mask; thread count irrelevant. */
    omp_set_num_threads(1);
    float *y_1t = run_training(xv_dropout, x, XV_SHAPE(N), p, 42, NULL);
    omp_set_num_threads(3);
    float *y_3t = run_training(xv_dropout, x, XV_SHAPE(N), p, 42, NULL);
    omp_set_num_threads(2);
    float *y_other = run_training(xv_dropout, x, XV_SHAPE(N), p, 44, NULL);
    CHECK(memcmp(y, y_1t, sizeof(float) * N) == 0 && memcmp(y, y_3t, sizeof(float) * N) == 0,
          "bitwise identical for 1, 2, 3 threads");
    CHECK(memcmp(y, y_other, sizeof(float) * N) != 0, "another seed gives another mask");
    free(x);
    free(y);
    free(ones);
    free(y1);
    free(y_1t);
    free(y_3t);
    free(y_other);
}

static void test_dropout_backward_and_counters(void) {
    enum { N = 1000 };
    float x[N], dout[N];
    xv_test_fill_uniform(x, N, -1, 1, 3);
    xv_test_fill_uniform(dout, N, -1, 1, 4);
    xv_graph *g;
    xv_tensor *xt = training_leaf(&g, x, 10, 100);
    uint64_t c0 = xv_graph_rng(g)->counter;
    xv_tensor *a = xv_dropout(g, xt, 0.3f);
    CHECK(xv_graph_rng(g)->counter == c0 + N / 4, "dropout reserves one counter per 4 elements");
    xv_tensor *b = xv_dropout(g, xt, 0.3f);
    CHECK(a && b && memcmp(a->data, b->data, sizeof x) != 0, "consecutive dropouts draw fresh masks");
    CHECK_OK(xv_backward_with(g, a, dout));
    /* Backward uses the forward's mask: dx = dy·scale where y kept, else 0. */
    const float scale = 1.0f / (float)(1.0 - 0.3);
    int wrong = 0;
    for (int i = 0; i < N; i++) wrong += xt->grad[i] != (a->data[i] != 0.0f ? dout[i] * scale : 0.0f);
    CHECK(wrong == 0, "backward applies the forward mask (%d wrong)", wrong);
    xv_graph_free(g);
}

static xv_tensor *fd_dropout(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    return xv_dropout(g, in[0], 0.4f);
}

static xv_tensor *fd_drop_path(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    return xv_drop_path(g, in[0], 0.5f);
}

static void test_fd(void) {
    /* Training mode; the harness reseeds the graph RNG for every evaluation,
     * so each one sees the same mask. The op is then linear (y = m·x/keep):
     * with the output one float rounding (6e-8 relative, |y| < 2) away, the
     * central difference is within 2·1.2e-7/2h = 1.2e-5 of the truth. */
    float x[6 * 7];
    xv_test_fill_uniform(x, 42, -1, 1, 5);
    xv_fd_opts o = xv_fd_defaults();
    o.training = true;
    o.atol = 3e-5;
    o.rtol = 1e-5;
    o.max_checks = 42;
    xv_fd_input in = {XV_SHAPE(6, 7), x, true};
    CHECK(xv_fd_check("fd dropout", fd_dropout, NULL, &in, 1, &o) == 0, "fd dropout");
    xv_fd_input inp = {XV_SHAPE(6, 7), x, true};
    CHECK(xv_fd_check("fd drop_path", fd_drop_path, NULL, &inp, 1, &o) == 0, "fd drop_path");
}

static void test_drop_path(void) {
    /* Many samples of [3, 4]: each is either all zero or all x/keep. */
    enum { B = 40000, PER = 12 };
    const float p = 0.2f, keep = 1.0f - p;
    float *x = malloc(sizeof(float) * B * PER);
    xv_test_fill_uniform(x, (int64_t)B * PER, 0.5f, 1.5f, 6); /* never 0 */
    uint64_t base;
    float *y = run_training(xv_drop_path, x, XV_SHAPE(B, 3, 4), p, 9, &base);
    int64_t kept = 0, mixed = 0, counter_wrong = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t nz = 0, exact = 0;
        for (int i = 0; i < PER; i++) {
            nz += y[b * PER + i] != 0.0f;
            exact += y[b * PER + i] == x[b * PER + i] / keep;
        }
        bool k = nz == PER;
        mixed += !(nz == 0 || (k && exact == PER));
        kept += k;
        /* Sample b is kept iff uniform(seed, base + b) >= p (timm: floor(keep + u)). */
        counter_wrong += k != (xv_rng_uniform_at(9, base + (uint64_t)b) >= p);
    }
    CHECK(mixed == 0, "every sample is all-dropped or all-kept and scaled by 1/keep (%lld not)", (long long)mixed);
    CHECK(counter_wrong == 0, "sample b uses counter base+b (%lld differ)", (long long)counter_wrong);
    /* sd = sqrt(p(1-p)/B) = 2e-3; 5 sd = 1e-2. */
    CHECK(fabs((double)kept / B - keep) < 1e-2, "sample keep rate %.4f", (double)kept / B);
    omp_set_num_threads(1);
    float *y1 = run_training(xv_drop_path, x, XV_SHAPE(B, 3, 4), p, 9, NULL);
    omp_set_num_threads(2);
    CHECK(memcmp(y, y1, sizeof(float) * B * PER) == 0, "thread count does not change drop-path");

    /* Backward: the same per-sample mask. */
    xv_graph *g;
    xv_tensor *xt = training_leaf(&g, x, 64, 12);
    uint64_t c0 = xv_graph_rng(g)->counter;
    xv_tensor *d = xv_drop_path(g, xt, 0.5f);
    CHECK(xv_graph_rng(g)->counter == c0 + 64, "drop-path reserves one counter per sample");
    float dout[64 * 12];
    xv_test_fill_uniform(dout, 64 * 12, -1, 1, 7);
    CHECK_OK(xv_backward_with(g, d, dout));
    int wrong = 0;
    for (int i = 0; i < 64 * 12; i++) wrong += xt->grad[i] != (d->data[i] != 0.0f ? dout[i] / 0.5f : 0.0f);
    CHECK(wrong == 0, "drop-path backward uses the forward mask (%d wrong)", wrong);
    xv_graph_free(g);
    free(x);
    free(y);
    free(y1);
}

int main(void) {
    test_eval_identity();
    test_dropout_mask_contract();
    test_dropout_backward_and_counters();
    test_fd();
    test_drop_path();
    return xv_test_finish("test_ops_dropout");
}
