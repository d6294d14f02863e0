#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fs.h"
#include "dist/dist.h"
#include "model/pretrain.h"
#include "train/clip.h"
#include "train/rank_state.h"

enum { SRC_IMAGES = 0, SRC_REGIONS = 1, N_SRC = 2 };
static const char *const src_prefix[N_SRC] = {"data.images.", "data.regions."};

/* Fixed counters saved next to the sources' positions. */
enum { CNT_SKIPPED = 0, CNT_REGION_BACKWARDS, N_FIXED_COUNTERS };

struct xv_trainer {
    xv_model *m;
    xv_trainer_config cfg;
    xv_batch_source src[N_SRC];
    bool has_src[N_SRC];
    xv_graph *g;
    xv_init_params large;
    xv_adamw opt;
    bool opt_ready;
    xv_lr_schedule sched;
    xv_rng coin, neg; /* the dropout stream is the graph's own */
    int64_t step, epoch;
    int64_t fixed[N_FIXED_COUNTERS];
    /* checkpoint view: the fixed counters, then every rank's source
     * positions ("rank<r>." names over several ranks, rank_state.h); the
     * coin, then every rank's negatives and dropout streams */
    int64_t *src_vals[N_SRC];
    int src_len[N_SRC];
    char **names; /* owned "data.<kind>.<name>" of this rank's position values */
    int n_vals;
    xv_rank_state ranks;
    xv_ckpt_counter *counters;
    int n_counters;
    xv_ckpt_rng *rngs;
    int n_rngs;
    char *config_text;
};

xv_trainer_config xv_trainer_config_default(void) {
    xv_trainer_config c = {
        .seed = 42,
        .iter_perc = 0.5,
        .clip_norm = 1.0,
        .optim = xv_adamw_default(),
        .total_steps = 0,
        .warmup = 2500,
        .warmup_is_fraction = false,
        .steps_per_epoch = 0,
        .calc_image_bbox_loss = false,
        .bbox_loss = true,
    };
    return c;
}

static char *name_dup(const char *a, const char *b) {
    size_t len = strlen(a) + strlen(b) + 1;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s%s", a, b);
    return s;
}

/* Name every checkpoint counter and stream: the fixed counters, the coin, and
 * "data.<kind>.<name>" for each value of a source's position with the
 * "negatives" and "dropout" streams, once per rank (rank_state.h). */
static xv_status build_counters(xv_trainer *t) {
    static const char *const fixed_names[N_FIXED_COUNTERS] = {"skipped_updates", "region_backwards"};
    t->n_vals = 0;
    for (int k = 0; k < N_SRC; k++) {
        const xv_batch_source *s = &t->src[k];
        if (!t->has_src[k] || !s->state_len) continue;
        if (!s->state_name || !s->state_save || !s->state_restore)
            return xv_error(XV_ERR_INVALID_ARG, "trainer: a source with a position needs its name/save/restore");
        t->src_len[k] = s->state_len(s->ctx);
        if (t->src_len[k] < 0) return xv_error(XV_ERR_INVALID_ARG, "trainer: negative source position length");
        t->src_vals[k] = calloc((size_t)t->src_len[k] + 1, sizeof(int64_t));
        if (!t->src_vals[k]) return xv_error(XV_ERR_NOMEM, "trainer: out of memory");
        t->n_vals += t->src_len[k];
    }
    xv_ckpt_counter *mine = calloc((size_t)t->n_vals + 1, sizeof *mine);
    t->names = calloc((size_t)t->n_vals + 1, sizeof *t->names);
    xv_status st = mine && t->names ? XV_OK : xv_error(XV_ERR_NOMEM, "trainer: out of memory");
    int n = 0;
    for (int k = 0; st == XV_OK && k < N_SRC; k++)
        for (int i = 0; st == XV_OK && i < t->src_len[k]; i++, n++) {
            const char *sn = t->src[k].state_name(t->src[k].ctx, i);
            if (!(t->names[n] = name_dup(src_prefix[k], sn ? sn : ""))) st = xv_error(XV_ERR_NOMEM, "out of memory");
            mine[n] = (xv_ckpt_counter){t->names[n], &t->src_vals[k][i]};
        }
    const xv_ckpt_rng streams[2] = {{"negatives", &t->neg}, {"dropout", xv_graph_rng(t->g)}};
    if (st == XV_OK) st = xv_rank_state_init(&t->ranks, mine, t->n_vals, streams, 2);
    free(mine);
    XV_TRY(st);
    const int world = xv_dist_world();
    t->n_counters = N_FIXED_COUNTERS + world * t->n_vals;
    t->n_rngs = 1 + world * 2;
    t->counters = calloc((size_t)t->n_counters, sizeof *t->counters);
    t->rngs = calloc((size_t)t->n_rngs, sizeof *t->rngs);
    if (!t->counters || !t->rngs) return xv_error(XV_ERR_NOMEM, "trainer: out of memory");
    for (int i = 0; i < N_FIXED_COUNTERS; i++) t->counters[i] = (xv_ckpt_counter){fixed_names[i], &t->fixed[i]};
    memcpy(t->counters + N_FIXED_COUNTERS, t->ranks.counters, sizeof *t->counters * (size_t)(world * t->n_vals));
    t->rngs[0] = (xv_ckpt_rng){"coin", &t->coin};
    memcpy(t->rngs + 1, t->ranks.rngs, sizeof *t->rngs * (size_t)(world * 2));
    return XV_OK;
}

xv_status xv_trainer_new(xv_model *model, const xv_trainer_config *cfg, const xv_batch_source *images,
                         const xv_batch_source *regions, const char *config_text, xv_trainer **out) {
    *out = NULL;
    if (!model || !cfg || !images || !images->next)
        return xv_error(XV_ERR_INVALID_ARG, "trainer: a model and an image-text batch source are required");
    if (!(cfg->iter_perc >= 0 && cfg->iter_perc <= 1))
        return xv_error(XV_ERR_INVALID_ARG, "trainer: iter_perc %g outside [0, 1]", cfg->iter_perc);
    if (cfg->iter_perc > 0 && (!regions || !regions->next))
        return xv_error(XV_ERR_INVALID_ARG, "trainer: iter_perc %g needs a region batch source", cfg->iter_perc);
    if (cfg->total_steps < 1 || cfg->steps_per_epoch < 1)
        return xv_error(XV_ERR_INVALID_ARG, "trainer: total_steps (%lld) and steps_per_epoch (%lld) must be >= 1",
                        (long long)cfg->total_steps, (long long)cfg->steps_per_epoch);
    if (model->mapped)
        return xv_error(XV_ERR_INVALID_ARG, "trainer: the model's weights are borrowed from a read-only file");
    const xv_model_parts *p = &model->parts;
    if (!p->mlm || !p->itc || !p->itm || (cfg->iter_perc > 0 && !p->bbox))
        return xv_error(XV_ERR_INVALID_ARG, "trainer: pretraining needs the MLM, ITC, ITM (and box) parts");

    xv_trainer *t = calloc(1, sizeof *t);
    if (!t) return xv_error(XV_ERR_NOMEM, "trainer: out of memory");
    t->m = model;
    t->cfg = *cfg;
    t->src[SRC_IMAGES] = *images;
    t->has_src[SRC_IMAGES] = true;
    if (regions && regions->next && cfg->iter_perc > 0) {
        t->src[SRC_REGIONS] = *regions;
        t->has_src[SRC_REGIONS] = true;
    }
    xv_status st = XV_OK;
    if (config_text && !(t->config_text = strdup(config_text))) st = xv_error(XV_ERR_NOMEM, "trainer: out of memory");
    if (st == XV_OK && !(t->g = xv_graph_new(0))) st = XV_ERR_NOMEM;
    if (st == XV_OK) {
        xv_init_params_spec spec = xv_init_params_pretrain_default();
        spec.fusion_layer = model->cfg.text.fusion_layer;
        spec.num_hidden_layers = model->cfg.text.layers;
        st = xv_init_params_build(&spec, &t->large);
    }
    if (st == XV_OK) st = xv_adamw_init(&t->opt, &model->params, &cfg->optim, &t->large);
    if (st == XV_OK) t->opt_ready = true;
    if (st == XV_OK) st = xv_schedule_init(&t->sched, cfg->total_steps, cfg->warmup, cfg->warmup_is_fraction);
    if (st == XV_OK) st = build_counters(t);
    if (st == XV_OK) st = xv_dist_broadcast_params(&model->params); /* the same initial weights on every rank */
    if (st != XV_OK) {
        xv_trainer_free(t);
        return st;
    }
    xv_rng root, own;
    xv_rng_seed(&root, cfg->seed);
    xv_rng_seed(&own, cfg->seed + (uint64_t)xv_dist_rank()); /* Pretrain.py seeds each rank with seed + rank */
    t->coin = xv_rng_split(&root, 1); /* the same on every rank: all take the same kind of update */
    t->neg = xv_rng_split(&own, 2);
    *xv_graph_rng(t->g) = xv_rng_split(&own, 3);
    xv_graph_set_training(t->g, true);
    xv_graph_set_free_used_grads(t->g, true); /* only parameter gradients are read after backward */
    xv_graph_set_grad(t->g, true);
    *out = t;
    return XV_OK;
}

void xv_trainer_free(xv_trainer *t) {
    if (!t) return;
    if (t->opt_ready) xv_adamw_free(&t->opt);
    xv_init_params_free(&t->large);
    xv_graph_free(t->g);
    for (int k = 0; k < N_SRC; k++) free(t->src_vals[k]);
    if (t->names)
        for (int i = 0; i < t->n_vals; i++) free(t->names[i]);
    free(t->names);
    xv_rank_state_free(&t->ranks);
    free(t->counters);
    free(t->rngs);
    free(t->config_text);
    free(t);
}

/* ---- one update ---- */

static double value_of(const xv_tensor *t) { return t ? (double)t->data[0] : 0.0; }

/* A region batch whose texts are all whole-image captions has no box to
 * regress: the official loss is 0/0 (NaN), which apex skips. */
static bool has_box_text(const xv_pretrain_batch *b) {
    for (int i = 0; i < b->n_texts; i++)
        if (!b->is_image || !b->is_image[i]) return true;
    return false;
}

/* *flag becomes true on every rank when it is true on any (a collective). */
static xv_status any_rank(bool *flag) {
    if (xv_dist_world() == 1) return XV_OK;
    int32_t v = *flag;
    XV_TRY(xv_dist_allreduce_max_i32(&v, 1));
    *flag = v != 0;
    return XV_OK;
}

static xv_status update(xv_trainer *t, bool region, xv_update_record *rec) {
    const double t0 = xv_monotonic_seconds(), c0 = xv_cpu_seconds();
    memset(rec, 0, sizeof *rec);
    rec->region = region;
    rec->step = t->step;
    rec->epoch = t->epoch;
    rec->grad_norm = NAN;
    const double factor = xv_schedule_factor(&t->sched);
    rec->lr = xv_adamw_group_lr(&t->opt, 0, factor);
    rec->lr_large = xv_adamw_group_lr(&t->opt, 2, factor);

    xv_batch_source *src = &t->src[region ? SRC_REGIONS : SRC_IMAGES];
    xv_pretrain_batch b;
    memset(&b, 0, sizeof b);
    xv_status st = src->next(src->ctx, &b);
    if (st != XV_OK) return xv_error_wrap(st, "trainer: next %s batch", region ? "region" : "image-text");
    rec->n_texts = b.n_texts;
    rec->n_images = b.n_images;
    /* A rank without a box skips for all (the official NaN would reach every
     * rank through the averaged gradients). */
    bool no_box = region && t->cfg.bbox_loss && !t->cfg.calc_image_bbox_loss && !has_box_text(&b);
    XV_TRY(any_rank(&no_box));
    if (no_box) {
        rec->loss_bbox = rec->loss_giou = rec->loss_total = NAN;
        rec->skipped = true;
        t->fixed[CNT_SKIPPED]++;
        rec->seconds = xv_monotonic_seconds() - t0;
        rec->cpu_seconds = xv_cpu_seconds() - c0;
        return XV_OK;
    }

    xv_graph *g = t->g;
    xv_graph_reset(g);
    xv_params_zero_grad(&t->m->params);
    if (t->cfg.calc_image_bbox_loss) b.is_image = NULL; /* as Pretrain.py passes is_image = None */
    if (!t->cfg.bbox_loss) { /* no box targets: no box losses */
        b.target_bbox = NULL;
        b.is_image = NULL;
    }
    const xv_itm_negatives neg = {.rng = &t->neg};
    xv_pretrain_out out;
    const double f0 = xv_monotonic_seconds(), fc0 = xv_cpu_seconds();
    st = xv_pretrain_forward(g, t->m, &b, &neg, &out);
    if (st != XV_OK) return xv_error_wrap(st, "trainer: step %lld forward", (long long)t->step);
    rec->forward_seconds = xv_monotonic_seconds() - f0;
    rec->forward_cpu_seconds = xv_cpu_seconds() - fc0;
    rec->loss_itc = value_of(out.loss_itc);
    rec->loss_itm = value_of(out.loss_itm);
    rec->loss_mlm = value_of(out.loss_mlm);
    rec->loss_bbox = value_of(out.loss_bbox);
    rec->loss_giou = value_of(out.loss_giou);
    rec->loss_total = value_of(out.loss_total);

    /* A non-finite loss on any rank skips the update on all of them (as its
     * NaN gradients, averaged, would under apex), agreed before the backward,
     * whose gradient all-reduces every rank must join. */
    bool bad_loss = !isfinite(rec->loss_total);
    XV_TRY(any_rank(&bad_loss));
    if (bad_loss) {
        rec->skipped = true;
    } else {
        /* DDP: (Σ over ranks) / world, each bucket reduced while the backward goes on */
        const double b0 = xv_monotonic_seconds(), bc0 = xv_cpu_seconds();
        st = xv_dist_backward_averaged(g, out.loss_total, &t->m->params);
        if (st != XV_OK) return xv_error_wrap(st, "trainer: step %lld backward", (long long)t->step);
        rec->backward_seconds = xv_monotonic_seconds() - b0;
        rec->backward_cpu_seconds = xv_cpu_seconds() - bc0;
        if (region) t->fixed[CNT_REGION_BACKWARDS]++;
        float scale = 1.0f; /* the clip's, applied in the optimiser's pass */
        if (t->cfg.clip_norm > 0) {
            st = xv_clip_scale(&t->m->params, t->cfg.clip_norm, &rec->grad_norm, &scale);
            if (st == XV_ERR_NUMERIC) rec->skipped = true;
            else if (st != XV_OK) return st;
        } else {
            rec->grad_norm = xv_grad_norm(&t->m->params);
            rec->skipped = !isfinite(rec->grad_norm);
        }
        if (!rec->skipped) XV_TRY(xv_adamw_step_scaled(&t->opt, factor, scale));
    }
    if (rec->skipped) {
        t->fixed[CNT_SKIPPED]++;
        xv_error_clear();
    }
    rec->seconds = xv_monotonic_seconds() - t0;
    rec->cpu_seconds = xv_cpu_seconds() - c0;
    return XV_OK;
}

xv_status xv_trainer_step(xv_trainer *t, xv_update_record rec[2], int *n) {
    *n = 0;
    /* The coin is drawn every step, whether or not regions are configured, so
     * the stream's position only depends on the step. */
    const bool region = xv_rng_uniform_double(&t->coin) < t->cfg.iter_perc && t->has_src[SRC_REGIONS];
    if (region) {
        XV_TRY(update(t, true, &rec[*n]));
        (*n)++;
    }
    XV_TRY(update(t, false, &rec[*n]));
    (*n)++;
    xv_schedule_step(&t->sched);
    t->step++;
    t->epoch = t->step / t->cfg.steps_per_epoch;
    return XV_OK;
}

int64_t xv_trainer_steps_done(const xv_trainer *t) { return t->step; }
int64_t xv_trainer_skipped(const xv_trainer *t) { return t->fixed[CNT_SKIPPED]; }
size_t xv_trainer_arena_peak(const xv_trainer *t) { return xv_graph_arena(t->g)->peak; }
size_t xv_trainer_grads_peak(const xv_trainer *t) { return xv_graph_grads_peak(t->g); }

/* ---- checkpoints ---- */

static xv_train_state train_state(xv_trainer *t) {
    xv_train_state s = {
        .params = &t->m->params,
        .opt = &t->opt,
        .sched = &t->sched,
        .step = &t->step,
        .epoch = &t->epoch,
        .counters = t->counters,
        .n_counters = t->n_counters,
        .rngs = t->rngs,
        .n_rngs = t->n_rngs,
        .config = t->config_text,
    };
    return s;
}

static xv_status save_sources(xv_trainer *t) {
    for (int k = 0; k < N_SRC; k++)
        if (t->src_len[k] > 0) {
            xv_status st = t->src[k].state_save(t->src[k].ctx, t->src_vals[k], t->src_len[k]);
            if (st != XV_OK) return xv_error_wrap(st, "trainer: saving the %s position", src_prefix[k]);
        }
    return XV_OK;
}

xv_status xv_trainer_save(xv_trainer *t, const char *dir, int keep_last, char *path_out, size_t cap) {
    XV_TRY(save_sources(t));
    XV_TRY(xv_rank_state_gather(&t->ranks));
    if (path_out && cap) path_out[0] = '\0';
    if (xv_dist_rank() != 0) return XV_OK; /* rank 0 alone writes */
    xv_train_state s = train_state(t);
    return xv_ckpt_save(dir, keep_last, &s, path_out, cap);
}

xv_status xv_trainer_write(xv_trainer *t, const char *path) {
    XV_TRY(save_sources(t));
    XV_TRY(xv_rank_state_gather(&t->ranks));
    if (xv_dist_rank() != 0) return XV_OK;
    xv_train_state s = train_state(t);
    return xv_ckpt_write(path, &s);
}

/* A parameter whose gradient buffer exists takes part in every later AdamW
 * step (with zeros when a step does not reach it), as PyTorch's zero_grad keeps
 * p.grad. Recreate the buffers the uninterrupted run would hold: those of
 * parameters already updated, and all of them once a region update (which
 * reaches every parameter) has run its backward. */
static xv_status restore_grad_buffers(xv_trainer *t) {
    const bool all = t->fixed[CNT_REGION_BACKWARDS] > 0;
    for (int i = 0; i < t->opt.n; i++) {
        xv_tensor *p = t->opt.slots[i].param;
        if ((all || t->opt.slots[i].step > 0) && !xv_grad(t->g, p)) return xv_graph_status(t->g);
    }
    return XV_OK;
}

xv_status xv_trainer_load(xv_trainer *t, const char *path) {
    xv_train_state s = train_state(t);
    XV_TRY(xv_ckpt_load(path, &s, NULL));
    xv_rank_state_pick(&t->ranks);
    for (int k = 0; k < N_SRC; k++)
        if (t->src_len[k] > 0) {
            xv_status st = t->src[k].state_restore(t->src[k].ctx, t->src_vals[k], t->src_len[k]);
            if (st != XV_OK) return xv_error_wrap(st, "%s: restoring the %s position", path, src_prefix[k]);
        }
    return restore_grad_buffers(t);
}
