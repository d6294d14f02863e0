/* Backward's memory: the arena gives back each backward step's scratch
 * (mark/release reuses its chunks), and with free_used_grads an activation's
 * gradient is freed once its producer has passed it on, without changing any
 * gradient that is kept (parameters and leaves), bit for bit; the gradient
 * store hands a freed mapping out again zeroed and keeps what it maps within
 * XV_GRAD_SPARE_CAP times its live peak. */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/grad_store.h"
#include "ops/ops.h"
#include "testutil.h"

static void test_arena_mark_release(void) {
    xv_arena a;
    xv_arena_init(&a, 4096);
    CHECK(xv_arena_alloc(&a, 1000) != NULL, "first allocation");
    const xv_arena_mark_t m = xv_arena_mark(&a);
    CHECK(xv_arena_alloc(&a, 100000) != NULL, "scratch larger than a chunk: a new chunk");
    const size_t reserved = xv_arena_reserved(&a);
    xv_arena_release(&a, m);
    CHECK(a.used == m.used, "release restores the bytes in use (%zu, expected %zu)", a.used, m.used);
    unsigned char *p = xv_arena_alloc(&a, 64);
    CHECK(p != NULL && a.head == m.chunk, "the next small allocation continues the marked chunk");
    CHECK(xv_arena_alloc(&a, 90000) != NULL && xv_arena_reserved(&a) == reserved,
          "a spare chunk is reused: reserved %zu, expected %zu", xv_arena_reserved(&a), reserved);
    xv_arena_reset(&a);
    CHECK(a.used == 0 && a.head && !a.spare, "reset coalesces chunks and spares into one");
    CHECK(xv_arena_reserved(&a) >= reserved, "the coalesced chunk holds the whole last step");
    xv_arena_free(&a);
}

static size_t mapped_total(const xv_grad_store *s) { return s->live + s->spare_bytes; }

static void test_grad_store_reuse(void) {
    xv_grad_store s = {0};
    const size_t big = 600000; /* 2.4 MB: a mapping */
    float *a = xv_grad_store_alloc(&s, big);
    CHECK(a != NULL, "first mapping");
    if (!a) return;
    for (size_t i = 0; i < big; i++) a[i] = 1.0f;
    xv_grad_store_free(&s, a);
    CHECK(s.live == 0 && s.spare_bytes > 0, "a freed mapping is kept as a spare (live %zu, spare %zu)", s.live,
          s.spare_bytes);
    float *b = xv_grad_store_alloc(&s, big - 1000); /* within 1/8 of the spare: reused */
    CHECK(b == a && s.spare_bytes == 0, "the spare is handed out again for about its size");
    bool zero = true;
    for (size_t i = 0; i < big - 1000; i++) zero = zero && b[i] == 0.0f;
    CHECK(zero, "a reused buffer reads as zeros");
    xv_grad_store_free(&s, b);
    float *c = xv_grad_store_alloc(&s, big / 2); /* too small for the spare: a new mapping, the spare kept */
    CHECK(c != NULL && c != a && s.spare_bytes > 0, "a much smaller request gets its own mapping");
    xv_grad_store_free(&s, c);
    float *d = xv_grad_store_alloc(&s, 4 * big); /* 3.6 MB spare + 9.6 MB > 3 x the old peak: spares unmapped */
    CHECK(d != NULL && s.spare_bytes == 0, "spares are unmapped to keep within the cap (spare %zu)", s.spare_bytes);
    CHECK(mapped_total(&s) <= XV_GRAD_SPARE_CAP * s.peak, "mapped %zu bytes, more than %d x the live peak %zu",
          mapped_total(&s), XV_GRAD_SPARE_CAP, s.peak);
    xv_grad_store_clear(&s);
    CHECK(s.live == 0 && s.head == NULL, "clear frees every live buffer");
    xv_grad_store_release_all(&s);
    CHECK(s.spare == NULL && s.spare_bytes == 0, "release_all unmaps the spares");
}

enum { B = 4, I = 300, H = 600 };

typedef struct {
    float *dw1, *dw2, *dx;
    size_t grads_peak;
    bool hidden_grad_kept;
} run_result;

/* loss = Σ gelu(x W1ᵀ + b1) W2ᵀ over a two-layer MLP, gradients copied out. */
static run_result run(bool free_used) {
    xv_rng r;
    xv_rng_seed(&r, 7);
    xv_graph *g = xv_graph_new(1 << 16);
    xv_graph_set_free_used_grads(g, free_used);
    xv_tensor *x = xv_tensor_new(g, XV_F32, XV_SHAPE(B, I));
    xv_tensor *w1 = xv_tensor_new(g, XV_F32, XV_SHAPE(H, I)), *b1 = xv_tensor_zeros(g, XV_F32, XV_SHAPE(H));
    xv_tensor *w2 = xv_tensor_new(g, XV_F32, XV_SHAPE(H, H));
    xv_tensor *ts[3] = {x, w1, w2};
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; i < ts[k]->numel; i++) ts[k]->data[i] = xv_rng_uniform(&r) - 0.5f;
        ts[k]->requires_grad = true;
    }
    xv_tensor *h = xv_gelu(g, xv_linear(g, x, w1, b1));
    xv_tensor *loss = xv_sum(g, xv_gelu(g, xv_linear(g, h, w2, NULL)));
    run_result res = {0};
    CHECK_OK(xv_backward(g, loss));
    if (xv_test_failures == 0) {
        res.dx = malloc(sizeof(float) * B * I), res.dw1 = malloc(sizeof(float) * H * I);
        res.dw2 = malloc(sizeof(float) * H * H);
        memcpy(res.dx, x->grad, sizeof(float) * B * I);
        memcpy(res.dw1, w1->grad, sizeof(float) * H * I);
        memcpy(res.dw2, w2->grad, sizeof(float) * H * H);
    }
    res.grads_peak = xv_graph_grads_peak(g);
    res.hidden_grad_kept = h->grad != NULL;
    xv_graph_free(g);
    return res;
}

static void test_free_used_grads(void) {
    run_result keep = run(false), freed = run(true);
    if (!keep.dx || !freed.dx) return;
    CHECK(memcmp(keep.dx, freed.dx, sizeof(float) * B * I) == 0 &&
              memcmp(keep.dw1, freed.dw1, sizeof(float) * H * I) == 0 &&
              memcmp(keep.dw2, freed.dw2, sizeof(float) * H * H) == 0,
          "leaf gradients are bitwise the same with and without freeing");
    CHECK(keep.hidden_grad_kept && !freed.hidden_grad_kept, "an intermediate gradient is kept only when asked");
    /* Kept: every activation gradient plus the leaves' at once; freed: the
     * leaves' (x, W1, W2: 0.31 + 0.72 + 1.44 MB) and at most two activation
     * gradients in flight ([4, 600] each, 9.6 KB). */
    CHECK(freed.grads_peak < keep.grads_peak, "peak of gradients: %zu freed, %zu kept", freed.grads_peak,
          keep.grads_peak);
    free(keep.dx), free(keep.dw1), free(keep.dw2), free(freed.dx), free(freed.dw1), free(freed.dw2);
}

int main(void) {
    test_arena_mark_release();
    test_grad_store_reuse();
    test_free_used_grads();
    return xv_test_finish("test_grad_release");
}
