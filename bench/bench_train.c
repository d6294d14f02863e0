/* Training infrastructure throughput at the pretraining model's size
 * (215,637,241 parameters, split into 768x768-sized tensors):
 * AdamW update, global grad norm + clip, checkpoint save/load, MLM masking.
 * Usage: bench_train [n_params] [checkpoint_dir (default /tmp)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "core/params.h"
#include "data/masking.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/clip.h"

#define CHUNK (768 * 768)

typedef struct {
    xv_params *ps;
    xv_adamw *opt;
} ctx_t;

static void run_adamw(void *p) {
    ctx_t *c = p;
    xv_adamw_step(c->opt, 1.0);
}

static void run_clip(void *p) {
    ctx_t *c = p;
    xv_clip_grad_norm(c->ps, 1e30, NULL); /* measures the norm; no scaling */
}

typedef struct {
    xv_masking_config cfg;
    xv_rng rng;
    int32_t ids[40];
} mask_ctx;

static void run_mask(void *p) {
    mask_ctx *m = p;
    int32_t out[40], pos[8], mids[8];
    for (int i = 0; i < 1000; i++) xv_mask_text(&m->cfg, &m->rng, m->ids, 40, out, pos, mids, NULL);
}

int main(int argc, char **argv) {
    int64_t total = argc > 1 ? atoll(argv[1]) : 215637241;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    xv_params ps;
    xv_params_init(&ps);
    int64_t left = total;
    for (int i = 0; left > 0; i++) {
        char name[64];
        int64_t n = left < CHUNK ? left : CHUNK;
        snprintf(name, sizeof name, "layer.%d.dense.weight", i);
        xv_tensor *t = xv_params_add(&ps, name, (const int64_t[]){n}, 1);
        if (!t || !(t->grad = malloc(sizeof(float) * (size_t)n))) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int64_t k = 0; k < n; k++) t->data[k] = (float)((k * 7 + i) % 97) * 0.01f - 0.5f;
        for (int64_t k = 0; k < n; k++) t->grad[k] = (float)((k * 13 + i) % 89) * 1e-3f - 0.04f;
        left -= n;
    }
    xv_adamw_config cfg = xv_adamw_default();
    xv_adamw opt;
    if (xv_adamw_init(&opt, &ps, &cfg, NULL) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    ctx_t c = {&ps, &opt};
    double gb = (double)total * sizeof(float) * 1e-9;
    double t_adam = xv_bench_median(run_adamw, &c, 3.0);
    /* reads p, g, m, v; writes p, m, v */
    printf("adamw step     %lld params (%d tensors): %8.1f ms  (%.1f GB/s of p,g,m,v traffic)\n",
           (long long)total, ps.n, t_adam * 1e3, 7 * gb / t_adam);
    double t_clip = xv_bench_median(run_clip, &c, 2.0);
    printf("grad norm      %8.1f ms  (%.1f GB/s)\n", t_clip * 1e3, gb / t_clip);

    int64_t step = 1, epoch = 0;
    xv_train_state st = {.params = &ps, .opt = &opt, .step = &step, .epoch = &epoch, .config = "bench"};
    char path[4096];
    double t0 = xv_bench_now();
    if (xv_ckpt_save(dir, 1, &st, path, sizeof path) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    double t_save = xv_bench_now() - t0;
    t0 = xv_bench_now();
    if (xv_ckpt_load(path, &st, NULL) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    double t_load = xv_bench_now() - t0;
    printf("checkpoint     %.2f GB: save (fsync'd) %.2f s, load + verify %.2f s\n", 3 * gb, t_save, t_load);
    unlink(path);

    static bool cont[30522];
    for (int i = 1000; i < 2000; i++) cont[i] = true;
    mask_ctx m = {.cfg = xv_masking_default()};
    m.cfg.mask_id = 103;
    m.cfg.vocab_size = 30522;
    m.cfg.is_continuation = cont;
    xv_rng_seed(&m.rng, 1);
    m.ids[0] = 101;
    for (int i = 1; i < 40; i++) m.ids[i] = i % 4 == 3 ? 1000 + i : 3000 + i;
    double t_mask = xv_bench_median(run_mask, &m, 1.0);
    printf("mlm masking    len 40: %.2f us per text\n", t_mask / 1000 * 1e6);
    printf("peak RSS       %.0f MiB\n", xv_bench_peak_rss_mib());
    xv_adamw_free(&opt);
    xv_params_free(&ps);
    return 0;
}
