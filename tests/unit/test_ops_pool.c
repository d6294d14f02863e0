/* xv_masked_mean: the image CLS (plain mean of the patch tokens) and the
 * region CLS (mask-weighted mean, architecture §2.10), with the weights
 * broadcast over channels. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static xv_tensor *fd_masked_mean(xv_graph *g, xv_tensor **in, void *ctx) {
    return xv_masked_mean(g, in[0], ctx ? in[1] : NULL);
}

/* Reference in double: r[b,c] = sum_p w[b,p]·x[b,p,c] / sum_p w[b,p]. */
static double ref_mean(const float *x, const float *w, int P, int C, int b, int c) {
    double s = 0, d = 0;
    for (int p = 0; p < P; p++) {
        double wp = w ? w[b * P + p] : 1.0;
        s += wp * x[((int64_t)b * P + p) * C + c];
        d += wp;
    }
    return s / d;
}

static void test_masked_mean(void) {
    enum { B = 3, P = 7, C = 5 };
    float x[B * P * C];
    xv_test_fill_uniform(x, B * P * C, -1, 1, 1);
    /* Partial region masks: a box of patches, a single patch, all patches. */
    float w[B * P] = {0, 1, 1, 0, 1, 0, 0, /**/ 0, 0, 0, 0, 0, 1, 0, /**/ 1, 1, 1, 1, 1, 1, 1};
    xv_graph *g = xv_graph_new(0);
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(B, P, C));
    xt->requires_grad = true;
    xv_tensor *r = xv_masked_mean(g, xt, xv_tensor_wrap_f32(g, w, XV_SHAPE(B, P)));
    xv_tensor *m = xv_masked_mean(g, xt, NULL);
    CHECK(r && m && r->ndim == 2 && r->shape[0] == B && r->shape[1] == C, "shape [B, C]");
    double worst = 0;
    for (int b = 0; r && b < B; b++)
        for (int c = 0; c < C; c++) {
            worst = fmax(worst, fabs(r->data[b * C + c] - ref_mean(x, w, P, C, b, c)));
            worst = fmax(worst, fabs(m->data[b * C + c] - ref_mean(x, NULL, P, C, b, c)));
        }
    /* Double sums, one final float rounding of values < 1: 6e-8. */
    CHECK(worst < 1e-7, "forward vs reference: max diff %g", worst);
    CHECK(r && r->data[C] == x[(1 * P + 5) * C], "a one-patch region is that patch exactly");
    CHECK(r && m && memcmp(r->data + 2 * C, m->data + 2 * C, sizeof(float) * C) == 0,
          "an all-ones mask equals the plain mean");
    /* Backward: patch p of row b gets dr·w_p / sum w; masked patches get exactly 0. */
    float dout[B * C];
    for (int k = 0; k < B * C; k++) dout[k] = (float)(k + 1);
    CHECK_OK(xv_backward_with(g, r, dout));
    int bad = 0, masked_nonzero = 0;
    for (int b = 0; b < B; b++) {
        double den = 0;
        for (int p = 0; p < P; p++) den += w[b * P + p];
        for (int p = 0; p < P; p++)
            for (int c = 0; c < C; c++) {
                float got = xt->grad[(b * P + p) * C + c];
                bad += fabs(got - dout[b * C + c] * w[b * P + p] / den) > 1e-6 * dout[b * C + c];
                masked_nonzero += w[b * P + p] == 0 && got != 0;
            }
    }
    CHECK(bad == 0 && masked_nonzero == 0, "backward: %d wrong, %d masked patches with gradient", bad,
          masked_nonzero);
    xv_graph_free(g);

    /* FD: the op is linear in x and x[b,p,c] reaches only r[b,c], whose float
     * rounding (<= 6e-8) gives <= 6e-8 / h = 6e-6 of FD error; atol 2e-5. */
    xv_fd_opts o = xv_fd_defaults();
    o.atol = 2e-5;
    o.rtol = 1e-5;
    o.max_checks = B * P * C;
    xv_fd_input in[2] = {{XV_SHAPE(B, P, C), x, true}, {XV_SHAPE(B, P), w, false}};
    CHECK(xv_fd_check("fd masked_mean", fd_masked_mean, (void *)1, in, 2, &o) == 0, "fd masked");
    CHECK(xv_fd_check("fd mean", fd_masked_mean, NULL, in, 1, &o) == 0, "fd mean");
    /* Non-binary weights are a weighted mean too. */
    float wf[B * P];
    xv_test_fill_uniform(wf, B * P, 0.1f, 2.0f, 3);
    xv_fd_input inf[2] = {{XV_SHAPE(B, P, C), x, true}, {XV_SHAPE(B, P), wf, false}};
    CHECK(xv_fd_check("fd weighted mean", fd_masked_mean, (void *)1, inf, 2, &o) == 0, "fd weighted");
}

static void test_masked_mean_errors(void) {
    xv_graph *g = xv_graph_new(0);
    float x[2 * 3 * 4] = {0}, w[6] = {1, 0, 1, 0, 0, 0};
    xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(2, 3, 4));
    CHECK(xv_masked_mean(g, xt, xv_tensor_wrap_f32(g, w, XV_SHAPE(2, 3))) == NULL &&
              xv_graph_status(g) == XV_ERR_INVALID_ARG,
          "an empty region is refused, not NaN");
    CHECK(strstr(xv_error_message(), "row 1") != NULL, "message names the row: %s", xv_error_message());
    xv_graph_reset(g);
    xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(2, 3, 4));
    CHECK(xv_masked_mean(g, xt, xv_tensor_wrap_f32(g, w, XV_SHAPE(3, 2))) == NULL &&
              xv_graph_status(g) == XV_ERR_SHAPE,
          "w of the wrong shape refused");
    xv_graph_free(g);
}

/* Region-batch size ([Bt, 49, 1024]) takes the parallel path: bitwise equal
 * for 1 and 3 threads. */
static void test_masked_mean_threads(void) {
    enum { B = 16, P = 49, C = 1024 };
    float *x = malloc(sizeof(float) * B * P * C), *w = malloc(sizeof(float) * B * P);
    float *out1 = malloc(sizeof(float) * B * C), *g1 = malloc(sizeof(float) * B * P * C);
    float *dout = malloc(sizeof(float) * B * C);
    xv_test_fill_uniform(x, (int64_t)B * P * C, -1, 1, 5);
    xv_test_fill_uniform(dout, B * C, -1, 1, 6);
    for (int i = 0; i < B * P; i++) w[i] = (i * 37) % 5 != 0;
    const int threads[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(threads[k]);
        xv_graph *g = xv_graph_new(0);
        xv_tensor *xt = xv_tensor_wrap_f32(g, x, XV_SHAPE(B, P, C));
        xt->requires_grad = true;
        xv_tensor *r = xv_masked_mean(g, xt, xv_tensor_wrap_f32(g, w, XV_SHAPE(B, P)));
        CHECK_OK(xv_backward_with(g, r, dout));
        if (k == 0) {
            memcpy(out1, r->data, sizeof(float) * B * C);
            memcpy(g1, xt->grad, sizeof(float) * B * P * C);
        } else {
            CHECK(memcmp(out1, r->data, sizeof(float) * B * C) == 0 &&
                      memcmp(g1, xt->grad, sizeof(float) * B * P * C) == 0,
                  "bitwise equal across thread counts");
        }
        xv_graph_free(g);
    }
    omp_set_num_threads(2);
    free(x);
    free(w);
    free(out1);
    free(g1);
    free(dout);
}

int main(void) {
    test_masked_mean();
    test_masked_mean_errors();
    test_masked_mean_threads();
    return xv_test_finish("test_ops_pool");
}
