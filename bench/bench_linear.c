/* xv_linear forward (bias fused) and backward (dX, dW and db together)
 * against raw cblas_sgemm doing the same multiplications, measured in the
 * same run, on the linear shapes of Swin-B and BERT-base at batch 8.
 * Usage: bench_linear [min_seconds (default 0.5)] [threads (default: all cores)] [cpu]
 * "cpu" times with the process CPU clock instead of the wall clock: with one
 * thread on a machine shared with other jobs, that leaves out the time the
 * process waits for a core. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "xvlm.h"

typedef struct {
    int rows, in, out;
    const char *what;
} shape;

static const shape SHAPES[] = {
    {8 * 3136, 128, 384, "Swin-B stage 1 qkv"},  {8 * 3136, 512, 128, "Swin-B stage 1 fc2"},
    {8 * 784, 256, 768, "Swin-B stage 2 qkv"},   {8 * 196, 512, 2048, "Swin-B stage 3 fc1"},
    {8 * 49, 1024, 4096, "Swin-B stage 4 fc1"},  {8 * 30, 768, 3072, "BERT intermediate"},
    {8 * 30, 768, 768, "BERT attention dense"},
};

typedef struct {
    const shape *s;
    float *x, *w, *b, *dy, *y, *dx, *dw, *db;
    xv_graph *g;
    xv_tensor *node_out; /* output of a recorded linear, for its backward */
} ctx;

static void lib_forward(void *p) {
    ctx *c = p;
    xv_graph_reset(c->g);
    xv_linear(c->g, xv_tensor_wrap_f32(c->g, c->x, XV_SHAPE(c->s->rows, c->s->in)),
              xv_tensor_wrap_f32(c->g, c->w, XV_SHAPE(c->s->out, c->s->in)),
              xv_tensor_wrap_f32(c->g, c->b, XV_SHAPE(c->s->out)));
}

static void raw_forward(void *p) {
    ctx *c = p;
    const shape *s = c->s;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->rows, s->out, s->in, 1.0f, c->x, s->in, c->w, s->in,
                0.0f, c->y, s->out);
}

/* The recorded node's backward alone: gradients accumulate into preallocated
 * buffers, as parameter gradients do in training. */
static void lib_backward(void *p) {
    ctx *c = p;
    xv_node *n = c->node_out->node;
    n->backward(c->g, n);
}

static void raw_backward(void *p) {
    ctx *c = p;
    const shape *s = c->s;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->rows, s->in, s->out, 1.0f, c->dy, s->out, c->w, s->in,
                1.0f, c->dx, s->in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->out, s->in, s->rows, 1.0f, c->dy, s->out, c->x, s->in,
                1.0f, c->dw, s->in);
}

/* Median seconds of `lib` and of `raw`, timed alternately (one call each per
 * round, at least 5 rounds and min_seconds): the machine is shared, and
 * interleaving lets both see the same background load. */
static void median_pair(void (*lib)(void *), void (*raw)(void *), void *arg, double min_seconds, double *t_lib,
                        double *t_raw) {
    enum { MAX_ROUNDS = 400 };
    double tl[MAX_ROUNDS], tr[MAX_ROUNDS];
    lib(arg), raw(arg); /* warm-up */
    int n = 0;
    double start = xv_bench_now();
    while (n < MAX_ROUNDS && (n < 5 || xv_bench_now() - start < min_seconds)) {
        double t0 = xv_bench_now();
        lib(arg);
        double t1 = xv_bench_now();
        raw(arg);
        tr[n] = xv_bench_now() - t1;
        tl[n++] = t1 - t0;
    }
    *t_lib = xv_bench_sort_median(tl, n);
    *t_raw = xv_bench_sort_median(tr, n);
}

static float *filled(size_t n, float v) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = v * (float)((i * 7919) % 17) / 17.0f - v / 2;
    return p;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    xvlm_set_threads(argc > 2 ? atoi(argv[2]) : 0);
    bool cpu_clock = argc > 3 && strcmp(argv[3], "cpu") == 0;
    xv_bench_use_cpu_clock(cpu_clock);
    printf("threads %d, %s clock, sgemm reference 2048x2048x2048: %.1f GFLOP/s\n", xvlm_get_threads(),
           cpu_clock ? "process CPU" : "wall", xv_bench_sgemm_gflops(2048, 2048, 2048, secs));
    printf("%-22s %-18s | %9s %9s %6s | %9s %9s %6s\n", "shape", "rows x in -> out", "fwd", "sgemm", "ratio",
           "bwd", "sgemm", "ratio");
    int below = 0;
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
        const shape *s = &SHAPES[i];
        size_t nr = (size_t)s->rows, ni = (size_t)s->in, no = (size_t)s->out;
        ctx c = {s, filled(nr * ni, 1), filled(no * ni, 0.1f), filled(no, 1), filled(nr * no, 1), filled(nr * no, 0),
                 filled(nr * ni, 0), filled(no * ni, 0), filled(no, 0), xv_graph_new(0), NULL};
        double flops = 2.0 * (double)nr * ni * no;
        double t_lf, t_rf, t_lb, t_rb;
        median_pair(lib_forward, raw_forward, &c, secs, &t_lf, &t_rf);
        /* one recorded linear whose backward is timed repeatedly */
        xv_graph_reset(c.g);
        xv_tensor *X = xv_tensor_wrap_f32(c.g, c.x, XV_SHAPE(s->rows, s->in));
        xv_tensor *W = xv_tensor_wrap_f32(c.g, c.w, XV_SHAPE(s->out, s->in));
        xv_tensor *B = xv_tensor_wrap_f32(c.g, c.b, XV_SHAPE(s->out));
        X->requires_grad = W->requires_grad = B->requires_grad = true;
        X->grad = c.dx, W->grad = c.dw, B->grad = c.db;
        c.node_out = xv_linear(c.g, X, W, B);
        c.node_out->grad = c.dy;
        median_pair(lib_backward, raw_backward, &c, secs, &t_lb, &t_rb);
        double rf = t_rf / t_lf, rb = t_rb / t_lb;
        below += rf < 0.9 || rb < 0.9;
        char dims[32];
        snprintf(dims, sizeof dims, "%dx%d->%d", s->rows, s->in, s->out);
        printf("%-22s %-18s | %9.1f %9.1f %6.3f | %9.1f %9.1f %6.3f\n", s->what, dims, flops / t_lf * 1e-9,
               flops / t_rf * 1e-9, rf, 2 * flops / t_lb * 1e-9, 2 * flops / t_rb * 1e-9, rb);
        xv_graph_free(c.g);
        free(c.x), free(c.w), free(c.b), free(c.dy), free(c.y), free(c.dx), free(c.dw), free(c.db);
    }
    printf("GFLOP/s; fwd = y = x·Wᵀ + b, bwd = dX + dW + db; ratio = library / raw sgemm (target >= 0.9): %d below\n",
           below);
    printf("peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    return 0;
}
