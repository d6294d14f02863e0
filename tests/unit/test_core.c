/* Core: arena, RNG, graph errors, tape accumulation. */
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "testutil.h"

static void test_arena(void) {
    xv_arena a;
    xv_arena_init(&a, 1024);
    void *p1 = xv_arena_alloc(&a, 100);
    void *p2 = xv_arena_alloc(&a, 5000); /* larger than a chunk */
    CHECK(p1 && p2, "allocations");
    CHECK(((uintptr_t)p1 & 63) == 0 && ((uintptr_t)p2 & 63) == 0, "64-byte alignment");
    size_t peak = a.peak;
    xv_arena_reset(&a);
    CHECK(a.used == 0 && a.peak == peak, "reset keeps peak");
    CHECK(xv_arena_reserved(&a) >= 5000 + 128, "reset keeps the memory");
    void *p3 = xv_arena_alloc(&a, 5000);
    CHECK(p3 != NULL, "reuse after reset");
    a.limit = 8192;
    CHECK(xv_arena_alloc(&a, 1 << 20) == NULL, "limit enforced");
    xv_arena_free(&a);
}

static void test_rng(void) {
    xv_rng a, b;
    xv_rng_seed(&a, 42);
    xv_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= xv_rng_u32(&a) == xv_rng_u32(&b);
    CHECK(same, "same seed, same stream");
    xv_rng_seed(&b, 43);
    CHECK(xv_rng_u32(&a) != xv_rng_u32(&b), "different seeds differ");
    /* Counter-based: value at counter c does not depend on call order. */
    xv_rng_seed(&a, 7);
    uint64_t base = xv_rng_reserve(&a, 10);
    float v5 = xv_rng_uniform_at(7, base + 5);
    xv_rng_seed(&b, 7);
    for (int i = 0; i < 5; i++) xv_rng_uniform(&b);
    CHECK(xv_rng_uniform(&b) == v5, "counter-based access");
    /* Moments of uniform and normal. */
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    xv_rng_seed(&a, 1);
    for (int i = 0; i < 100000; i++) {
        double u = xv_rng_uniform(&a);
        CHECK(u >= 0 && u < 1, "uniform range");
        s += u;
        s2 += u * u;
        double z = xv_rng_normal(&a);
        n1 += z;
        n2 += z * z;
    }
    CHECK(fabs(s / 1e5 - 0.5) < 0.01, "uniform mean %g", s / 1e5);
    CHECK(fabs(n1 / 1e5) < 0.02 && fabs(n2 / 1e5 - 1) < 0.02, "normal moments %g %g", n1 / 1e5, n2 / 1e5);
    int counts[6] = {0};
    for (int i = 0; i < 60000; i++) counts[xv_rng_below(&a, 6)]++;
    for (int i = 0; i < 6; i++) CHECK(abs(counts[i] - 10000) < 500, "below(6) bucket %d: %d", i, counts[i]);
    xv_rng c1 = xv_rng_split(&a, 1), c2 = xv_rng_split(&a, 2);
    CHECK(c1.key != c2.key, "split streams differ");
}

static void test_graph_errors(void) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *t = xv_tensor_new(g, XV_F32, XV_SHAPE(2, 3));
    CHECK(t && t->numel == 6 && t->ndim == 2, "tensor shape");
    CHECK(xv_graph_status(g) == XV_OK, "no error yet");
    xv_tensor *bad = xv_tensor_new(g, XV_F32, XV_SHAPE(-1));
    CHECK(bad == NULL, "negative dim refused");
    CHECK(xv_graph_status(g) == XV_ERR_SHAPE, "sticky error");
    CHECK(strstr(xv_error_message(), "invalid size") != NULL, "message: %s", xv_error_message());
    CHECK(xv_tensor_new(g, XV_F32, XV_SHAPE(2)) == NULL, "ops after an error return NULL");
    xv_graph_reset(g);
    CHECK(xv_graph_status(g) == XV_OK, "reset clears the error");
    xv_graph_free(g);
}

static void test_params(void) {
    xv_params p;
    xv_params_init(&p);
    xv_tensor *w = xv_params_add(&p, "a.weight", XV_SHAPE(3, 4));
    CHECK(w && w->persistent && w->requires_grad, "param flags");
    CHECK(xv_params_add(&p, "a.weight", XV_SHAPE(1)) == NULL, "duplicate refused");
    CHECK_OK(xv_params_alias(&p, "b.weight", w));
    CHECK(xv_params_find(&p, "b.weight") == w, "alias lookup");
    CHECK(xv_params_count(&p) == 12, "count");
    xv_params_free(&p);
}

int main(void) {
    test_arena();
    test_rng();
    test_graph_errors();
    test_params();
    return xv_test_finish("test_core");
}
