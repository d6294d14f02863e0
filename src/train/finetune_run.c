/* The retrieval and grounding fine-tuning loops (finetune.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/caption.h"
#include "data/image.h"
#include "data/tokenizer.h"
#include "data/transforms.h"
#include "io/strindex.h"
#include "model/losses.h"
#include "model/model_folder.h"
#include "ops/ops.h"
#include "tasks/eval_data.h"
#include "tasks/eval_grounding.h"
#include "tasks/eval_retrieval.h"
#include "tasks/refer.h"
#include "train/adamw.h"
#include "train/finetune.h"
#include "train/schedule.h"

xv_finetune_opts xv_finetune_opts_default(void) {
    xv_finetune_opts o = {.output_dir = "output/finetune", .seed = 42, .eval_before = true, .progress = true};
    return o;
}

typedef struct {
    const xv_finetune_opts *o;
    xv_finetune_config cfg;
    xv_model *m;
    xv_tokenizer *tok;
    int res;
    bool rewindowed; /* loaded at another image_res than the initial model's */
    /* training samples: text, its image (index into images) and, for grounding, its box */
    int64_t n;
    char **texts;
    int32_t *img_of;
    double (*bbox)[4];
    int n_images;
    xv_image *images;
    xv_retrieval_set rset;
    xv_grounding_set gset;
    xv_refer refer; /* grounding with refcoco_data: the boxes and splits */
    int32_t *order;
    xv_rng data, aug, neg;
    xv_graph *g;
    xv_adamw opt;
    bool opt_ready;
    xv_lr_schedule sched;
    /* one batch */
    float *pixels, *target;
    int32_t *idx, *neg_img, *neg_txt;
    char **clean;
} ft;

/* Training entries, every train_file in order. Retrieval: {image, caption,
 * image_id}; entries of the same image file are one image (as image_id
 * groups them in the official files), so idx = the image's index. Grounding:
 * {image, text, ref_id} with the box from REFER (or {image, text, bbox}). */
static xv_status read_train(ft *f) {
    const char *const *files = (const char *const *)f->cfg.train_file.paths, *root = f->cfg.image_root;
    const int n_files = f->cfg.train_file.n;
    xv_status st;
    char **paths;
    int64_t n_paths;
    const int64_t *path_of;
    if (f->cfg.task == XV_FINETUNE_RETRIEVAL) {
        st = xv_retrieval_set_read_files(files, n_files, root, &f->rset);
        f->n = f->rset.n_texts, f->texts = f->rset.texts;
        paths = f->rset.image_paths, n_paths = f->rset.n_images, path_of = f->rset.txt2img;
    } else {
        st = xv_grounding_set_read_files(files, n_files, root, f->cfg.refcoco_data ? &f->refer : NULL, &f->gset);
        f->n = f->gset.n, f->texts = f->gset.texts, f->bbox = f->gset.bbox;
        paths = f->gset.image_paths, n_paths = f->gset.n_images, path_of = f->gset.image;
    }
    XV_TRY(st);
    if (f->n < f->cfg.batch_size)
        return xv_error(XV_ERR_INVALID_ARG, "%s: %lld entries, fewer than one batch of %d", files[0],
                        (long long)f->n, f->cfg.batch_size);
    /* distinct image files, decoded once */
    int32_t *uniq = malloc((size_t)n_paths * sizeof *uniq);
    f->img_of = malloc((size_t)f->n * sizeof *f->img_of);
    f->images = calloc((size_t)n_paths, sizeof *f->images);
    f->order = malloc((size_t)f->n * sizeof *f->order);
    xv_strindex seen = {0};
    st = uniq && f->img_of && f->images && f->order ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t p = 0; p < n_paths && st == XV_OK; p++) {
        int32_t k = xv_strindex_get(&seen, paths[p]);
        if (k < 0) {
            k = f->n_images;
            if (!xv_strindex_put(&seen, paths[p], k)) st = xv_error(XV_ERR_NOMEM, "out of memory");
            else if ((st = xv_image_load(paths[p], &f->images[k])) == XV_OK) f->n_images++;
        }
        uniq[p] = k;
    }
    for (int64_t i = 0; i < f->n && st == XV_OK; i++) {
        f->img_of[i] = uniq[path_of[i]];
        f->order[i] = (int32_t)i;
    }
    xv_strindex_free(&seen);
    free(uniq);
    return st;
}

/* The official fine-tuning configs change the resolution of the pretrained
 * model (224 -> 384 px, Swin window 7 -> 12): the window keeps its share of
 * the image, and the loader interpolates the relative-position tables. */
static xv_status rewindow(const ft *f, xv_model_config *mc) {
    const int from = mc->vision.image_res, to = f->cfg.image_res, w = mc->vision.window;
    if ((int64_t)w * to % from)
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s: image_res %d: the model's window %d at %d px does not scale to a whole window at %d px",
                        f->o->config_path, to, w, from, to);
    if (mc->vision.ape)
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s: image_res %d differs from the model's %d, and its absolute position embedding "
                        "(vision ape) is made for %d px",
                        f->o->config_path, to, from, from);
    mc->vision.image_res = to;
    mc->vision.window = (int)((int64_t)w * to / from);
    xv_status st = xv_config_validate(mc);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s: image_res %d", f->o->config_path, to);
}

/* The initial model at the config's image_res (the model's own when unset). */
static xv_status load_init(ft *f) {
    char *cpath = xv_fs_join(f->o->init_dir, "config.json"), *wpath = xv_fs_join(f->o->init_dir, "weights.safetensors");
    xv_model_config mc;
    xv_status st = cpath && wpath ? xv_config_load(cpath, &mc) : xv_error(XV_ERR_NOMEM, "out of memory");
    f->rewindowed = st == XV_OK && f->cfg.image_res && f->cfg.image_res != mc.vision.image_res;
    if (f->rewindowed) st = rewindow(f, &mc);
    if (st == XV_OK) st = xv_model_load(&mc, wpath, true, &f->m);
    free(cpath), free(wpath);
    return st;
}

static xv_status setup(ft *f, xv_finetune_task task) {
    const xv_finetune_opts *o = f->o;
    XV_TRY(xv_finetune_config_load(o->config_path, task, &f->cfg, o->notes));
    char *w = xv_fs_join(o->init_dir, "vocab.txt");
    if (!w) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_tokenizer_load(w, &f->tok);
    free(w);
    XV_TRY(st);
    XV_TRY(load_init(f));
    f->res = f->m->cfg.vision.image_res;
    const xv_model_parts *p = &f->m->parts;
    if (task == XV_FINETUNE_RETRIEVAL && (!p->itc || !p->itm))
        return xv_error(XV_ERR_INVALID_ARG, "%s: retrieval fine-tuning needs vision_proj/text_proj/temp and itm_head",
                        o->init_dir);
    if (task == XV_FINETUNE_GROUNDING && !p->bbox)
        return xv_error(XV_ERR_INVALID_ARG, "%s: grounding fine-tuning needs bbox_head", o->init_dir);
    /* REFER(config['refcoco_data'], 'refcoco+', 'unc'), as grounding_dataset_bbox */
    if (task == XV_FINETUNE_GROUNDING && f->cfg.refcoco_data)
        XV_TRY(xv_refer_load(f->cfg.refcoco_data, "refcoco+", "unc", &f->refer));
    XV_TRY(read_train(f));
    const int B = f->cfg.batch_size, R = f->res;
    f->pixels = malloc((size_t)B * 3 * R * R * sizeof *f->pixels);
    f->target = malloc((size_t)B * 4 * sizeof *f->target);
    f->idx = malloc((size_t)B * 3 * sizeof *f->idx);
    f->clean = calloc((size_t)B, sizeof *f->clean);
    if (!f->pixels || !f->target || !f->idx || !f->clean || !(f->g = xv_graph_new(0)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    f->neg_img = f->idx + B, f->neg_txt = f->idx + 2 * B;
    xv_rng root;
    xv_rng_seed(&root, o->seed);
    f->data = xv_rng_split(&root, 1);
    f->aug = xv_rng_split(&root, 2);
    f->neg = xv_rng_split(&root, 3);
    *xv_graph_rng(f->g) = xv_rng_split(&root, 4);
    xv_graph_set_training(f->g, true);
    xv_graph_set_free_used_grads(f->g, true); /* only parameter gradients are read after backward */
    xv_graph_set_grad(f->g, true);
    XV_TRY(xv_adamw_init(&f->opt, &f->m->params, &f->cfg.optim, NULL));
    f->opt_ready = true;
    /* the official train loaders drop the last partial batch */
    const int64_t per_epoch = f->n / B, total = per_epoch * f->cfg.epochs;
    return xv_schedule_init(&f->sched, total, f->cfg.warmup, f->cfg.warmup_is_fraction);
}

/* Images, texts and targets of batch number `b` of the epoch's order. */
static xv_status make_batch(ft *f, int64_t b, xv_text_batch *tb) {
    const int B = f->cfg.batch_size, R = f->res;
    const bool grounding = f->cfg.task == XV_FINETUNE_GROUNDING;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        const xv_image *im = &f->images[f->img_of[s]];
        float *px = f->pixels + (size_t)i * 3 * R * R;
        f->idx[i] = f->img_of[s];
        free(f->clean[i]);
        f->clean[i] = NULL;
        size_t len;
        XV_TRY(xv_pre_caption(f->texts[s], strlen(f->texts[s]), f->cfg.max_words, &f->clean[i], &len));
        if (!grounding) {
            XV_TRY(xv_transform_train(&f->aug, im, R, XV_TRAIN_FINETUNE, px));
            continue;
        }
        const xv_box box = {f->bbox[s][0], f->bbox[s][1], f->bbox[s][2], f->bbox[s][3]};
        const char *t = f->texts[s];
        const bool flip_ok = xv_flip_allowed(f->cfg.careful_hflip ? XV_FLIP_CAREFUL : XV_FLIP_ALWAYS_ALLOWED, &t, 1);
        xv_region_crop c;
        xv_status st = xv_region_crop_draw(&f->aug, im->width, im->height, box, flip_ok, R, &c);
        if (st != XV_OK) return xv_error_wrap(st, "train_file entry %d (ref_id %lld)", s, (long long)f->gset.ref_id[s]);
        xv_image crop = {0};
        xv_box mapped;
        XV_TRY(xv_region_crop_apply(im, &c, &crop));
        if (!xv_region_crop_box(&c, box, -1, &mapped)) {
            xv_image_free(&crop);
            return xv_error(XV_ERR_INVALID_ARG, "train_file entry %d: box outside its crop", s);
        }
        xv_box_target(&mapped, R, f->target + 4 * i);
        st = xv_transform_train(&f->aug, &crop, R, XV_TRAIN_BOX, px);
        xv_image_free(&crop);
        XV_TRY(st);
    }
    /* retrieval: cut at max_tokens; grounding: only the model's positions cap it */
    const int cap = grounding ? f->m->cfg.text.max_positions : f->cfg.max_tokens;
    xv_encode_opts eo = xv_encode_finetune(cap);
    return xv_encode_batch(f->tok, (const char *const *)f->clean, B, &eo, tb);
}

/* Forward + backward + AdamW of one batch; *loss gets its value. */
static xv_status train_step(ft *f, int64_t b, double *loss_out) {
    const int B = f->cfg.batch_size, R = f->res;
    xv_text_batch tb = {0};
    XV_TRY(make_batch(f, b, &tb));
    xv_graph *g = f->g;
    xv_graph_reset(g);
    xv_params_zero_grad(&f->m->params);
    xv_tensor *img = xv_tensor_wrap_f32(g, f->pixels, XV_SHAPE(B, 3, R, R));
    xv_tensor *ids = xv_tensor_wrap_i32(g, tb.ids, XV_SHAPE(B, tb.len));
    xv_tensor *atts = xv_tensor_wrap_i32(g, tb.atts, XV_SHAPE(B, tb.len));
    xv_tensor *ve = xv_model_vision(g, f->m, img, NULL);
    xv_tensor *te = xv_model_text(g, f->m, ids, atts, NULL);
    xv_tensor *loss = NULL;
    xv_status st = xv_graph_status(g);
    if (st == XV_OK && f->cfg.task == XV_FINETUNE_RETRIEVAL) {
        xv_tensor *idx = xv_tensor_wrap_i32(g, f->idx, XV_SHAPE(B));
        xv_tensor *sim = NULL;
        xv_tensor *itc = xv_itc_loss(g, f->m, xv_model_image_feat(g, f->m, ve), xv_model_text_feat(g, f->m, te), idx,
                                     &sim);
        st = xv_graph_status(g);
        if (st == XV_OK) st = xv_itm_sample_negatives(sim->data, B, f->idx, &f->neg, f->neg_img, f->neg_txt);
        if (st == XV_OK) {
            xv_tensor *ni = xv_tensor_wrap_i32(g, f->neg_img, XV_SHAPE(B));
            xv_tensor *nt = xv_tensor_wrap_i32(g, f->neg_txt, XV_SHAPE(B));
            loss = xv_add(g, itc, xv_itm_loss(g, f->m, ve, NULL, te, atts, ni, nt, NULL, NULL));
        }
    } else if (st == XV_OK) {
        xv_tensor *target = xv_tensor_wrap_f32(g, f->target, XV_SHAPE(B, 4));
        xv_tensor *giou = NULL;
        xv_tensor *l1 = xv_bbox_loss(g, xv_bbox_predict(g, f->m, ve, te, atts, NULL), target, NULL, &giou);
        loss = xv_add(g, l1, giou);
    }
    if (st == XV_OK) st = xv_graph_status(g);
    if (st == XV_OK) {
        *loss_out = loss->data[0];
        if (!isfinite(*loss_out)) st = xv_error(XV_ERR_NUMERIC, "fine-tuning: loss %g at step %lld", *loss_out,
                                                (long long)f->sched.pos);
    }
    if (st == XV_OK) st = xv_backward(g, loss);
    /* fp32 without clipping, as the official fine-tuning runs */
    if (st == XV_OK) st = xv_adamw_step(&f->opt, xv_schedule_factor(&f->sched));
    xv_schedule_step(&f->sched);
    xv_text_batch_free(&tb);
    return st;
}

/* DIR/{config.json, weights.safetensors, vocab.txt}: the input's layout and
 * parts (a pretraining-layout model stays one; a converted official
 * retrieval checkpoint keeps its `text_encoder.*` names). */
static xv_status write_model(ft *f, const char *dir) {
    char *vocab = xv_fs_join(f->o->init_dir, "vocab.txt");
    xv_status st = vocab ? xv_model_folder_write(dir, f->m, vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(vocab);
    return st;
}

/* Which evaluation: before training (zero-shot) or after. */
typedef struct {
    double *metric, *aux;
    xv_retrieval_result *val, *test;
    xv_grounding_splits *splits;
    const char *results_name; /* grounding: DIR/result/<name>.json */
} eval_into;

/* The model folder `dir` on val_file and test_file (Retrieval.py) or on
 * test_file by REFER split (Grounding_bbox.py). */
static xv_status evaluate(ft *f, const char *dir, const eval_into *e) {
    xvlm_model_params mp = xvlm_model_params_default();
    xvlm_model *mm = NULL;
    xvlm_ctx *ctx = NULL;
    const char *root = f->cfg.image_root;
    const xv_path_list *test = &f->cfg.test_file, *val = &f->cfg.val_file;
    xv_status st = xv_api_model_load(dir, &mp, &mm);
    if (st == XV_OK) st = xv_api_ctx_new(mm, &ctx);
    if (st == XV_OK && f->cfg.task == XV_FINETUNE_RETRIEVAL) {
        xv_eval_retrieval_result r;
        xv_eval_retrieval_opts eo = xv_eval_retrieval_opts_default();
        eo.k_test = f->cfg.k_test;
        eo.max_words = f->cfg.max_words;
        eo.max_tokens = f->cfg.max_tokens;
        if (val->n && (st = xv_eval_retrieval_files(ctx, (const char *const *)val->paths, val->n, root, &eo, &r)) ==
                          XV_OK) {
            *e->val = r.itm;
            xv_eval_retrieval_result_free(&r);
        }
        if (st == XV_OK &&
            (st = xv_eval_retrieval_files(ctx, (const char *const *)test->paths, test->n, root, &eo, &r)) == XV_OK) {
            *e->test = r.itm;
            *e->metric = r.itm.r_mean;
            *e->aux = r.itc.r_mean;
            xv_eval_retrieval_result_free(&r);
        }
    } else if (st == XV_OK) {
        xv_eval_grounding_result r;
        xv_eval_grounding_opts eo = xv_eval_grounding_opts_default();
        eo.max_words = f->cfg.max_words;
        char name[64], *rdir = xv_fs_join(f->o->output_dir, "result"), *rpath = NULL;
        snprintf(name, sizeof name, "%s.json", e->results_name);
        st = rdir && (rpath = xv_fs_join(rdir, name)) ? xv_fs_mkdir_p(rdir) : xv_error(XV_ERR_NOMEM, "out of memory");
        if (st == XV_OK)
            st = xv_eval_grounding_files(ctx, (const char *const *)test->paths, test->n, root,
                                         f->cfg.refcoco_data ? &f->refer : NULL, &eo, rpath, &r, e->splits);
        if (st == XV_OK) {
            *e->metric = r.accuracy;
            *e->aux = r.mean_iou;
            xv_eval_grounding_result_free(&r);
        }
        free(rdir), free(rpath);
    }
    xvlm_ctx_free(ctx);
    xvlm_model_free(mm);
    return st;
}

static void ft_free(ft *f) {
    for (int i = 0; f->clean && i < f->cfg.batch_size; i++) free(f->clean[i]);
    free(f->clean);
    free(f->pixels), free(f->target), free(f->idx), free(f->order), free(f->img_of);
    for (int i = 0; i < f->n_images; i++) xv_image_free(&f->images[i]);
    free(f->images);
    xv_retrieval_set_free(&f->rset);
    xv_grounding_set_free(&f->gset);
    xv_refer_free(&f->refer);
    if (f->opt_ready) xv_adamw_free(&f->opt);
    xv_graph_free(f->g);
    xv_model_free(f->m);
    xv_tokenizer_free(f->tok);
    xv_finetune_config_free(&f->cfg);
}

/* A number, or null when not evaluated (NaN is not JSON). */
static void put_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* itm_eval's dict (Retrieval.py). */
static cJSON *recall_dict(const xv_retrieval_result *r) {
    cJSON *o = cJSON_CreateObject();
    const double v[9] = {r->txt_r1, r->txt_r5, r->txt_r10, r->txt_r_mean, r->img_r1,
                         r->img_r5, r->img_r10, r->img_r_mean, r->r_mean};
    static const char *const k[9] = {"txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1",
                                     "img_r5", "img_r10", "img_r_mean", "r_mean"};
    for (int i = 0; o && i < 9; i++) put_num(o, k[i], v[i]);
    return o;
}

/* The official dicts of one evaluation: retrieval {"val": {...}, "test":
 * {...}}, grounding {"val_d", "testA_d", "testB_d"} (fractions). */
static cJSON *official_dicts(const ft *f, const xv_finetune_result *r, bool after) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (f->cfg.task == XV_FINETUNE_RETRIEVAL) {
        if (r->has_val) cJSON_AddItemToObject(o, "val", recall_dict(after ? &r->val_after : &r->val_before));
        cJSON_AddItemToObject(o, "test", recall_dict(after ? &r->test_after : &r->test_before));
    } else {
        const xv_grounding_splits *s = after ? &r->splits_after : &r->splits_before;
        put_num(o, "val_d", s->val_d);
        put_num(o, "testA_d", s->testA_d);
        put_num(o, "testB_d", s->testB_d);
        put_num(o, "score", s->score);
    }
    return o;
}

static xv_status write_result(const ft *f, const char *path, const xv_finetune_result *r) {
    const bool ret = f->cfg.task == XV_FINETUNE_RETRIEVAL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return xv_error(XV_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(o, "task", ret ? "retrieval" : "grounding");
    cJSON_AddNumberToObject(o, "steps", (double)r->steps);
    put_num(o, "loss_first", r->first_loss);
    put_num(o, "loss_last", r->last_loss);
    put_num(o, "seconds_train", r->seconds_train);
    put_num(o, ret ? "r_mean_before" : "accuracy_before", r->metric_before);
    put_num(o, ret ? "r_mean_after" : "accuracy_after", r->metric_after);
    put_num(o, ret ? "itc_r_mean_before" : "mean_iou_before", ret ? r->itc_r_mean_before : r->mean_iou_before);
    put_num(o, ret ? "itc_r_mean_after" : "mean_iou_after", ret ? r->itc_r_mean_after : r->mean_iou_after);
    if (isfinite(r->metric_before)) cJSON_AddItemToObject(o, "before", official_dicts(f, r, false));
    cJSON_AddItemToObject(o, "after", official_dicts(f, r, true));
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_fs_write_file(path, text, strlen(text), XV_FS_DURABLE);
    cJSON_free(text);
    return st;
}

static xv_status train(ft *f, xv_finetune_result *res) {
    const int B = f->cfg.batch_size;
    const int64_t per_epoch = f->n / B;
    int64_t total = f->sched.total_steps;
    if (f->o->max_steps > 0 && f->o->max_steps < total) total = f->o->max_steps;
    const int64_t window = total / 10 > 0 ? total / 10 : 1;
    double first = 0, last = 0;
    const double t0 = xv_monotonic_seconds();
    for (int64_t s = 0; s < total; s++) {
        if (s % per_epoch == 0) xv_rng_shuffle_i32(&f->data, f->order, f->n);
        double loss;
        XV_TRY(train_step(f, s % per_epoch, &loss));
        if (s < window) first += loss / (double)window;
        if (s >= total - window) last += loss / (double)window;
        if (f->o->progress && f->o->notes && (s % 10 == 0 || s + 1 == total))
            fprintf(f->o->notes, "step %lld/%lld loss %.4f lr %.3g temp %.4f\n", (long long)s + 1, (long long)total,
                    loss, xv_adamw_group_lr(&f->opt, 0, xv_schedule_lambda(&f->sched, f->sched.pos - 1)),
                    f->m->temp ? f->m->temp->data[0] : 0.0f);
    }
    res->steps = total;
    res->first_loss = first;
    res->last_loss = last;
    res->seconds_train = xv_monotonic_seconds() - t0;
    return XV_OK;
}

xv_status xv_finetune_run(xv_finetune_task task, const xv_finetune_opts *o, xv_finetune_result *res) {
    memset(res, 0, sizeof *res);
    res->metric_before = res->metric_after = NAN;
    res->itc_r_mean_before = res->itc_r_mean_after = res->mean_iou_before = res->mean_iou_after = NAN;
    if (!o->config_path || !o->init_dir || !o->output_dir)
        return xv_error(XV_ERR_INVALID_ARG, "fine-tuning: a config, an initial model and an output folder are needed");
    ft f;
    memset(&f, 0, sizeof f);
    char epoch_name[32] = "epoch0";
    f.o = o;
    char *model_dir = xv_fs_join(o->output_dir, "model"), *result_path = xv_fs_join(o->output_dir, "result.json");
    xv_status st = model_dir && result_path ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = setup(&f, task);
    res->has_val = st == XV_OK && f.cfg.val_file.n > 0;
    if (st == XV_OK) st = xv_fs_mkdir_p(o->output_dir);
    const bool ret = task == XV_FINETUNE_RETRIEVAL;
    eval_into into_before = {&res->metric_before, ret ? &res->itc_r_mean_before : &res->mean_iou_before,
                             &res->val_before, &res->test_before, &res->splits_before, "zero_shot"};
    eval_into into_after = {&res->metric_after, ret ? &res->itc_r_mean_after : &res->mean_iou_after,
                            &res->val_after, &res->test_after, &res->splits_after, epoch_name};
    /* zero-shot at the fine-tuning resolution: the initial model as loaded */
    const char *before = f.rewindowed ? model_dir : o->init_dir;
    if (st == XV_OK && o->eval_before && f.rewindowed) st = write_model(&f, model_dir);
    if (st == XV_OK && o->eval_before) st = evaluate(&f, before, &into_before);
    if (st == XV_OK) st = train(&f, res);
    if (st == XV_OK) st = write_model(&f, model_dir);
    /* collect_tensor_result's filename 'epoch%d': the last epoch trained */
    const int64_t per_epoch = st == XV_OK ? f.n / f.cfg.batch_size : 1;
    if (st == XV_OK) snprintf(epoch_name, sizeof epoch_name, "epoch%lld", (long long)((res->steps - 1) / per_epoch));
    if (st == XV_OK) st = evaluate(&f, model_dir, &into_after);
    if (st == XV_OK) st = write_result(&f, result_path, res);
    ft_free(&f);
    free(model_dir), free(result_path);
    return st;
}
