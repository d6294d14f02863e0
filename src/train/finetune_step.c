/* The fine-tuning run's model, optimizer, random streams and one update,
 * around the task's hooks (finetune_task.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/caption.h"
#include "dist/dist.h"
#include "io/strindex.h"
#include "model/model_folder.h"
#include "model/model_source.h"
#include "train/clip.h"
#include "train/finetune_task.h"

xv_status xv_ft_batch_init(xv_ft_batch *b, const xv_ft *f, char *const *paths, int64_t n_paths,
                           const int64_t *path_of, int64_t n) {
    const int B = f->cfg.batch_size, R = f->res;
    b->batch = B, b->res = R;
    int32_t *uniq = malloc((size_t)n_paths * sizeof *uniq);
    b->img_of = malloc((size_t)n * sizeof *b->img_of);
    b->images = calloc((size_t)n_paths, sizeof *b->images);
    b->pixels = malloc((size_t)B * 3 * R * R * sizeof *b->pixels);
    b->clean = calloc((size_t)B, sizeof *b->clean);
    xv_strindex seen = {0};
    xv_status st = uniq && b->img_of && b->images && b->pixels && b->clean ? XV_OK
                                                                          : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t p = 0; p < n_paths && st == XV_OK; p++) {
        int32_t k = xv_strindex_get(&seen, paths[p]);
        if (k < 0) {
            k = b->n_images;
            if (!xv_strindex_put(&seen, paths[p], k)) st = xv_error(XV_ERR_NOMEM, "out of memory");
            else if ((st = xv_image_load(paths[p], &b->images[k])) == XV_OK) b->n_images++;
        }
        uniq[p] = k;
    }
    for (int64_t i = 0; i < n && st == XV_OK; i++) b->img_of[i] = uniq[path_of[i]];
    xv_strindex_free(&seen);
    free(uniq);
    return st;
}

xv_status xv_ft_batch_caption(xv_ft_batch *b, const xv_ft *f, int i, const char *text) {
    free(b->clean[i]);
    b->clean[i] = NULL;
    size_t len;
    return xv_pre_caption(text, strlen(text), f->cfg.max_words, &b->clean[i], &len);
}

xv_status xv_ft_batch_encode(xv_ft_batch *b, const xv_ft *f, int max_tokens) {
    xv_text_batch_free(&b->tb);
    xv_encode_opts eo = xv_encode_finetune(max_tokens ? max_tokens : f->m->cfg.text.max_positions);
    return xv_encode_batch(f->tok, (const char *const *)b->clean, b->batch, &eo, &b->tb);
}

xv_status xv_ft_batch_encoders(const xv_ft_batch *b, xv_ft *f, xv_tensor **ve, xv_tensor **te, xv_tensor **atts) {
    xv_graph *g = f->g;
    const int B = b->batch, R = b->res;
    xv_tensor *img = xv_tensor_wrap_f32(g, b->pixels, XV_SHAPE(B, 3, R, R));
    xv_tensor *ids = xv_tensor_wrap_i32(g, b->tb.ids, XV_SHAPE(B, b->tb.len));
    *atts = xv_tensor_wrap_i32(g, b->tb.atts, XV_SHAPE(B, b->tb.len));
    *ve = xv_model_vision(g, f->m, img, NULL);
    *te = xv_model_text(g, f->m, ids, *atts, NULL);
    return xv_graph_status(g);
}

void xv_ft_batch_free(xv_ft_batch *b) {
    for (int i = 0; b->clean && i < b->batch; i++) free(b->clean[i]);
    free(b->clean);
    free(b->pixels), free(b->img_of);
    for (int i = 0; i < b->n_images; i++) xv_image_free(&b->images[i]);
    free(b->images);
    xv_text_batch_free(&b->tb);
    memset(b, 0, sizeof *b);
}

xv_status xv_ft_open_vocab(xv_ft *f, const char *arg, const char *vocab) {
    /* the model's own vocabulary, else the YAML's text_encoder/vocab.txt (BertTokenizer.from_pretrained) */
    xv_status vs = xv_model_vocab_find(arg, vocab, &f->vocab);
    if (vs == XV_ERR_MISSING && !vocab && f->cfg.text_encoder) {
        char *te = xv_fs_join(f->cfg.text_encoder, "vocab.txt");
        vs = te ? xv_model_vocab_find(arg, te, &f->vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
        free(te);
    }
    XV_TRY(vs);
    return xv_tokenizer_from_memory(f->vocab.text, f->vocab.len, f->vocab.origin, &f->tok);
}

xv_status xv_ft_open_model(xv_ft *f, const char *arg, const char *vocab) {
    XV_TRY(xv_ft_open_vocab(f, arg, vocab));
    xv_model_config mc;
    char weights[4200];
    XV_TRY(xv_model_locate(arg, &f->o->infer, &mc, weights, sizeof weights));
    xv_status st = xv_config_rescale(&mc, f->cfg.image_res);
    if (st != XV_OK) return xv_error_wrap(st, "%s", f->o->config_path);
    XV_TRY(xv_model_load(&mc, weights, true, &f->m));
    f->res = f->m->cfg.vision.image_res;
    return XV_OK;
}

xv_status xv_ft_setup(xv_ft *f, const char *task) {
    const xv_finetune_opts *o = f->o;
    XV_TRY(xv_finetune_config_load(o->config_path, task, &f->cfg, o->notes));
    f->task = f->cfg.task;
    if (f->task->open_model) { /* a task with its own model (VQA, captioning): a model folder */
        XV_TRY(xv_ft_open_vocab(f, o->init, NULL));
        XV_TRY(f->task->open_model(f));
    } else {
        XV_TRY(xv_ft_open_model(f, o->init, NULL));
        f->params = &f->m->params;
    }
    XV_TRY(f->task->setup(f));
    const int B = f->cfg.batch_size, world = xv_dist_world();
    f->n_mine = (f->n + world - 1) / world; /* DistributedSampler: ceil(n / world) samples per rank */
    if (f->n_mine < B) {
        char per_rank[80] = "";
        if (world > 1) snprintf(per_rank, sizeof per_rank, ", %lld per rank over %d ranks", (long long)f->n_mine, world);
        return xv_error(XV_ERR_INVALID_ARG, "%s: %lld entries%s, fewer than one batch of %d", f->cfg.train_file.paths[0],
                        (long long)f->n, per_rank, B);
    }
    if (!(f->perm = malloc((size_t)f->n * sizeof *f->perm)) || !(f->order = malloc((size_t)f->n_mine * sizeof *f->order)) ||
        !(f->g = xv_graph_new(0)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < f->n; i++) f->perm[i] = (int32_t)i;
    xv_rng root, own;
    xv_rng_seed(&root, o->seed);
    xv_rng_seed(&own, o->seed + (uint64_t)xv_dist_rank()); /* the official scripts seed rank r with seed + r */
    f->data = f->data_seed = xv_rng_split(&root, 1);     /* the same order on every rank (the sampler's) */
    f->aug = xv_rng_split(&own, 2);
    f->neg = xv_rng_split(&own, 3);
    *xv_graph_rng(f->g) = xv_rng_split(&own, 4);
    xv_graph_set_training(f->g, true);
    xv_graph_set_free_used_grads(f->g, true); /* only parameter gradients are read after backward */
    xv_graph_set_grad(f->g, true);
    XV_TRY(xv_dist_broadcast_params(f->params)); /* the same initial weights on every rank */
    XV_TRY(xv_adamw_init(&f->opt, f->params, &f->cfg.optim, &f->large_lr));
    f->opt_ready = true;
    /* the official train loaders drop the last partial batch */
    f->steps_per_epoch = f->n_mine / B;
    /* Captioning_scst.py: num_training_steps in all, evaluated every eval_steps */
    const int64_t total = f->cfg.num_training_steps ? f->cfg.num_training_steps : f->steps_per_epoch * f->cfg.epochs;
    f->total_steps = total;
    f->eval_every = f->cfg.eval_steps ? f->cfg.eval_steps : f->steps_per_epoch;
    if (f->cfg.num_training_steps) f->cfg.epochs = (int)xv_ft_rounds_through(f, total);
    return xv_schedule_init(&f->sched, total, f->cfg.warmup, f->cfg.warmup_is_fraction);
}

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        const int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

int64_t xv_ft_rounds_through(const xv_ft *f, int64_t step) {
    const int64_t e = f->eval_every, s = f->steps_per_epoch;
    const int64_t both = e / gcd64(e, s) * s; /* lcm: steps that end a round twice count once */
    int64_t n = step / e + step / s - step / both;
    if (step >= f->total_steps && f->total_steps % e && f->total_steps % s) n++; /* the last, partial round */
    return n;
}

void xv_ft_shuffle(xv_ft *f) {
    xv_rng_shuffle_i32(&f->data, f->perm, f->n);
    const int64_t world = xv_dist_world(), rank = xv_dist_rank();
    for (int64_t k = 0; k < f->n_mine; k++) f->order[k] = f->perm[(rank + k * world) % f->n];
}

xv_status xv_ft_train_step(xv_ft *f, int64_t b, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    for (int k = 0; k < XV_FT_MAX_TERMS; k++) term[k] = NAN;
    rec->loss_itc = rec->loss_itm = rec->loss_mlm = rec->loss_bbox = rec->loss_giou = rec->loss_total = NAN;
    xv_graph *g = f->g;
    xv_graph_reset(g);
    xv_params_zero_grad(f->params);
    xv_tensor *loss = NULL;
    xv_status st = f->task->loss(f, b, &loss, term, rec);
    if (st == XV_OK) st = xv_graph_status(g);
    if (st == XV_OK) {
        rec->loss_total = loss->data[0];
        if (!isfinite(rec->loss_total))
            st = xv_error(XV_ERR_NUMERIC, "fine-tuning: loss %g at step %lld", rec->loss_total,
                          (long long)f->sched.pos);
    }
    /* DDP: (Σ over ranks) / world, each bucket reduced while the backward goes on */
    if (st == XV_OK) st = xv_dist_backward_averaged(g, loss, f->params);
    /* fp32; clipped only where the official stage clips (the apex pretraining stages) */
    rec->grad_norm = NAN;
    float scale = 1.0f; /* the clip's, applied in the optimiser's pass */
    if (st == XV_OK && f->cfg.clip_grad_norm > 0)
        st = xv_clip_scale(f->params, f->cfg.clip_grad_norm, &rec->grad_norm, &scale);
    if (st == XV_OK) st = xv_adamw_step_scaled(&f->opt, xv_schedule_factor(&f->sched), scale);
    xv_schedule_step(&f->sched);
    return st;
}

/* DIR as a model folder (model/model_folder.h) with the input's layout and
 * parts (a pretraining-layout model stays one; a converted official
 * retrieval checkpoint keeps its `text_encoder.*` names). */
xv_status xv_ft_write_model(const xv_ft *f, const char *dir) {
    if (f->task->write_model) return f->task->write_model(f, dir);
    return xv_model_write(dir, f->m, &f->vocab);
}

void xv_ft_free(xv_ft *f) {
    if (f->task && f->task->free) f->task->free(f);
    free(f->perm), free(f->order);
    if (f->opt_ready) xv_adamw_free(&f->opt);
    xv_graph_free(f->g);
    xv_model_free(f->m);
    if (f->task && f->task->free_model) f->task->free_model(f);
    xv_init_params_free(&f->large_lr);
    xv_tokenizer_free(f->tok);
    xv_model_vocab_free(&f->vocab);
    xv_finetune_config_free(&f->cfg);
}

