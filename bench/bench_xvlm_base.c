/* X-VLM base inference, piece by piece, on the shapes of the PyTorch reference
 * (tools/bench_torch_parts.py; same pieces, same FLOP convention):
 *   vision      Swin-B 224 on B images (+ the mean CLS token)
 *   text        embeddings + text layers [0, fusion_layer) on B x L tokens
 *   fusion_itm  fusion layers + ITM head on B pairs (L text + 1+P image tokens)
 *   box         fusion layers (full image) + box head + sigmoid on B pairs
 * For each: median and best wall seconds over the runs after one warm-up, the
 * median CPU seconds of the process (all threads; on a shared machine, CPU
 * below threads x wall means time spent waiting for a core), GFLOP/s on the
 * median wall time and its fraction of this machine's sgemm rate (OpenBLAS,
 * 1024^3, measured before and after the pieces), and GFLOP per CPU-second
 * with its fraction of sgemm's GFLOP per CPU-second: the load-independent
 * view (both divide by the CPU time actually used).
 *
 * FLOPs count matrix products only, 2 per multiply-add (LayerNorm, GELU,
 * softmax, masks and biases are not counted):
 *   Swin block 24·T·C² + 4·T·w²·C, patch merging 4·T·C², patch embedding
 *   2·T0·(3·p²)·C0; BERT self layer 8·L·H² + 4·L²·H + 4·L·H·I; cross-attention
 *   4·L·H² + 4·K·Cv·H + 4·L·K·H; head MLP 2·H·2H + 2·2H·out per row.
 *
 * usage: bench_xvlm_base [--config PATH] [--batch B] [--length L] [--reps N]
 *                        [--threads N (2)] [--only PIECE]... [--no-peak]
 *                        [--weights W.safetensors | --save-weights W.safetensors]
 *                        [--precision fp32|bf16]
 * (--no-peak skips the sgemm reference, for profiling the pieces alone;
 * --weights runs on weights left in the file's read-only mapping, as inference
 * does, so the peak RSS printed at the end is weights + activations + scratch;
 * --save-weights writes the random weights of --config there and exits;
 * --precision bf16 runs the Linear products in bf16 as `xvlm --precision
 * bf16` does, and the peak lines add the rates of the Linear forward on
 * 1024^3 in fp32 and in bf16, the references for what each can reach here.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "core/fs.h"
#include "core/half.h"
#include "model/losses.h"
#include "model/model.h"
#include "model/precision.h"
#include "ops/gemm.h"
#include "xvlm.h"

/* ---------------------------------------------------------------- FLOPs */

static double swin_flops(const xv_swin_config *v) {
    double T0 = (double)(v->image_res / v->patch) * (v->image_res / v->patch);
    double f = 2 * T0 * v->in_chans * v->patch * v->patch * v->embed_dim;
    for (int s = 0; s < v->n_stages; s++) {
        xv_swin_stage_geom g = xv_swin_stage(v, s);
        double T = (double)g.res * g.res, C = g.dim, w2 = (double)g.window * g.window;
        f += v->depths[s] * (24 * T * C * C + 4 * T * w2 * C);
        if (s + 1 < v->n_stages) f += 4 * T * C * C;
    }
    return f;
}

static double bert_self_flops(const xv_bert_config *t, double L) {
    double H = t->hidden, I = t->intermediate;
    return 8 * L * H * H + 4 * L * L * H + 4 * L * H * I;
}

static double cross_flops(const xv_bert_config *t, double L, double K) {
    double H = t->hidden, Cv = t->encoder_width;
    return 4 * L * H * H + 4 * K * Cv * H + 4 * L * K * H;
}

static double fusion_flops(const xv_bert_config *t, double L, double K) {
    return (t->layers - t->fusion_layer) * (bert_self_flops(t, L) + cross_flops(t, L, K));
}

static double head_flops(const xv_bert_config *t, double out) {
    double H = t->hidden;
    return 2 * H * 2 * H + 2 * 2 * H * out;
}

/* ---------------------------------------------------------------- pieces */

typedef struct {
    xv_model *m;
    int B, L, K;
    xv_tensor *images, *ids, *atts; /* inputs (in `hold`) */
    xv_tensor *image_embeds;        /* [B, K, Cv] vision output */
    xv_tensor *image_atts;          /* I32 [B, K] all ones (the ITM reference passes a mask) */
    xv_tensor *text_embeds;         /* [B, L, H] text output */
    xv_graph *g;                    /* per-run graph, reset between runs */
    bool failed;
} ctx;

static void check(ctx *c, xv_tensor *out, const char *what) {
    if (!out && !c->failed) {
        fprintf(stderr, "%s failed: %s\n", what, xvlm_last_error());
        c->failed = true;
    }
}

static void run_vision(ctx *c) {
    xv_graph_reset(c->g);
    check(c, xv_model_vision(c->g, c->m, c->images, NULL), "vision");
}

static void run_text(ctx *c) {
    xv_graph_reset(c->g);
    check(c, xv_model_text(c->g, c->m, c->ids, c->atts, NULL), "text");
}

static void run_fusion_itm(ctx *c) {
    xv_graph_reset(c->g);
    xv_tensor *h = xv_model_fusion(c->g, c->m, c->text_embeds, c->atts, c->image_embeds, c->image_atts);
    check(c, xv_mlp_head_forward(c->g, &c->m->itm_head, xv_nn_token(c->g, h, 0)), "fusion_itm");
}

static void run_box(ctx *c) {
    xv_graph_reset(c->g);
    check(c, xv_bbox_predict(c->g, c->m, c->image_embeds, c->text_embeds, c->atts, NULL), "box");
}

typedef struct {
    const char *name;
    void (*run)(ctx *);
} piece;

static const piece PIECES[] = {
    {"vision", run_vision}, {"text", run_text}, {"fusion_itm", run_fusion_itm}, {"box", run_box}};
enum { N_PIECES = sizeof PIECES / sizeof PIECES[0] };

static double piece_flops(const ctx *c, int i) {
    const xv_model_config *cf = &c->m->cfg;
    switch (i) {
    case 0: return c->B * swin_flops(&cf->vision);
    case 1: return c->B * cf->text.fusion_layer * bert_self_flops(&cf->text, c->L);
    case 2: return c->B * (fusion_flops(&cf->text, c->L, c->K) + head_flops(&cf->text, 2));
    default: return c->B * (fusion_flops(&cf->text, c->L, c->K) + head_flops(&cf->text, 4));
    }
}

/* One warm-up, then reps timed runs: median wall, best wall, median CPU. */
static void time_piece(ctx *c, const piece *p, int reps, double *med, double *best, double *cpu) {
    double wall[64], cput[64];
    if (reps > 64) reps = 64;
    p->run(c);
    for (int r = 0; r < reps; r++) {
        double t0 = xv_bench_now(), c0 = xv_cpu_seconds();
        p->run(c);
        wall[r] = xv_bench_now() - t0;
        cput[r] = xv_cpu_seconds() - c0;
    }
    *med = xv_bench_sort_median(wall, reps), *cpu = xv_bench_sort_median(cput, reps);
    *best = wall[0];
}

/* ---------------------------------------------------------------- setup */

static bool make_inputs(ctx *c, xv_graph *hold) {
    const xv_model_config *cf = &c->m->cfg;
    int R = cf->vision.image_res, side = R / cf->vision.region_stride;
    c->K = 1 + side * side;
    c->images = xv_tensor_new(hold, XV_F32, XV_SHAPE(c->B, cf->vision.in_chans, R, R));
    c->ids = xv_tensor_new(hold, XV_I32, XV_SHAPE(c->B, c->L));
    c->atts = xv_tensor_new(hold, XV_I32, XV_SHAPE(c->B, c->L));
    c->image_atts = xv_tensor_new(hold, XV_I32, XV_SHAPE(c->B, c->K));
    if (!c->images || !c->ids || !c->atts || !c->image_atts) return false;
    xv_rng r;
    xv_rng_seed(&r, 1);
    for (int64_t i = 0; i < c->images->numel; i++) c->images->data[i] = 2 * xv_rng_uniform(&r) - 1;
    for (int64_t i = 0; i < c->ids->numel; i++) {
        /* [CLS] then ids past the special tokens; full-length texts */
        c->ids->idata[i] = i % c->L == 0 ? 101 : 104 + (int32_t)xv_rng_below(&r, (uint32_t)(cf->text.vocab - 104));
        c->atts->idata[i] = 1;
    }
    for (int64_t i = 0; i < c->image_atts->numel; i++) c->image_atts->idata[i] = 1;
    /* Real encoder outputs as the fusion inputs, kept in `hold`. */
    xv_graph_set_grad(hold, false);
    c->image_embeds = xv_model_vision(hold, c->m, c->images, NULL);
    c->text_embeds = xv_model_text(hold, c->m, c->ids, c->atts, NULL);
    if (!c->image_embeds || !c->text_embeds) return false;
    if (c->image_embeds->shape[1] != c->K) {
        fprintf(stderr, "vision output has %lld tokens, expected %d\n", (long long)c->image_embeds->shape[1], c->K);
        return false;
    }
    return true;
}

/* GFLOP/s of the Linear forward [1024, 1024] x [1024, 1024]^T as the model
 * runs it (oneDNN when built in), in fp32 or in bf16 (input rounding
 * included), best of 3 runs of >= 0.3 s: the rates the pieces can approach. */
static double linear_gflops(bool bf16) {
    enum { N = 1024 };
    xv_graph *g = xv_graph_new(0);
    float *x = calloc((size_t)N * N, sizeof *x), *y = calloc((size_t)N * N, sizeof *y);
    float *w = calloc((size_t)N * N, sizeof *w);
    uint16_t *wb = calloc((size_t)N * N, sizeof *wb);
    double best = 0;
    for (int i = 0; x && w && wb && i < N * N; i++) {
        x[i] = (float)(i % 7) - 3;
        w[i] = (float)(i % 5) - 2;
        wb[i] = xv_f32_to_bf16(w[i]);
    }
    const xv_gemm_epilogue ep = {0};
    for (int round = 0; g && x && y && w && wb && round < 3; round++) {
        int n = 0;
        double t0 = xv_bench_now(), t;
        do {
            xv_graph_reset(g);
            bool ok = bf16 ? xv_gemm_linear_bf16(g, x, wb, &ep, y, N, N, N) : xv_gemm_linear(g, x, w, &ep, y, N, N, N);
            if (!ok) break;
            n++;
        } while ((t = xv_bench_now() - t0) < 0.3);
        if (n && 2.0 * N * N * N * n / t * 1e-9 > best) best = 2.0 * N * N * N * n / t * 1e-9;
    }
    xv_graph_free(g);
    free(x);
    free(y);
    free(w);
    free(wb);
    return best;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_xvlm_base [--config PATH] [--batch B] [--length L] [--reps N] [--threads N]\n"
                    "                       [--only PIECE]... [--no-peak]\n"
                    "                       [--weights W.safetensors | --save-weights W.safetensors]\n"
                    "                       [--precision fp32|bf16]\n"
                    "pieces: vision text fusion_itm box\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *cfg_path = "configs/xvlm_base_224.json", *weights = NULL, *save = NULL, *precision = "fp32";
    int B = 8, L = 30, reps = 5, threads = 2;
    bool only[N_PIECES] = {0}, any_only = false, peak = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-peak")) {
            peak = false;
            continue;
        }
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "--config")) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--length")) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--weights")) weights = argv[++i];
        else if (!strcmp(argv[i], "--save-weights")) save = argv[++i];
        else if (!strcmp(argv[i], "--precision")) precision = argv[++i];
        else if (!strcmp(argv[i], "--only")) {
            const int k = xv_bench_piece_index(argv[++i], PIECES, N_PIECES, sizeof PIECES[0]);
            if (k < 0) return usage();
            only[k] = any_only = true;
        } else
            return usage();
    }
    bool bf16 = !strcmp(precision, "bf16");
    if (B < 1 || L < 2 || reps < 1 || threads < 1 || (weights && save) || (!bf16 && strcmp(precision, "fp32")))
        return usage();
    xvlm_set_threads(threads);
    double t_start = xv_bench_now();
    xv_model_config cf;
    if (xv_config_load(cfg_path, &cf) != XV_OK) {
        fprintf(stderr, "%s (run from the repository root or pass --config)\n", xvlm_last_error());
        return 1;
    }
    xv_model_parts parts = xv_model_parts_pretrain();
    ctx c = {.B = B, .L = L};
    xv_status st = weights ? xv_model_load(&cf, weights, false, &c.m) : xv_model_create(&cf, &parts, &c.m);
    if (st == XV_OK && !weights) st = xv_model_init_random(c.m, 1);
    if (st == XV_OK && save) st = xv_model_save(c.m, save);
    if (st == XV_OK && !save && bf16) st = xv_params_set_precision(&c.m->params, XV_PRECISION_BF16);
    if (st != XV_OK) {
        fprintf(stderr, "%s\n", xvlm_last_error());
        return 1;
    }
    if (save) {
        printf("wrote %s\n", save);
        xv_model_free(c.m);
        return 0;
    }
    xv_graph *hold = xv_graph_new(0);
    c.g = xv_graph_new(0);
    if (!hold || !c.g || !make_inputs(&c, hold)) {
        fprintf(stderr, "setup failed: %s\n", xvlm_last_error());
        return 1;
    }
    xv_graph_set_grad(c.g, false);
    double peak0 = peak ? xv_bench_sgemm_gflops(1024, 1024, 1024, 1.0) : 0;
    double peak_cpu = peak ? xv_bench_sgemm_gflops_cpu(1024, 1024, 1024, 1.0) : 0;
    printf("# C xvlm, %d threads, %s; %lld parameters (%s); setup %.1f s\n", xvlm_get_threads(), cfg_path,
           (long long)xv_params_count(&c.m->params), weights ? "mapped from the file" : "random, in memory",
           xv_bench_now() - t_start);
    if (peak) printf("# sgemm 1024^3 before: %.1f GFLOP/s, %.1f GFLOP/cpu-s\n", peak0, peak_cpu);
    printf("# Linear forward: %s, %s (oneDNN ISA %s)\n", precision, bf16 ? "onednn" : xv_gemm_backend(), xv_gemm_isa());
    if (peak && bf16)
        printf("# Linear 1024^3 before: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", linear_gflops(false), linear_gflops(true));
    printf("# %-11s %-26s %9s %8s %8s %8s %8s %6s %9s %6s\n", "piece", "shape", "median s", "best s", "cpu s", "GFLOP",
           "GFLOP/s", "%peak", "GF/cpu-s", "%peak");
    for (int i = 0; i < N_PIECES && !c.failed; i++) {
        if (any_only && !only[i]) continue;
        double med, best, cpu;
        time_piece(&c, &PIECES[i], reps, &med, &best, &cpu);
        char shape[64];
        if (i == 0)
            snprintf(shape, sizeof shape, "%dx3x%d^2", B, cf.vision.image_res);
        else if (i == 1)
            snprintf(shape, sizeof shape, "%dx%d tokens", B, L);
        else
            snprintf(shape, sizeof shape, "%d pairs, %d + %d tokens", B, L, c.K);
        double gf = piece_flops(&c, i) * 1e-9;
        printf("  %-11s %-26s %9.4f %8.4f %8.3f %8.2f %8.1f %5.0f%% %9.1f %5.0f%%\n", PIECES[i].name, shape, med, best,
               cpu, gf, gf / med, peak ? 100 * gf / med / peak0 : 0.0, gf / cpu,
               peak ? 100 * gf / cpu / peak_cpu : 0.0);
        fflush(stdout);
    }
    if (peak)
        printf("# sgemm 1024^3 after: %.1f GFLOP/s, %.1f GFLOP/cpu-s\n", xv_bench_sgemm_gflops(1024, 1024, 1024, 1.0),
               xv_bench_sgemm_gflops_cpu(1024, 1024, 1024, 1.0));
    if (peak && bf16)
        printf("# Linear 1024^3 after: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", linear_gflops(false), linear_gflops(true));
    printf("# peak RSS %.0f MiB; weights %.0f MiB (float32)%s\n", xv_bench_peak_rss_mib(),
           4.0 * (double)xv_params_count(&c.m->params) / (1 << 20), bf16 ? " + their bf16 copies" : "");
    xv_graph_free(c.g);
    xv_graph_free(hold);
    xv_model_free(c.m);
    return c.failed ? 1 : 0;
}
