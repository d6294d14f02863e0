/* Layout, pooling, loss and dropout ops at X-VLM sizes, forward and
 * forward+backward, next to the GEMM they sit beside (the Swin stage-0 qkv
 * Linear on the same tokens: [8·3136, 128] x [384, 128]ᵀ). These ops move
 * memory, so throughput is also given in GB/s of bytes read + written.
 * Usage: bench_layout [threads] */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "xvlm.h"

typedef struct bench_case bench_case;
typedef xv_tensor *(*build_fn)(xv_graph *g, bench_case *c);

struct bench_case {
    const char *name;
    build_fn build;
    double fwd_bytes; /* bytes read + written by the forward */
    xv_graph *g;
    float *dout;
    bool backward;
};

static float *filled(int64_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (size_t)n);
    xv_rng r;
    xv_rng_seed(&r, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * xv_rng_uniform(&r);
    return p;
}

static xv_tensor *leaf(xv_graph *g, float *data, const int64_t *shape, int ndim) {
    xv_tensor *t = xv_tensor_wrap_f32(g, data, shape, ndim);
    t->requires_grad = true;
    return t;
}

/* Inputs, shared by the cases; each build wraps them in the (reset) graph. */
static float *X0, *IMG, *REG, *LOGITS, *TABLE;
static int32_t *TARGETS, *IDS;

static xv_tensor *b_partition(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_window_partition(g, leaf(g, X0, XV_SHAPE(8, 3136, 128)), 56, 56, 7, 3);
}
static xv_tensor *b_reverse(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_window_reverse(g, leaf(g, X0, XV_SHAPE(8 * 64, 49, 128)), 56, 56, 7, 3);
}
static xv_tensor *b_merge(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_patch_merge(g, leaf(g, X0, XV_SHAPE(8, 3136, 128)), 56, 56);
}
static xv_tensor *b_patchify(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_patchify(g, leaf(g, IMG, XV_SHAPE(8, 3, 224, 224)), 4);
}
static xv_tensor *b_heads(xv_graph *g, bench_case *c) {
    (void)c; /* split heads: [B·nW, 49, 4, 32] -> [B·nW, 4, 49, 32] */
    return xv_permute(g, leaf(g, X0, XV_SHAPE(512, 49, 4, 32)), (const int[]){0, 2, 1, 3});
}
static xv_tensor *b_dropout(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_dropout(g, leaf(g, X0, XV_SHAPE(8, 3136, 128)), 0.1f);
}
static xv_tensor *b_drop_path(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_drop_path(g, leaf(g, X0, XV_SHAPE(8, 3136, 128)), 0.1f);
}
static xv_tensor *b_region(xv_graph *g, bench_case *c) {
    (void)c;
    return xv_masked_mean(g, leaf(g, X0, XV_SHAPE(64, 49, 1024)), xv_tensor_wrap_f32(g, REG, XV_SHAPE(64, 49)));
}
static xv_tensor *b_mlm_ce(xv_graph *g, bench_case *c) {
    (void)c; /* MLM: 64 texts x 6 masked slots over the 30522-word vocabulary */
    return xv_cross_entropy(g, leaf(g, LOGITS, XV_SHAPE(384, 30522)),
                            xv_tensor_wrap_i32(g, TARGETS, XV_SHAPE(384)), -100);
}
static xv_tensor *b_embed(xv_graph *g, bench_case *c) {
    (void)c; /* word embeddings of 64 texts x 30 tokens */
    return xv_embedding(g, leaf(g, TABLE, XV_SHAPE(30522, 768)), xv_tensor_wrap_i32(g, IDS, XV_SHAPE(64, 30)), 0);
}

static void run_case(void *p) {
    bench_case *c = p;
    xv_graph_reset(c->g);
    xv_graph_set_grad(c->g, c->backward);
    xv_tensor *y = c->build(c->g, c);
    if (!y) {
        fprintf(stderr, "%s failed: %s\n", c->name, xvlm_last_error());
        exit(1);
    }
    if (c->backward && xv_backward_with(c->g, y, c->dout) != XV_OK) {
        fprintf(stderr, "%s backward failed: %s\n", c->name, xvlm_last_error());
        exit(1);
    }
}

int main(int argc, char **argv) {
    xvlm_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    const int64_t act = 8 * 3136 * 128;
    X0 = filled(act, -1, 1);
    IMG = filled(8 * 3 * 224 * 224, -1, 1);
    REG = malloc(sizeof(float) * 64 * 49);
    for (int i = 0; i < 64 * 49; i++) REG[i] = (i % 7) < 3;
    LOGITS = filled(384 * 30522, -4, 4);
    TARGETS = malloc(sizeof(int32_t) * 384);
    for (int i = 0; i < 384; i++) TARGETS[i] = i % 3 == 2 ? -100 : (i * 7919) % 30522;
    TABLE = filled(30522 * 768, -1, 1);
    IDS = malloc(sizeof(int32_t) * 64 * 30);
    for (int i = 0; i < 64 * 30; i++) IDS[i] = (i * 104729) % 30522;
    float *dout = filled(384 * 30522 > act ? 384 * 30522 : act, -1, 1);

    const double f = 4.0; /* bytes per float */
    bench_case cases[] = {
        {.name = "window_partition [8,3136,128] shift 3", .build = b_partition, .fwd_bytes = 2 * act * f},
        {.name = "window_reverse   [512,49,128] shift 3", .build = b_reverse, .fwd_bytes = 2 * act * f},
        {.name = "patch_merge      [8,3136,128]", .build = b_merge, .fwd_bytes = 2 * act * f},
        {.name = "patchify         [8,3,224,224] p 4", .build = b_patchify, .fwd_bytes = 2 * 8 * 3 * 224 * 224 * f},
        {.name = "permute heads    [512,49,4,32]", .build = b_heads, .fwd_bytes = 2 * act * f},
        {.name = "dropout 0.1      [8,3136,128]", .build = b_dropout, .fwd_bytes = (2 * f + 1) * act},
        {.name = "drop_path 0.1    [8,3136,128]", .build = b_drop_path, .fwd_bytes = 2 * act * f},
        {.name = "masked_mean      [64,49,1024]", .build = b_region, .fwd_bytes = 64 * 49 * 1024 * f},
        {.name = "cross_entropy    [384,30522]", .build = b_mlm_ce, .fwd_bytes = 384 * 30522 * f},
        {.name = "embedding        [30522,768] x [64,30]", .build = b_embed, .fwd_bytes = 2 * 64 * 30 * 768 * f},
    };
    const int M = 8 * 3136, N = 384, K = 128;
    double gflops = xv_bench_sgemm_gflops(M, N, K, 1.0);
    double gemm_ms = 2.0 * M * N * K / (gflops * 1e9) * 1e3;
    printf("threads %d; reference: sgemm %dx%dx%d (Swin stage-0 qkv) %.2f ms = %.1f GFLOP/s\n",
           xvlm_get_threads(), M, N, K, gemm_ms, gflops);
    printf("%-40s %10s %8s %10s %10s\n", "op", "fwd ms", "GB/s", "fwd+bwd ms", "vs sgemm");
    xv_graph *g = xv_graph_new(256 << 20);
    xv_graph_set_training(g, true);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bench_case *c = &cases[i];
        c->g = g;
        c->dout = dout;
        c->backward = false;
        double tf = xv_bench_median(run_case, c, 0.5);
        c->backward = true;
        double tb = xv_bench_median(run_case, c, 0.5);
        printf("%-40s %10.3f %8.2f %10.3f %9.2fx\n", c->name, tf * 1e3, c->fwd_bytes / tf * 1e-9, tb * 1e3,
               tb * 1e3 / gemm_ms);
    }
    printf("peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    xv_graph_free(g);
    return 0;
}
