/* One pretraining step of any model (default X-VLM base: configs/xvlm_base_224.json,
 * Swin-B 224 + BERT 6/6, 215,637,241 parameters) at batch B through the
 * trainer: a region update (ITC + ITM + MLM + box L1/GIoU on B texts of B
 * images) and an image-text update (ITC + ITM + MLM on B pairs), each with
 * its forward, backward, clip and AdamW step, in training mode (dropout on).
 * Batches are random images and token ids of the pretraining shapes (L =
 * max_tokens 40, or the config's max_position_embeddings if smaller; 8 masks),
 * so no data loading is timed. Token ids are drawn past the special tokens
 * ([CLS] 101, [MASK] 103) and inside the config's vocabulary.
 *
 * Reports wall and process CPU seconds per update of each kind and per step
 * (medians over the timed steps; the region update's also split into forward,
 * backward and the rest), page faults per step on stderr, samples/s, the peak resident memory,
 * the activation arena's and the activation gradients' peaks and the machine's sgemm rate for scale.
 *
 * Usage: bench_pretrain_step [--config MODEL_JSON (configs/xvlm_base_224.json)] [--batch B (8)]
 *                            [--threads N (2)] [--steps timed steps (2)] [--length L] [--masks M (8)]
 * Under mpirun every rank takes B samples (data-parallel, gradients averaged
 * as in pretraining; XV_DIST_OVERLAP=0 reduces after the backward) and rank 0
 * prints; samples/s are then over all ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "core/fs.h"
#include "core/threads.h"
#include "dist/dist.h"
#include "train/pretrain_init.h"
#include "train/trainer.h"
#include "xvlm.h"

typedef struct {
    xv_rng rng;
    bool region;
    int B, res, n_atts;
    int L, M, vocab; /* text length, masked slots, vocabulary size */
    float *image, *bbox;
    int32_t *ids, *atts, *ids_masked, *mpos, *mids, *idx, *image_atts, *is_image;
} source;

static xv_status next(void *ctx, xv_pretrain_batch *out) {
    source *s = ctx;
    const int B = s->B, R = s->res, L = s->L, M = s->M;
    /* BERT's [CLS] 101 and [MASK] 103 and words past them when the vocabulary
     * has room, else [CLS] 1, [MASK] 2 and words from 3: any id only needs to lie inside it. */
    const bool bert_ids = s->vocab > 104;
    const int32_t cls = bert_ids ? 101 : 1, mask = bert_ids ? 103 : 2, first_id = bert_ids ? 104 : 3;
    const int short_len = L < 12 ? L : 12;
    const int min_len = short_len > M + 1 ? short_len : M + 1; /* the masked slots 1..M lie inside the text */
    for (int64_t i = 0; i < (int64_t)B * 3 * R * R; i++) s->image[i] = 2.0f * xv_rng_uniform(&s->rng) - 1.0f;
    const int side = (int)(0.5 + __builtin_sqrt((double)(s->n_atts - 1)));
    for (int b = 0; b < B; b++) {
        const int len = min_len + (int)xv_rng_below(&s->rng, (uint64_t)(L - min_len + 1));
        for (int j = 0; j < L; j++) {
            const int32_t word = first_id + (int32_t)xv_rng_below(&s->rng, (uint64_t)(s->vocab - first_id));
            s->ids[b * L + j] = j == 0 ? cls : j < len ? word : 0;
            s->atts[b * L + j] = j < len;
            s->ids_masked[b * L + j] = s->ids[b * L + j];
        }
        for (int k = 0; k < M; k++) {
            s->mpos[b * M + k] = 1 + k;
            s->mids[b * M + k] = s->ids[b * L + 1 + k];
            s->ids_masked[b * L + 1 + k] = mask;
        }
        s->idx[b] = b;
        s->is_image[b] = b == 0; /* one whole-image text, the others regions */
        s->image_atts[b * s->n_atts] = 1;
        for (int p = 0; p < s->n_atts - 1; p++)
            s->image_atts[b * s->n_atts + 1 + p] = b == 0 || (p / side < side / 2 + 1 && p % side < side / 2 + 1);
        const float box[4] = {0.3f, 0.3f, 0.5f, 0.5f}, whole[4] = {0.5f, 0.5f, 1, 1};
        memcpy(s->bbox + 4 * b, b == 0 ? whole : box, sizeof box);
    }
    *out = (xv_pretrain_batch){.n_images = B, .res = R, .image = s->image, .n_texts = B, .text_len = L, .max_masks = M,
                            .text_ids = s->ids, .text_atts = s->atts, .text_ids_masked = s->ids_masked,
                            .masked_pos = s->mpos, .masked_ids = s->mids};
    if (s->region) {
        out->n_atts = s->n_atts;
        out->idx_to_group_img = s->idx;
        out->image_atts = s->image_atts;
        out->target_bbox = s->bbox;
        out->is_image = s->is_image;
    }
    return XV_OK;
}

static void source_init(source *s, bool region, int B, int L, int M, const xv_model_config *c, uint64_t seed) {
    memset(s, 0, sizeof *s);
    xv_rng_seed(&s->rng, seed);
    const int res = c->vision.image_res, n_atts = 1 + xv_config_num_patches(c);
    s->region = region, s->B = B, s->res = res, s->n_atts = n_atts;
    s->L = L, s->M = M, s->vocab = c->text.vocab;
    s->image = malloc(sizeof(float) * (size_t)B * 3 * res * res);
    s->bbox = malloc(sizeof(float) * (size_t)B * 4);
    int32_t **arrays[] = {&s->ids, &s->atts, &s->ids_masked};
    for (int i = 0; i < 3; i++) *arrays[i] = malloc(sizeof(int32_t) * (size_t)B * L);
    s->mpos = malloc(sizeof(int32_t) * (size_t)B * M);
    s->mids = malloc(sizeof(int32_t) * (size_t)B * M);
    s->idx = malloc(sizeof(int32_t) * (size_t)B);
    s->is_image = malloc(sizeof(int32_t) * (size_t)B);
    s->image_atts = malloc(sizeof(int32_t) * (size_t)B * n_atts);
}

static void source_free(source *s) {
    free(s->image), free(s->bbox), free(s->ids), free(s->atts), free(s->ids_masked), free(s->mpos), free(s->mids);
    free(s->idx), free(s->is_image), free(s->image_atts);
}

static int usage(void) {
    fprintf(stderr, "usage: bench_pretrain_step [--config MODEL_JSON] [--batch B >= 2] [--threads N >= 1] "
                    "[--steps timed steps >= 1] [--length L] [--masks M]\n");
    return 2;
}

int main(int argc, char **argv) {
    xv_threads_wait_passive(argv); /* as the xvlm program runs (core/threads.h); before MPI starts */
    if (xv_dist_init(&argc, &argv) != XV_OK) {
        fprintf(stderr, "bench_pretrain_step: %s\n", xvlm_last_error());
        return 1;
    }
    const int world = xv_dist_world();
    if (xv_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    const char *cfg_path = "configs/xvlm_base_224.json";
    int B = 8, threads = 2, steps = 2, L = 0, M = 8; /* L 0: 40, or the config's max_position_embeddings */
    for (int i = 1; i < argc; i++) {
        if (i + 1 == argc) return usage();
        if (!strcmp(argv[i], "--config")) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--length")) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--masks")) M = atoi(argv[++i]);
        else return usage();
    }
    if (B < 2 || threads < 1 || steps < 1 || M < 1) return usage();
    xvlm_set_threads(threads);
    xv_model_config c;
    xv_model *m = NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    if (xv_config_load(cfg_path, &c) != XV_OK || xv_model_create(&c, &parts, &m) != XV_OK ||
        xv_pretrain_init_weights(m, 1) != XV_OK) {
        fprintf(stderr, "bench_pretrain_step: %s\n", xvlm_last_error());
        return 1;
    }
    if (L == 0) L = c.text.max_positions < 40 ? c.text.max_positions : 40;
    if (L > c.text.max_positions || L < M + 2) {
        fprintf(stderr, "bench_pretrain_step: --length %d must lie in [masks + 2 = %d, max_position_embeddings %d of %s]\n",
                L, M + 2, c.text.max_positions, cfg_path);
        return 2;
    }
    const int64_t n_params = xv_params_count(&m->params);
    printf("model %s: %lld parameters, %d px, batch %d per rank, text length %d, %d masks, %d ranks x %d threads\n",
           cfg_path, (long long)n_params, c.vision.image_res, B, L, M, world, xvlm_get_threads());

    source img, reg;
    source_init(&img, false, B, L, M, &c, 11);
    source_init(&reg, true, B, L, M, &c, 12);
    xv_batch_source si = {.ctx = &img, .next = next}, sr = {.ctx = &reg, .next = next};
    xv_trainer_config tc = xv_trainer_config_default();
    tc.iter_perc = 1.0; /* a region update before every image-text update */
    tc.total_steps = 1000;
    tc.warmup = 1;
    tc.steps_per_epoch = 1000;
    xv_trainer *t = NULL;
    if (xv_trainer_new(m, &tc, &si, &sr, NULL, &t) != XV_OK) {
        fprintf(stderr, "bench_pretrain_step: %s\n", xvlm_last_error());
        return 1;
    }
    /* Per timed step: wall and CPU seconds of the region [0] and image-text [1] update, CPU of the step;
     * the region update's forward [0] and backward [1] wall and CPU seconds. */
    double *wall[2], *cpu[2], *step_cpu = calloc((size_t)steps, sizeof(double));
    double *part_wall[2], *part_cpu[2];
    for (int k = 0; k < 2; k++) {
        wall[k] = calloc((size_t)steps, sizeof(double)), cpu[k] = calloc((size_t)steps, sizeof(double));
        part_wall[k] = calloc((size_t)steps, sizeof(double)), part_cpu[k] = calloc((size_t)steps, sizeof(double));
    }
    double loss[2][6] = {{0}};
    for (int s = -1; s < steps; s++) { /* step -1: warm-up (sizes the arena, allocates gradients and moments) */
        xv_update_record rec[2];
        int n = 0;
        const double c0 = xv_cpu_seconds();
        const long f0 = xv_bench_minor_faults();
        if (xv_trainer_step(t, rec, &n) != XV_OK || n != 2) {
            fprintf(stderr, "bench_pretrain_step: %s\n", xvlm_last_error());
            return 1;
        }
        const double used = xv_cpu_seconds() - c0;
        for (int k = 0; k < 2 && s >= 0; k++) wall[k][s] = rec[k].seconds, cpu[k][s] = rec[k].cpu_seconds;
        if (s >= 0) {
            step_cpu[s] = used;
            part_wall[0][s] = rec[0].forward_seconds, part_cpu[0][s] = rec[0].forward_cpu_seconds;
            part_wall[1][s] = rec[0].backward_seconds, part_cpu[1][s] = rec[0].backward_cpu_seconds;
        }
        for (int k = 0; k < 2; k++) {
            double v[6] = {rec[k].loss_itc, rec[k].loss_itm, rec[k].loss_mlm, rec[k].loss_bbox, rec[k].loss_giou,
                           rec[k].grad_norm};
            memcpy(loss[k], v, sizeof v);
        }
        if (xv_dist_rank() == 0)
            fprintf(stderr, "step %d: region %.2f s (%.2f CPU s), image-text %.2f s (%.2f CPU s), %ld page faults\n", s,
                rec[0].seconds, rec[0].cpu_seconds, rec[1].seconds, rec[1].cpu_seconds,
                xv_bench_minor_faults() - f0);
    }
    double med_wall[2], med_cpu[2];
    for (int k = 0; k < 2; k++)
        med_wall[k] = xv_bench_sort_median(wall[k], steps), med_cpu[k] = xv_bench_sort_median(cpu[k], steps);
    printf("region update     (fwd + bwd + clip + AdamW): %8.3f s wall %8.3f CPU s  %6.2f texts/s   (itc %.3f itm %.3f "
           "mlm %.3f bbox %.3f giou %.3f, |g| %.2f)\n",
           med_wall[0], med_cpu[0], world * B / med_wall[0], loss[0][0], loss[0][1], loss[0][2], loss[0][3], loss[0][4],
           loss[0][5]);
    double pw[2], pc[2];
    for (int k = 0; k < 2; k++) pw[k] = xv_bench_sort_median(part_wall[k], steps), pc[k] = xv_bench_sort_median(part_cpu[k], steps);
    printf("  of which forward %8.3f s wall %8.3f CPU s; backward %8.3f s wall %8.3f CPU s; batch + clip + AdamW "
           "%6.3f s wall %6.3f CPU s\n",
           pw[0], pc[0], pw[1], pc[1], med_wall[0] - pw[0] - pw[1], med_cpu[0] - pc[0] - pc[1]);
    printf("image-text update (fwd + bwd + clip + AdamW): %8.3f s wall %8.3f CPU s  %6.2f pairs/s   (itc %.3f itm %.3f "
           "mlm %.3f, |g| %.2f)\n",
           med_wall[1], med_cpu[1], world * B / med_wall[1], loss[1][0], loss[1][1], loss[1][2], loss[1][5]);
    printf("one step (region + image-text update): %.3f s wall, %.3f CPU s (all threads)\n", med_wall[0] + med_wall[1],
           xv_bench_sort_median(step_cpu, steps));
    const double state_mib = (double)n_params * 4 * 4 / (1 << 20);
    printf("memory: peak RSS %.0f MiB; parameters + gradients + AdamW moments %.0f MiB; activation arena peak %.0f "
           "MiB; activation gradients peak %.0f MiB\n",
           xv_bench_peak_rss_mib(), state_mib, (double)xv_trainer_arena_peak(t) / (1 << 20),
           (double)xv_trainer_grads_peak(t) / (1 << 20));
    printf("sgemm reference: %.1f GFLOP/s (M=N=K=1024)\n", xv_bench_sgemm_gflops(1024, 1024, 1024, 0.5));
    for (int k = 0; k < 2; k++) free(wall[k]), free(cpu[k]), free(part_wall[k]), free(part_cpu[k]);
    free(step_cpu);
    xv_trainer_free(t);
    source_free(&img), source_free(&reg);
    xv_model_free(m);
    xv_dist_finalize();
    return 0;
}
