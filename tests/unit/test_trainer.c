/* The pretraining loop on a tiny X-VLM fed by an in-test batch generator:
 * - the first update has learning rate 0 (parameters unchanged), later ones not;
 * - region updates reuse the rate of the following image-text update and do
 *   not advance the schedule;
 * - N steps straight == N/2 steps, checkpoint, fresh trainer, load, N/2 steps:
 *   bitwise parameters, AdamW moments and step counts;
 * - a batch that makes the loss non-finite is skipped (no update) and counted;
 * - the same seed gives the same run; another seed another. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "testutil.h"
#include "train/trainer.h"

enum { B = 4, L = 8, M = 3, RES = 32, NI_REGION = 2, VOCAB = 50 };

static xv_model_config tiny_config(void) {
    xv_model_config c;
    xv_config_defaults(&c);
    xv_swin_config *v = &c.vision;
    v->image_res = RES;
    v->patch = 4;
    v->embed_dim = 16;
    v->n_stages = 2;
    v->depths[0] = 2, v->depths[1] = 1;
    v->heads[0] = 1, v->heads[1] = 2;
    v->window = 4;
    v->vision_width = 32;
    v->region_stride = 8; /* 4 x 4 final patches */
    xv_bert_config *t = &c.text;
    t->hidden = 32, t->layers = 2, t->heads = 2, t->intermediate = 64, t->vocab = VOCAB;
    t->max_positions = 16, t->fusion_layer = 1, t->encoder_width = 32;
    c.embed_dim = 16;
    return c;
}

/* ---- a batch generator with a resumable position ---- */
typedef struct {
    xv_rng rng;
    bool region;
    int64_t batches;
    int nan_at; /* batch index whose image holds a NaN (-1: none) */
    int bad_id_at; /* batch index whose text_ids[0][1] lies outside the vocabulary (-1: none) */
    float image[B * 3 * RES * RES];
    int32_t ids[B * L], atts[B * L], ids_masked[B * L], mpos[B * M], mids[B * M];
    int32_t idx[B], image_atts[B * 17], is_image[B];
    float bbox[B * 4];
} gen;

static xv_status gen_next(void *ctx, xv_pretrain_batch *out) {
    gen *s = ctx;
    const int ni = s->region ? NI_REGION : B;
    for (int i = 0; i < ni * 3 * RES * RES; i++) s->image[i] = 2.0f * xv_rng_uniform(&s->rng) - 1.0f;
    if (s->batches == s->nan_at) s->image[5] = NAN;
    for (int b = 0; b < B; b++) {
        int len = 3 + (int)xv_rng_below(&s->rng, L - 2); /* 3..L */
        for (int j = 0; j < L; j++) {
            s->ids[b * L + j] = j == 0 ? 2 : j < len ? 5 + (int32_t)xv_rng_below(&s->rng, VOCAB - 5) : 0;
            s->atts[b * L + j] = j < len;
            s->ids_masked[b * L + j] = s->ids[b * L + j];
        }
        for (int k = 0; k < M; k++) {
            int p = 1 + k;
            bool used = k < 2;
            s->mpos[b * M + k] = used ? p : 0;
            s->mids[b * M + k] = used ? s->ids[b * L + p] : -100;
            if (used) s->ids_masked[b * L + p] = 4;
        }
        if (s->region) {
            s->idx[b] = b * NI_REGION / B;
            s->is_image[b] = b % 2 == 0;
            int x0 = (int)xv_rng_below(&s->rng, 3), y0 = (int)xv_rng_below(&s->rng, 3);
            int x1 = x0 + 1 + (int)xv_rng_below(&s->rng, (uint64_t)(4 - x0 - 1) + 1);
            int y1 = y0 + 1 + (int)xv_rng_below(&s->rng, (uint64_t)(4 - y0 - 1) + 1);
            s->image_atts[b * 17] = 1;
            for (int p = 0; p < 16; p++) {
                int r = p / 4, c = p % 4;
                s->image_atts[b * 17 + 1 + p] = s->is_image[b] || (r >= y0 && r < y1 && c >= x0 && c < x1);
            }
            float *t = s->bbox + b * 4;
            if (s->is_image[b]) t[0] = t[1] = 0.5f, t[2] = t[3] = 1.0f;
            else
                t[0] = (x0 + x1) / 8.0f, t[1] = (y0 + y1) / 8.0f, t[2] = (x1 - x0) / 4.0f, t[3] = (y1 - y0) / 4.0f;
        }
    }
    *out = (xv_pretrain_batch){.n_images = ni, .res = RES, .image = s->image, .n_texts = B, .text_len = L,
                            .max_masks = M, .text_ids = s->ids, .text_atts = s->atts,
                            .text_ids_masked = s->ids_masked, .masked_pos = s->mpos, .masked_ids = s->mids};
    if (s->region) {
        out->n_atts = 17;
        out->idx_to_group_img = s->idx;
        out->image_atts = s->image_atts;
        out->target_bbox = s->bbox;
        out->is_image = s->is_image;
    }
    if (s->batches == s->bad_id_at) s->ids[1] = VOCAB;
    s->batches++;
    return XV_OK;
}

static int gen_state_len(void *ctx) { return 3; }
static const char *gen_state_name(void *ctx, int i) {
    static const char *n[3] = {"rng.key", "rng.counter", "batches"};
    return n[i];
}
static xv_status gen_save(void *ctx, int64_t *v, int n) {
    gen *s = ctx;
    v[0] = (int64_t)s->rng.key, v[1] = (int64_t)s->rng.counter, v[2] = s->batches;
    return XV_OK;
}
static xv_status gen_restore(void *ctx, const int64_t *v, int n) {
    gen *s = ctx;
    s->rng.key = (uint64_t)v[0], s->rng.counter = (uint64_t)v[1], s->batches = v[2];
    return XV_OK;
}

static xv_batch_source gen_source(gen *s) {
    return (xv_batch_source){.ctx = s, .next = gen_next, .state_len = gen_state_len,
                             .state_name = gen_state_name, .state_save = gen_save, .state_restore = gen_restore};
}

/* ---- a run: model + sources + trainer ---- */
typedef struct {
    xv_model *m;
    gen img, reg;
    xv_trainer *t;
} run;

static void run_open_cfg(run *r, uint64_t seed, int nan_at, bool bbox_loss) {
    memset(r, 0, sizeof *r);
    xv_model_config c = tiny_config();
    xv_model_parts parts = xv_model_parts_pretrain();
    CHECK_OK(xv_model_create(&c, &parts, &r->m));
    CHECK_OK(xv_model_init_random(r->m, seed));
    xv_rng_seed(&r->img.rng, seed * 3 + 1);
    xv_rng_seed(&r->reg.rng, seed * 3 + 2);
    r->reg.region = true;
    r->img.nan_at = nan_at;
    r->reg.nan_at = -1;
    r->img.bad_id_at = r->reg.bad_id_at = -1;
    xv_trainer_config tc = xv_trainer_config_default();
    tc.seed = seed;
    tc.optim.lr = 1e-3;
    tc.total_steps = 40;
    tc.warmup = 4;
    tc.steps_per_epoch = 10;
    tc.bbox_loss = bbox_loss;
    xv_batch_source si = gen_source(&r->img), sr = gen_source(&r->reg);
    CHECK_OK(xv_trainer_new(r->m, &tc, &si, &sr, "tiny test", &r->t));
}

static void run_open(run *r, uint64_t seed, int nan_at) { run_open_cfg(r, seed, nan_at, true); }

static void run_close(run *r) {
    xv_trainer_free(r->t);
    xv_model_free(r->m);
}

static int run_steps(run *r, int n, xv_update_record *all, int cap) {
    int k = 0;
    for (int s = 0; s < n; s++) {
        xv_update_record rec[2];
        int nr = 0;
        CHECK_OK(xv_trainer_step(r->t, rec, &nr));
        for (int i = 0; i < nr && k < cap; i++) all[k++] = rec[i];
    }
    return k;
}

static float *snapshot(const xv_model *m) {
    int64_t n = xv_params_count(&m->params), o = 0;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < m->params.n; i++) {
        const xv_tensor *p = m->params.items[i];
        memcpy(v + o, p->data, sizeof(float) * (size_t)p->numel);
        o += p->numel;
    }
    return v;
}

static int64_t params_differ(const xv_model *a, const xv_model *b) {
    int64_t d = 0;
    for (int i = 0; i < a->params.n; i++)
        d += memcmp(a->params.items[i]->data, b->params.items[i]->data, sizeof(float) * (size_t)a->params.items[i]->numel)
                 ? 1
                 : 0;
    return d;
}

static void test_schedule_and_first_update(void) {
    run r;
    run_open(&r, 7, -1);
    float *before = snapshot(r.m);
    xv_update_record rec[64];
    int n = run_steps(&r, 1, rec, 64);
    float *after = snapshot(r.m);
    CHECK(rec[n - 1].lr == 0.0, "first image-text update lr %g", rec[n - 1].lr);
    CHECK(!memcmp(before, after, sizeof(float) * (size_t)xv_params_count(&r.m->params)),
          "the first update (lr 0) must leave the parameters unchanged");
    n = run_steps(&r, 11, rec, 64);
    float *later = snapshot(r.m);
    CHECK(memcmp(after, later, sizeof(float) * (size_t)xv_params_count(&r.m->params)),
          "later updates must move the parameters");
    int regions = 0, images = 0;
    for (int i = 0; i < n; i++) {
        /* steps 1..11 of a warmup of 4 over 40: λ = t/4, then (40-t)/36 */
        int64_t t = rec[i].step;
        double lambda = t < 4 ? t / 4.0 : (40.0 - t) / 36.0;
        CHECK(fabs(rec[i].lr - 1e-3 * lambda) < 1e-15, "step %lld lr %.17g, expected %.17g", (long long)t,
              rec[i].lr, 1e-3 * lambda);
        CHECK(fabs(rec[i].lr_large - 2 * rec[i].lr) < 1e-15, "lr_large %g vs lr %g", rec[i].lr_large, rec[i].lr);
        if (rec[i].region) {
            regions++;
            CHECK(i + 1 < n && !rec[i + 1].region && rec[i + 1].step == t,
                  "a region update is followed by the image-text update of its step");
            CHECK(isfinite(rec[i].loss_bbox) && rec[i].loss_bbox > 0 && isfinite(rec[i].loss_giou),
                  "region update has box losses");
        } else {
            images++;
            CHECK(rec[i].loss_bbox == 0 && rec[i].loss_giou == 0, "image-text update has no box loss");
        }
        CHECK(isfinite(rec[i].loss_itc) && isfinite(rec[i].loss_itm) && isfinite(rec[i].loss_mlm) &&
                  rec[i].grad_norm > 0 && !rec[i].skipped,
              "update %d finite", i);
    }
    CHECK(images == 11, "%d image-text updates for 11 steps", images);
    CHECK(regions >= 2 && regions <= 9, "%d region updates in 11 steps at iter_perc 0.5 (P(outside) < 0.07)",
          regions);
    CHECK(xv_trainer_steps_done(r.t) == 12, "steps done %lld", (long long)xv_trainer_steps_done(r.t));
    /* the arena is reused: once both kinds of update have run, more steps of
     * the same shapes take no more activation memory */
    const size_t peak = xv_trainer_arena_peak(r.t);
    run_steps(&r, 4, rec, 64);
    CHECK(peak > 0 && xv_trainer_arena_peak(r.t) == peak, "arena peak %zu -> %zu", peak, xv_trainer_arena_peak(r.t));
    free(before), free(after), free(later);
    run_close(&r);
}

/* The "w/o bbox loss" ablation: region updates keep ITC + ITM + MLM only. */
static void test_no_bbox_loss(void) {
    run r;
    run_open_cfg(&r, 7, -1, false);
    xv_update_record rec[64];
    int n = run_steps(&r, 12, rec, 64), regions = 0;
    for (int i = 0; i < n; i++) {
        if (!rec[i].region) continue;
        regions++;
        double sum = rec[i].loss_itc + rec[i].loss_itm + rec[i].loss_mlm;
        CHECK(rec[i].loss_bbox == 0 && rec[i].loss_giou == 0 && !rec[i].skipped, "region update %d has no box loss",
              i);
        /* The total is a float32 sum of three losses of size ~1: a few ulps. */
        CHECK(fabs(rec[i].loss_total - sum) <= 1e-5 * sum, "total %.9g = itc + itm + mlm %.9g", rec[i].loss_total,
              sum);
    }
    CHECK(regions >= 2, "%d region updates in 12 steps", regions);
    run_close(&r);
}

static void test_resume_bitwise(void) {
    const int N = 8;
    char dir[64];
    CHECK(xv_test_scratch_dir("xv_test_trainer", dir, sizeof dir), "mkdtemp");
    char path[512];
    snprintf(path, sizeof path, "%s/half.safetensors", dir);

    run straight;
    run_open(&straight, 11, -1);
    xv_update_record rs[64], rh[64];
    int ns = run_steps(&straight, N, rs, 64);

    run half;
    run_open(&half, 11, -1);
    int nh = run_steps(&half, N / 2, rh, 64);
    CHECK_OK(xv_trainer_write(half.t, path));
    run_close(&half);

    run resumed;
    run_open(&resumed, 99, -1); /* other init and streams: everything must come from the file */
    CHECK_OK(xv_trainer_load(resumed.t, path));
    CHECK(xv_trainer_steps_done(resumed.t) == N / 2, "resumed at %lld", (long long)xv_trainer_steps_done(resumed.t));
    nh += run_steps(&resumed, N - N / 2, rh + nh, 64 - nh);
    CHECK(ns == nh, "%d updates straight, %d with a resume", ns, nh);
    for (int i = 0; i < ns && i < nh; i++)
        CHECK(rs[i].region == rh[i].region && rs[i].loss_total == rh[i].loss_total &&
                  rs[i].grad_norm == rh[i].grad_norm,
              "update %d: straight (%d, %.9g, %.9g) vs resumed (%d, %.9g, %.9g)", i, rs[i].region, rs[i].loss_total,
              rs[i].grad_norm, rh[i].region, rh[i].loss_total, rh[i].grad_norm);
    CHECK(params_differ(straight.m, resumed.m) == 0, "%lld parameters differ after resume",
          (long long)params_differ(straight.m, resumed.m));

    /* optimiser state, through the files: both written now must hold the same bytes */
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/a.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/b.safetensors", dir);
    CHECK_OK(xv_trainer_write(straight.t, pa));
    CHECK_OK(xv_trainer_write(resumed.t, pb));
    uint8_t *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    CHECK_OK(xv_fs_read_file(pa, INT64_C(1) << 30, &da, &la));
    CHECK_OK(xv_fs_read_file(pb, INT64_C(1) << 30, &db, &lb));
    CHECK(la == lb && la > 0 && !memcmp(da, db, la),
          "checkpoints after N straight and N/2 + resume + N/2 differ (params, AdamW m/v/step, schedule, streams)");
    free(da), free(db);
    run_close(&straight);
    run_close(&resumed);
    unlink(path), unlink(pa), unlink(pb), rmdir(dir);
}

static void test_nonfinite_skipped(void) {
    run r;
    run_open(&r, 5, 3); /* the 4th image-text batch holds a NaN pixel */
    xv_update_record rec[64];
    int n = run_steps(&r, 6, rec, 64);
    int skipped = 0;
    for (int i = 0; i < n; i++)
        if (rec[i].skipped) {
            skipped++;
            CHECK(!rec[i].region && rec[i].step == 3 && !isfinite(rec[i].loss_total),
                  "skipped update %d: region %d step %lld loss %g", i, rec[i].region, (long long)rec[i].step,
                  rec[i].loss_total);
        }
    CHECK(skipped == 1 && xv_trainer_skipped(r.t) == 1, "%d skipped updates (counter %lld), expected 1", skipped,
          (long long)xv_trainer_skipped(r.t));
    CHECK(isfinite(rec[n - 1].loss_total), "training goes on after a skipped update");
    run_close(&r);
}

/* A malformed batch from a source stops the step with the model's batch
 * check naming the field (the trainer passes batches on unchecked). */
static void test_bad_batch_refused(void) {
    run r;
    run_open(&r, 5, -1);
    r.img.bad_id_at = 2; /* the 3rd image-text batch */
    xv_update_record rec[2];
    int n = 0;
    for (int s = 0; s < 2; s++) CHECK_OK(xv_trainer_step(r.t, rec, &n));
    char want[96];
    snprintf(want, sizeof want, "pretrain batch: text_ids[0][1] = %d outside [0, %d)", VOCAB, VOCAB);
    CHECK(xv_trainer_step(r.t, rec, &n) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "step 2 forward") &&
              strstr(xv_error_message(), want),
          "bad batch: %s", xv_error_message());
    run_close(&r);
}

static void test_seed_determinism(void) {
    run a, b, c;
    run_open(&a, 3, -1);
    run_open(&b, 3, -1);
    run_open(&c, 4, -1);
    xv_update_record rec[64];
    run_steps(&a, 4, rec, 64);
    run_steps(&b, 4, rec, 64);
    run_steps(&c, 4, rec, 64);
    CHECK(params_differ(a.m, b.m) == 0, "same seed, different parameters");
    CHECK(params_differ(a.m, c.m) > 0, "another seed gives the same parameters");
    run_close(&a), run_close(&b), run_close(&c);
}

int main(void) {
    test_schedule_and_first_update();
    test_no_bbox_loss();
    test_resume_bitwise();
    test_nonfinite_skipped();
    test_bad_batch_refused();
    test_seed_determinism();
    return xv_test_finish("test_trainer");
}
