/* Global grad-norm clipping (torch clip_grad_norm_, max_norm 1.0). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "testutil.h"
#include "train/clip.h"

static xv_tensor *add_param(xv_params *ps, const char *name, int64_t n) {
    xv_tensor *t = xv_params_add(ps, name, (const int64_t[]){n}, 1);
    if (t) t->grad = calloc((size_t)n, sizeof(float));
    return t;
}

static void test_norm_and_scaling(void) {
    xv_params ps;
    xv_params_init(&ps);
    xv_tensor *a = add_param(&ps, "a", 2), *b = add_param(&ps, "b", 1);
    xv_params_add(&ps, "no_grad", (const int64_t[]){4}, 1)->data[0] = 100.0f; /* grad NULL: ignored */
    CHECK_OK(xv_params_alias(&ps, "a_tied", a)); /* a tied name is not counted twice */
    a->grad[0] = 3.0f, a->grad[1] = 0.0f, b->grad[0] = 4.0f;
    double n = 0;
    CHECK_OK(xv_clip_grad_norm(&ps, 1.0, &n));
    CHECK(n == 5.0, "norm %g", n);
    float c = (float)(1.0 / (5.0 + 1e-6));
    CHECK(a->grad[0] == 3.0f * c && b->grad[0] == 4.0f * c && a->grad[1] == 0.0f, "scaled by 1/(n+1e-6)");
    /* fp32 scaling of a double coefficient: the new norm is 1 to ~1e-6. */
    CHECK(fabs(xv_grad_norm(&ps) - 1.0) < 2e-6, "norm after clipping %.9g", xv_grad_norm(&ps));

    /* Under max_norm: untouched, bitwise. */
    a->grad[0] = 0.3f, a->grad[1] = -0.4f, b->grad[0] = 0.0f;
    CHECK_OK(xv_clip_grad_norm(&ps, 1.0, &n));
    CHECK(a->grad[0] == 0.3f && a->grad[1] == -0.4f, "below max_norm unchanged");
    CHECK(fabs(n - 0.5) < 1e-7, "norm %g", n);
    /* Norm exactly max_norm: c = 1/(1+1e-6) < 1, so torch still scales. */
    a->grad[0] = 0.6f, a->grad[1] = 0.8f;
    double n1 = xv_grad_norm(&ps);
    CHECK_OK(xv_clip_grad_norm(&ps, n1, NULL));
    CHECK(a->grad[0] == 0.6f * (float)(n1 / (n1 + 1e-6)), "norm == max_norm is scaled by n/(n+1e-6)");

    /* Non-finite norm: refused, gradients unchanged. */
    a->grad[0] = INFINITY;
    b->grad[0] = 2.0f;
    CHECK(xv_clip_grad_norm(&ps, 1.0, &n) == XV_ERR_NUMERIC && !isfinite(n), "inf norm reported");
    CHECK(b->grad[0] == 2.0f, "grads left alone on inf");
    xv_params_free(&ps);
}

/* Many blocks: the double accumulation is thread-count independent and exact to ~1e-15. */
static void test_large_deterministic(void) {
    enum { N = 1000003 };
    xv_params ps;
    xv_params_init(&ps);
    xv_tensor *t = add_param(&ps, "big", N);
    xv_test_fill_uniform(t->grad, N, -1, 1, 5);
    long double ref = 0;
    for (int i = 0; i < N; i++) ref += (long double)t->grad[i] * t->grad[i];
    omp_set_num_threads(1);
    double n1 = xv_grad_norm(&ps);
    omp_set_num_threads(2);
    double n2 = xv_grad_norm(&ps);
    CHECK(n1 == n2, "1 vs 2 threads: %.17g %.17g", n1, n2);
    /* Double sums of 1e6 positive terms: relative error <= 1e6 * 1.1e-16. */
    CHECK(fabs(n1 - (double)sqrtl(ref)) <= 1e-10 * n1, "norm %.17g vs %.17Lg", n1, sqrtl(ref));
    xv_params_free(&ps);
}

int main(void) {
    test_norm_and_scaling();
    test_large_deterministic();
    return xv_test_finish("clip");
}
