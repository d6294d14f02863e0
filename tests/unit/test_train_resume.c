/* A miniature pretraining loop (Pretrain.py's shape: optional region update
 * without a scheduler step, then the image-text update with one) on a quadratic
 * loss with plain C gradients and noisy targets drawn from a seeded stream.
 * N steps straight must equal N/2 steps, a checkpoint, a fresh process state
 * loaded from it, and N/2 more: bitwise. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/clip.h"
#include "train/param_groups.h"
#include "train/schedule.h"

enum { STEPS_PER_EPOCH = 5, BATCH = 128, TOTAL = 24 };

typedef struct {
    xv_params ps;
    xv_init_params large;
    xv_adamw opt;
    xv_lr_schedule sched;
    int64_t step, epoch, data_pos, region_pos;
    xv_rng data_rng;
    xv_ckpt_counter counters[2];
    xv_ckpt_rng rngs[1];
    xv_train_state st;
    int clipped;
    double first_loss, last_loss;
} run;

static void run_init(run *r, uint64_t seed) {
    memset(r, 0, sizeof *r);
    xv_params_init(&r->ps);
    xv_params_add(&r->ps, "text_encoder.bert.encoder.layer.6.crossattention.self.query.weight",
                  (const int64_t[]){4, 5}, 2);
    xv_params_add(&r->ps, "vision_encoder.norm.weight", (const int64_t[]){5}, 1);
    xv_params_add(&r->ps, "temp", (const int64_t[]){1}, 0); /* a scalar */
    xv_params_add(&r->ps, "text_encoder.bert.embeddings.word_embeddings.weight", (const int64_t[]){6, 3}, 2);
    for (int i = 0; i < r->ps.n; i++) {
        xv_tensor *t = r->ps.items[i];
        t->grad = calloc((size_t)t->numel, sizeof(float));
        xv_test_fill_uniform(t->data, t->numel, -2, 2, seed + (uint64_t)i); /* init */
    }
    xv_init_params_spec spec = xv_init_params_pretrain_default();
    xv_init_params_build(&spec, &r->large);
    xv_adamw_config cfg = xv_adamw_default();
    cfg.lr = 0.05; /* large enough to move the toy problem */
    xv_adamw_init(&r->opt, &r->ps, &cfg, &r->large);
    xv_schedule_init(&r->sched, TOTAL, 0.25, true);
    xv_rng_seed(&r->data_rng, seed);
    r->counters[0] = (xv_ckpt_counter){"data.general", &r->data_pos};
    r->counters[1] = (xv_ckpt_counter){"data.region", &r->region_pos};
    r->rngs[0] = (xv_ckpt_rng){"data", &r->data_rng};
    r->st = (xv_train_state){.params = &r->ps, .opt = &r->opt, .sched = &r->sched, .step = &r->step,
                             .epoch = &r->epoch, .counters = r->counters, .n_counters = 2, .rngs = r->rngs,
                             .n_rngs = 1, .config = "toy"};
}

static void run_free(run *r) {
    xv_adamw_free(&r->opt);
    xv_init_params_free(&r->large);
    xv_params_free(&r->ps);
}

/* L = Σ 0.5·c·(p − target)², target = k/7 − 1 + 0.3·noise; returns L. */
static double loss_and_grad(run *r) {
    xv_params_zero_grad(&r->ps);
    double loss = 0;
    for (int i = 0; i < r->ps.n; i++) {
        xv_tensor *t = r->ps.items[i];
        for (int64_t k = 0; k < t->numel; k++) {
            float target = (float)(k % 7) / 7.0f - 1.0f + 0.3f * xv_rng_normal(&r->data_rng);
            float c = (float)(1 + (k + i) % 3);
            float d = t->data[k] - target;
            t->grad[k] = c * d;
            loss += 0.5 * c * d * d;
        }
    }
    return loss;
}

static void update(run *r) {
    double norm;
    xv_clip_grad_norm(&r->ps, 1.0, &norm);
    r->clipped += norm > 1.0;
    xv_adamw_step(&r->opt, xv_schedule_factor(&r->sched));
}

static void train(run *r, int steps) {
    for (int s = 0; s < steps; s++) {
        if (xv_rng_uniform_double(&r->data_rng) < 0.5) { /* regions: iter_perc 0.5 */
            loss_and_grad(r);
            update(r); /* no scheduler step */
            r->region_pos++;
        }
        double loss = loss_and_grad(r);
        if (r->step == 0) r->first_loss = loss;
        r->last_loss = loss;
        update(r);
        xv_schedule_step(&r->sched);
        r->data_pos += BATCH;
        r->step++;
        r->epoch = r->step / STEPS_PER_EPOCH;
    }
}

static bool same(const run *a, const run *b) {
    bool eq = true;
    for (int i = 0; i < a->ps.n; i++) {
        size_t bytes = sizeof(float) * (size_t)a->ps.items[i]->numel;
        eq &= !memcmp(a->ps.items[i]->data, b->ps.items[i]->data, bytes);
        eq &= !memcmp(a->opt.slots[i].m, b->opt.slots[i].m, bytes) && !memcmp(a->opt.slots[i].v, b->opt.slots[i].v, bytes);
        eq &= a->opt.slots[i].step == b->opt.slots[i].step;
    }
    return eq && a->step == b->step && a->epoch == b->epoch && a->data_pos == b->data_pos &&
           a->region_pos == b->region_pos && a->sched.pos == b->sched.pos &&
           !memcmp(&a->data_rng, &b->data_rng, sizeof a->data_rng);
}

int main(void) {
    char dir[64];
    if (!xv_test_scratch_dir("xv_resume_test", dir, sizeof dir)) return 1;

    run straight;
    run_init(&straight, 1234);
    train(&straight, TOTAL);
    CHECK(straight.region_pos > 0 && straight.opt.slots[0].step == TOTAL + straight.region_pos,
          "region updates add Adam steps (%lld) without scheduler steps", (long long)straight.opt.slots[0].step);
    CHECK(straight.clipped > 0, "clipping was active");
    CHECK(straight.last_loss < 0.5 * straight.first_loss, "the toy problem is learned: %g -> %g",
          straight.first_loss, straight.last_loss);

    run first;
    run_init(&first, 1234);
    train(&first, TOTAL / 2);
    char path[256];
    CHECK_OK(xv_ckpt_save(dir, 2, &first.st, path, sizeof path));
    run_free(&first);

    run resumed;
    run_init(&resumed, 999); /* other init and stream: all of it must come from the checkpoint */
    char latest[256];
    CHECK_OK(xv_ckpt_latest(dir, latest, sizeof latest));
    CHECK(!strcmp(latest, path), "latest %s", latest);
    CHECK_OK(xv_ckpt_load(latest, &resumed.st, NULL));
    CHECK(resumed.step == TOTAL / 2 && resumed.sched.pos == TOTAL / 2, "position restored");
    train(&resumed, TOTAL - TOTAL / 2);
    CHECK(same(&straight, &resumed), "straight and resumed runs differ");

    /* Control: without restoring the stream the runs diverge (the check above can fail). */
    run other;
    run_init(&other, 1234);
    CHECK_OK(xv_ckpt_load(path, &other.st, NULL));
    xv_rng_seed(&other.data_rng, 1);
    train(&other, TOTAL - TOTAL / 2);
    CHECK(!same(&straight, &other), "a different data stream must give a different run");

    unlink(path);
    rmdir(dir);
    run_free(&straight);
    run_free(&resumed);
    run_free(&other);
    return xv_test_finish("train_resume");
}
