/* X-VLM base (configs/xvlm_base_224.json, random weights):
 * - vision encoder inference (Swin-B 224, batch 8): images/s and achieved
 *   GFLOP/s against this machine's sgemm rate measured in the same run;
 * - the pretraining forward of 8 image-text pairs (ITC + ITM + MLM), inference;
 * - the same step with gradients recorded, forward + backward (training);
 * and the peak resident memory after each phase.
 * usage: bench_model [CONFIG.json] [BATCH]   (threads: OMP_NUM_THREADS) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "model/pretrain.h"
#include "xvlm.h"

/* Multiply-adds ×2 of the Swin encoder for one image (GEMMs and attention). */
static double swin_flops(const xv_swin_config *v) {
    double f = 0;
    double t0 = (double)(v->image_res / v->patch) * (v->image_res / v->patch);
    f += 2 * t0 * v->in_chans * v->patch * v->patch * v->embed_dim;
    for (int s = 0; s < v->n_stages; s++) {
        xv_swin_stage_geom g = xv_swin_stage(v, s);
        double T = (double)g.res * g.res, C = g.dim, W2 = (double)g.window * g.window;
        double blk = 2 * T * C * 3 * C + 2 * T * C * C + 2 * 2 * T * C * C * v->mlp_ratio + 2 * 2 * T * W2 * C;
        f += v->depths[s] * blk;
        if (s + 1 < v->n_stages) f += 2 * (T / 4) * 4 * C * 2 * C;
    }
    return f;
}

typedef struct {
    xv_model *m;
    xv_tensor *images_data;
    int batch;
} vis_ctx;

static void run_vision(void *p) {
    vis_ctx *c = p;
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *img = xv_tensor_wrap_f32(g, c->images_data->data, c->images_data->shape, 4);
    xv_tensor *v = xv_model_vision(g, c->m, img, NULL);
    if (!v) fprintf(stderr, "vision failed: %s\n", xvlm_last_error());
    xv_graph_free(g);
}

/* A batch whose arrays live in the graph's arena. */
static void make_batch(xv_graph *g, int B, xv_rng *r, xv_pretrain_batch *b) {
    enum { L = 40, M = 8 };
    *b = (xv_pretrain_batch){.n_images = B, .res = 224, .n_texts = B, .text_len = L, .max_masks = M};
    const int64_t n_pixels = (int64_t)B * 3 * 224 * 224;
    b->image = xv_tensor_new(g, XV_F32, XV_SHAPE(n_pixels))->data;
    for (int64_t i = 0; i < n_pixels; i++) b->image[i] = 2 * xv_rng_uniform(r) - 1;
    b->text_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b->text_atts = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b->text_ids_masked = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b->masked_pos = xv_tensor_new(g, XV_I32, XV_SHAPE(B, M))->idata;
    b->masked_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(B, M))->idata;
    for (int i = 0; i < B; i++) {
        int len = 20 + (i * 7) % 20;
        for (int t = 0; t < L; t++) {
            int id = t == 0 ? 101 : t < len ? 1000 + (int)xv_rng_below(r, 29000) : 0;
            b->text_ids[i * L + t] = b->text_ids_masked[i * L + t] = id;
            b->text_atts[i * L + t] = t < len;
        }
        for (int k = 0; k < M; k++) {
            b->masked_pos[i * M + k] = 1 + 2 * k;
            b->masked_ids[i * M + k] = b->text_ids[i * L + 1 + 2 * k];
            b->text_ids_masked[i * L + 1 + 2 * k] = 103;
        }
    }
}

static double step(xv_model *m, int B, bool train) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, train);
    xv_rng r;
    xv_rng_seed(&r, 1);
    xv_pretrain_batch b;
    make_batch(g, B, &r, &b);
    const xv_itm_negatives neg = {.rng = &r};
    xv_pretrain_out o;
    double t0 = xv_bench_now();
    xv_status st = xv_pretrain_forward(g, m, &b, &neg, &o);
    if (st == XV_OK && train) st = xv_backward(g, o.loss_total);
    double t = xv_bench_now() - t0;
    if (st != XV_OK) fprintf(stderr, "step failed: %s\n", xvlm_last_error());
    if (train)
        printf("  training graph arena: %.0f MiB\n", xv_graph_arena(g)->peak / 1048576.0);
    xv_graph_free(g);
    return t;
}

int main(int argc, char **argv) {
    const char *cfg_path = argc > 1 ? argv[1] : "configs/xvlm_base_224.json";
    int B = argc > 2 ? atoi(argv[2]) : 8;
    xvlm_set_threads(0);
    xv_model_config c;
    if (xv_config_load(cfg_path, &c) != XV_OK) {
        fprintf(stderr, "%s (run from the repository root or pass the config path)\n", xvlm_last_error());
        return 1;
    }
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    double t0 = xv_bench_now();
    if (xv_model_create(&c, &parts, &m) != XV_OK || xv_model_init_random(m, 1) != XV_OK) {
        fprintf(stderr, "%s\n", xvlm_last_error());
        return 1;
    }
    printf("model %s: %lld parameters, create + random init %.2f s, %d threads\n", cfg_path,
           (long long)xv_params_count(&m->params), xv_bench_now() - t0, xvlm_get_threads());
    double sgemm = xv_bench_sgemm_gflops(3136, 384, 128, 1.0);
    printf("sgemm reference [3136x128]·[128x384]: %.1f GFLOP/s\n", sgemm);

    xv_graph *hold = xv_graph_new(0);
    int R = c.vision.image_res;
    vis_ctx vc = {m, xv_tensor_new(hold, XV_F32, XV_SHAPE(B, 3, R, R)), B};
    for (int64_t i = 0; i < vc.images_data->numel; i++) vc.images_data->data[i] = (float)((i * 7919) % 1000) / 500 - 1;
    double tv = xv_bench_median(run_vision, &vc, 5.0);
    double gf = swin_flops(&c.vision) * B / tv * 1e-9;
    printf("vision encoder, batch %d: %.3f s  %.2f images/s  %.1f GFLOP/s (%.0f%% of sgemm)  peak RSS %.0f MiB\n", B,
           tv, B / tv, gf, 100 * gf / sgemm, xv_bench_peak_rss_mib());

    double ti = step(m, B, false);
    printf("pretraining forward (ITC+ITM+MLM), %d pairs, inference: %.3f s  peak RSS %.0f MiB\n", B, ti,
           xv_bench_peak_rss_mib());
    double tt = step(m, B, true);
    printf("pretraining forward + backward, %d pairs: %.3f s  peak RSS %.0f MiB\n", B, tt, xv_bench_peak_rss_mib());
    xv_graph_free(hold);
    xv_model_free(m);
    return 0;
}
