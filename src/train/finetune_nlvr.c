/* NLVR2 fine-tuning, as the official NLVR.py with models/model_nlvr.py
 * (shared/docs/xvlm-nlvr-grounding.md §1.5-1.6), behind finetune_task.h.
 *
 * Config: configs/NLVR.yaml's keys (train_file, val_file = dev, test_file,
 * image_root, image_res, batch_size, max_words, optimizer, schedular).
 * Data: JSON lists of {images: [left, right], sentence, label "True"/"False"}.
 * Start: an NLVR2 model folder (cls_head) as it is, the text-assignment
 * model of `finetune nlvr_pretrain` as NLVR.py loads the domain-pretrained
 * checkpoint (xv_nlvr_from_ta), or a pretraining one converted as NLVR.py's
 * load_pretrained does (xv_nlvr_from_pretrained); cls_head drawn from --seed.
 * Training: both images of a statement drawn independently through the
 * fine-tuning transform (no left/right swap), the statement pre_caption'd
 * and tokenized without a cut, cross-entropy over cls_head ("loss").
 * Evaluation: accuracy (mean of argmax == label, Resize test transform) on
 * dev (val_acc) and test (test_acc); the best epoch has the best dev
 * accuracy (test without a dev file), as NLVR.py keeps checkpoint_best.pth. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "data/transforms.h"
#include "model/model_source.h"
#include "model/nlvr.h"
#include "tasks/eval_data.h"
#include "train/finetune_task.h"

/* An evaluation split: its statements and their images, decoded once. */
typedef struct {
    xv_nlvr_set set;
    xv_image *images; /* [set.n_images] */
} split;

typedef struct {
    xv_nlvr_set train; /* its images live in b.images (b.img_of: 2 per statement, left then right) */
    split dev, test;
    xv_ft_batch b;     /* b.pixels holds 2B images: every left one, then every right one */
    int32_t *targets;  /* [batch] */
} nlvr;

static void split_free(split *s) {
    for (int64_t i = 0; s->images && i < s->set.n_images; i++) xv_image_free(&s->images[i]);
    free(s->images);
    xv_nlvr_set_free(&s->set);
}

static xv_status split_read(const xv_path_list *files, const xv_fs_root *images, split *s) {
    if (!files->n) return XV_OK;
    XV_TRY(xv_nlvr_set_read_files((const char *const *)files->paths, files->n, images, &s->set));
    if (!(s->images = calloc((size_t)s->set.n_images, sizeof *s->images)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < s->set.n_images; i++) XV_TRY(xv_image_load(s->set.image_paths[i], &s->images[i]));
    return XV_OK;
}

xv_status xv_ft_init_paired(xv_ft *f, bool to_nlvr) {
    const xv_model_parts *p = &f->m->parts;
    if (to_nlvr ? p->nlvr : p->ta) return XV_OK;
    xv_model *m;
    if (to_nlvr && p->ta) { /* the domain-pretrained checkpoint, loaded as it is (load_nlvr_pretrain) */
        XV_TRY(xv_nlvr_from_ta(f->m, f->o->seed, &m));
    } else if (xv_model_paired(p)) {
        return xv_error(XV_ERR_INVALID_ARG, "%s: an NLVR2 model (cls_head): text assignment starts from a "
                        "pretraining model", f->o->init);
    } else { /* a pretraining model, converted as load_pretrained does */
        xv_model_config mc;
        char weights[4200];
        XV_TRY(xv_model_locate(f->o->init, &f->o->infer, &mc, weights, sizeof weights));
        if (mc.vision.image_res != f->m->cfg.vision.image_res)
            return xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d differs from the pretraining model's %d: convert it "
                            "with `xvlm convert --nlvr` at that resolution first", f->o->config_path, f->cfg.image_res,
                            mc.vision.image_res);
        XV_TRY((to_nlvr ? xv_nlvr_from_pretrained : xv_ta_from_pretrained)(&f->m->cfg, weights, f->o->seed, &m));
    }
    xv_model_free(f->m);
    f->m = m;
    f->params = &m->params;
    return XV_OK;
}

/* The task state with dev and test read (train: the caller's). */
static xv_status state_new(xv_ft *f, nlvr **out) {
    nlvr *t = calloc(1, sizeof *t);
    if (!(*out = f->task_state = t)) return xv_error(XV_ERR_NOMEM, "out of memory");
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    XV_TRY(split_read(&f->cfg.val_file, &images, &t->dev));
    return split_read(&f->cfg.test_file, &images, &t->test);
}

/* Pixels for 2B images (xv_ft_batch_init allocated B) and the B targets. */
static xv_status pair_buffers(xv_ft *f, nlvr *t) {
    const size_t img = (size_t)3 * f->res * f->res, B = (size_t)f->cfg.batch_size;
    float *pixels = realloc(t->b.pixels, 2 * B * img * sizeof *pixels);
    if (pixels) t->b.pixels = pixels;
    if (!pixels || !(t->targets = malloc(B * sizeof *t->targets))) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static xv_status setup(xv_ft *f) {
    XV_TRY(xv_ft_init_paired(f, true));
    nlvr *t;
    XV_TRY(state_new(f, &t));
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    XV_TRY(xv_nlvr_set_read_files((const char *const *)f->cfg.train_file.paths, f->cfg.train_file.n, &images,
                                  &t->train));
    f->n = t->train.n;
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    XV_TRY(xv_ft_batch_init(&t->b, f, t->train.image_paths, t->train.n_images, &t->train.pair[0][0], 2 * f->n));
    return pair_buffers(f, t);
}

/* `xvlm evaluate nlvr`: no training set, so setup did not run; an NLVR2
 * model is required (a converted pretraining model has a random cls_head). */
static xv_status eval_only_setup(xv_ft *f) {
    if (!f->m->parts.nlvr)
        return xv_error(XV_ERR_INVALID_ARG, "%s: not an NLVR2 model (no cls_head): evaluate the model/ or model_best/ "
                        "of `xvlm finetune nlvr`", f->o->init);
    nlvr *t;
    XV_TRY(state_new(f, &t));
    t->b.batch = f->cfg.batch_size, t->b.res = f->res;
    if (!(t->b.clean = calloc((size_t)f->cfg.batch_size, sizeof *t->b.clean)) || !(f->g = xv_graph_new(0)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    return pair_buffers(f, t);
}

static void task_free(xv_ft *f) {
    nlvr *t = f->task_state;
    if (!t) return;
    xv_nlvr_set_free(&t->train);
    split_free(&t->dev);
    split_free(&t->test);
    xv_ft_batch_free(&t->b);
    free(t->targets);
    free(t);
    f->task_state = NULL;
}

/* Statements rows[0 .. n) of `set` (images[k][i]: the image of side k of
 * statement i) into the batch; train: the random transform, else the test one. */
static xv_status make_batch(xv_ft *f, nlvr *t, const xv_nlvr_set *set, const xv_image *const *sides[2],
                            const int32_t *rows, int n, bool train) {
    const int R = f->res;
    const size_t img = (size_t)3 * R * R;
    for (int i = 0; i < n; i++) {
        const int32_t r = rows[i];
        for (int k = 0; k < 2; k++) {
            const xv_image *im = sides[k][i];
            float *px = t->b.pixels + ((size_t)k * (size_t)n + (size_t)i) * img;
            XV_TRY(train ? xv_transform_train(&f->aug, im, R, XV_TRAIN_FINETUNE, px) : xv_transform_test(im, R, px));
        }
        t->targets[i] = set->label[r];
        xv_status st = xv_ft_batch_caption(&t->b, f, i, set->sentences[r]);
        if (st != XV_OK) return xv_error_wrap(st, "statement %d (\"%.60s\")", r, set->sentences[r]);
    }
    t->b.batch = n; /* the last evaluation batch may be short */
    xv_status st = xv_ft_batch_encode(&t->b, f, 0); /* NLVR.py cuts no token */
    t->b.batch = f->cfg.batch_size;
    return st;
}

/* The NLVR forward of the made batch of n statements on f->g. */
static xv_status forward(xv_ft *f, nlvr *t, int n, xv_nlvr_out *out) {
    const int R = f->res;
    xv_graph *g = f->g;
    const xv_text_batch *tb = &t->b.tb;
    xv_nlvr_batch nb = {
        .images = xv_tensor_wrap_f32(g, t->b.pixels, XV_SHAPE(2 * n, 3, R, R)),
        .text_ids = xv_tensor_wrap_i32(g, tb->ids, XV_SHAPE(n, tb->len)),
        .text_atts = xv_tensor_wrap_i32(g, tb->atts, XV_SHAPE(n, tb->len)),
        .targets = xv_tensor_wrap_i32(g, t->targets, XV_SHAPE(n)),
    };
    XV_TRY(xv_graph_status(g));
    return xv_nlvr_forward(g, f->m, &nb, out);
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    nlvr *t = f->task_state;
    const int B = f->cfg.batch_size;
    const int32_t *rows = f->order + b * B;
    const xv_image *left[B], *right[B];
    for (int i = 0; i < B; i++) {
        left[i] = &t->b.images[t->b.img_of[2 * rows[i]]];
        right[i] = &t->b.images[t->b.img_of[2 * rows[i] + 1]];
    }
    const xv_image *const *sides[2] = {left, right};
    XV_TRY(make_batch(f, t, &t->train, sides, rows, B, true));
    xv_nlvr_out o;
    XV_TRY(forward(f, t, B, &o));
    *out = o.loss;
    rec->region = false; /* an image-text update whose only loss is the total */
    term[0] = o.loss->data[0];
    return XV_OK;
}

/* Accuracy on a split, NLVR.py's evaluate: no dropout, batches in order of
 * this rank's share (DistributedSampler's, dist.h: under mpirun each rank
 * scores every world-th statement); every rank gets every statement's hit.
 * The padding's repeats are dropped, so the accuracy is one process's (the
 * official MetricLogger counts them). */
static xv_status accuracy(xv_ft *f, nlvr *t, const split *s, double *acc) {
    *acc = NAN;
    if (!s->set.n) return XV_OK;
    const int B = f->cfg.batch_size;
    const int64_t m = xv_dist_shard_size(s->set.n);
    int32_t rows[B];
    const xv_image *left[B], *right[B];
    const xv_image *const *sides[2] = {left, right};
    uint8_t *mine = malloc((size_t)m), *all = malloc((size_t)s->set.n);
    xv_status st = mine && all ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t first = 0; first < m && st == XV_OK; first += B) {
        const int n = m - first < B ? (int)(m - first) : B;
        for (int i = 0; i < n; i++) {
            const int64_t r = xv_dist_shard_sample(s->set.n, first + i);
            rows[i] = (int32_t)r;
            left[i] = &s->images[s->set.pair[r][0]];
            right[i] = &s->images[s->set.pair[r][1]];
        }
        st = make_batch(f, t, &s->set, sides, rows, n, false);
        xv_graph_reset(f->g);
        xv_nlvr_out o;
        if (st == XV_OK) st = forward(f, t, n, &o);
        for (int i = 0; st == XV_OK && i < n; i++) mine[first + i] = o.pred_class->idata[i] == t->targets[i];
    }
    if (st == XV_OK) st = xv_dist_gather_shards(mine, 1, s->set.n, all);
    int64_t hits = 0;
    for (int64_t i = 0; st == XV_OK && i < s->set.n; i++) hits += all[i];
    free(mine), free(all);
    if (st == XV_OK) *acc = (double)hits / (double)s->set.n;
    return st;
}

/* dev and test accuracy on the loop's graph in evaluation mode (the fusion
 * pass pairs two images per statement, which the API's text sets do not
 * batch); the loop's training mode is restored after. */
static xv_status evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    (void)ctx, (void)results_name;
    if (!f->task_state) XV_TRY(eval_only_setup(f));
    nlvr *t = f->task_state;
    xv_graph *g = f->g;
    xv_graph_set_training(g, false);
    xv_graph_set_grad(g, false);
    double dev = NAN, test = NAN;
    xv_status st = accuracy(f, t, &t->dev, &dev);
    if (st == XV_OK) st = accuracy(f, t, &t->test, &test);
    xv_graph_reset(g);
    xv_graph_set_training(g, true);
    xv_graph_set_grad(g, true);
    XV_TRY(st);
    if (t->dev.set.n) xv_ft_scores_put(out, "val", "acc", dev);
    xv_ft_scores_put(out, "test", "acc", test);
    out->metric = test, out->aux = dev;
    cJSON *d = cJSON_CreateObject(), *v = cJSON_CreateObject(), *s = cJSON_CreateObject();
    if (!d || !v || !s) {
        cJSON_Delete(d), cJSON_Delete(v), cJSON_Delete(s);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    xv_ft_json_num(v, "acc", dev);
    xv_ft_json_num(s, "acc", test);
    cJSON_AddItemToObject(d, "val", v);
    cJSON_AddItemToObject(d, "test", s);
    return xv_ft_scores_set_official(out, d);
}

const xv_finetune_task xv_ft_nlvr = {
    .name = "nlvr",
    .batch_key = "batch_size",
    .reads_val_file = true,
    .n_terms = 1,
    .terms = {"loss"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = evaluate,
    .selection = {"val_acc", "test_acc"},
    .selection_digits = 4,
    .metric_key = "test_acc",
    .aux_key = "val_acc",
    .metric_label = "test accuracy",
    .print_scores = xv_ft_print_scores,
};
