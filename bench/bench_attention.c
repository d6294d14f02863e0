/* xv_attention throughput on the two shapes X-VLM runs most:
 *  - Swin-B stage 1 windows: 8 images x 64 windows, 49 tokens, 4 heads of 32,
 *    relative-position bias and shift mask;
 *  - BERT-base: batch 8, 30 tokens, 12 heads of 64, key padding mask.
 * GFLOP/s count the matrix products only (forward 2: q·kᵀ and P·v; backward 4),
 * next to this machine's sgemm rate measured in the same run.
 * Usage: bench_attention [min_seconds (default 0.5)] [threads (default: all cores)] [cpu]
 * "cpu" times with the process CPU clock instead of the wall clock (meaningful
 * with one thread on a machine shared with other jobs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "xvlm.h"

typedef struct {
    const char *what;
    int B, L, H, D, G;
    bool bias, key_mask;
} shape;

typedef struct {
    const shape *s;
    xv_graph *g;
    float *q, *k, *v, *bias, *gmask, *kmask, *dout, *dq, *dk, *dv, *dbias;
    bool record;
    xv_tensor *out; /* recorded output whose backward is timed */
} ctx;

static float *filled(size_t n, float scale, unsigned seed) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * ((float)((i * 2654435761u + seed) % 1000) / 1000.0f - 0.5f);
    return p;
}

static xv_tensor *forward(ctx *c) {
    const shape *s = c->s;
    xv_graph *g = c->g;
    int HD = s->H * s->D;
    xv_tensor *q = xv_tensor_wrap_f32(g, c->q, XV_SHAPE(s->B, s->L, HD));
    xv_tensor *k = xv_tensor_wrap_f32(g, c->k, XV_SHAPE(s->B, s->L, HD));
    xv_tensor *v = xv_tensor_wrap_f32(g, c->v, XV_SHAPE(s->B, s->L, HD));
    xv_attn_args a = {.heads = s->H, .scale = 1.0f / sqrtf((float)s->D)};
    if (s->bias) a.bias = xv_tensor_wrap_f32(g, c->bias, XV_SHAPE(s->H, s->L, s->L));
    if (s->G) a.group_mask = xv_tensor_wrap_f32(g, c->gmask, XV_SHAPE(s->G, s->L, s->L));
    if (s->key_mask) a.key_mask = xv_tensor_wrap_f32(g, c->kmask, XV_SHAPE(s->B, s->L));
    if (c->record) {
        q->requires_grad = k->requires_grad = v->requires_grad = true;
        q->grad = c->dq, k->grad = c->dk, v->grad = c->dv;
        if (a.bias) a.bias->requires_grad = true, a.bias->grad = c->dbias;
    }
    return xv_attention(g, q, k, v, &a);
}

static void run_forward(void *p) {
    ctx *c = p;
    xv_graph_reset(c->g);
    forward(c);
}

static void run_backward(void *p) {
    ctx *c = p;
    c->out->node->backward(c->g, c->out->node);
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    xvlm_set_threads(argc > 2 ? atoi(argv[2]) : 0);
    bool cpu_clock = argc > 3 && strcmp(argv[3], "cpu") == 0;
    xv_bench_use_cpu_clock(cpu_clock);
    double big = xv_bench_sgemm_gflops(2048, 2048, 2048, secs);
    printf("threads %d, %s clock; sgemm 2048^3: %.1f GFLOP/s\n", xvlm_get_threads(), cpu_clock ? "process CPU" : "wall",
           big);
    static const shape shapes[] = {
        {"Swin-B stage 1 windows", 8 * 64, 49, 4, 32, 64, true, false},
        {"BERT-base self-attention", 8, 30, 12, 64, 0, false, true},
    };
    for (int i = 0; i < 2; i++) {
        const shape *s = &shapes[i];
        size_t nq = (size_t)s->B * s->L * s->H * s->D, nb = (size_t)s->H * s->L * s->L;
        ctx c = {s, xv_graph_new(0), filled(nq, 2, 1), filled(nq, 2, 2), filled(nq, 2, 3), filled(nb, 1, 4),
                 filled((size_t)(s->G ? s->G : 1) * s->L * s->L, 1, 5), filled((size_t)s->B * s->L, 1, 6),
                 filled(nq, 1, 7), filled(nq, 0, 0), filled(nq, 0, 0), filled(nq, 0, 0), filled(nb, 0, 0), false,
                 NULL};
        for (size_t j = 0; j < (size_t)(s->G ? s->G : 1) * s->L * s->L; j++) c.gmask[j] = c.gmask[j] < 0 ? -100.f : 0.f;
        for (size_t j = 0; j < (size_t)s->B * s->L; j++) c.kmask[j] = (int)(j % s->L) >= s->L - (int)(j / s->L) ? -10000.f : 0.f;
        double fwd_flops = 4.0 * s->B * s->H * (double)s->L * s->L * s->D;
        double t_inf = xv_bench_median(run_forward, &c, secs);
        c.record = true;
        double t_fwd = xv_bench_median(run_forward, &c, secs);
        xv_graph_reset(c.g);
        c.out = forward(&c);
        c.out->grad = c.dout;
        double t_bwd = xv_bench_median(run_backward, &c, secs);
        double small = xv_bench_sgemm_gflops(s->L, s->L, s->D, secs / 4);
        printf("%-26s B=%d L=%d heads=%d D=%d%s%s\n", s->what, s->B, s->L, s->H, s->D, s->bias ? " +bias" : "",
               s->G ? " +shift mask" : s->key_mask ? " +key mask" : "");
        printf("  forward (inference) %7.1f GFLOP/s  %8.3f ms\n", fwd_flops / t_inf * 1e-9, t_inf * 1e3);
        printf("  forward (recording) %7.1f GFLOP/s  %8.3f ms\n", fwd_flops / t_fwd * 1e-9, t_fwd * 1e3);
        printf("  backward            %7.1f GFLOP/s  %8.3f ms\n", 2 * fwd_flops / t_bwd * 1e-9, t_bwd * 1e3);
        printf("  one sgemm %dx%dx%d: %.1f GFLOP/s; sgemm 2048^3: %.1f GFLOP/s\n", s->L, s->L, s->D, small, big);
        xv_graph_free(c.g);
        float *bufs[] = {c.q, c.k, c.v, c.bias, c.gmask, c.kmask, c.dout, c.dq, c.dk, c.dv, c.dbias};
        for (size_t j = 0; j < sizeof bufs / sizeof *bufs; j++) free(bufs[j]);
    }
    printf("peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    return 0;
}
