/* Fine-tuning data, model and one update (finetune_internal.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/caption.h"
#include "data/transforms.h"
#include "io/strindex.h"
#include "model/losses.h"
#include "model/model_folder.h"
#include "ops/ops.h"
#include "train/finetune_internal.h"

/* Training entries, every train_file in order (relative paths from the
 * working directory, image_root joined to each entry's image). Retrieval:
 * {image, caption, image_id}; entries of the same image file are one image
 * (as image_id groups them in the official files), so idx = the image's
 * index. Grounding: {image, text, ref_id} with the box from REFER (or
 * {image, text, bbox}, the VLUE format). */
static xv_status read_train(xv_ft *f) {
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
static xv_status rewindow(const xv_ft *f, xv_model_config *mc) {
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
static xv_status load_init(xv_ft *f) {
    char *cpath = xv_fs_join(f->o->init_dir, "config.json"), *wpath = xv_fs_join(f->o->init_dir, "weights.safetensors");
    xv_model_config mc;
    xv_status st = cpath && wpath ? xv_config_load(cpath, &mc) : xv_error(XV_ERR_NOMEM, "out of memory");
    f->rewindowed = st == XV_OK && f->cfg.image_res && f->cfg.image_res != mc.vision.image_res;
    if (f->rewindowed) st = rewindow(f, &mc);
    if (st == XV_OK) st = xv_model_load(&mc, wpath, true, &f->m);
    free(cpath), free(wpath);
    return st;
}

xv_status xv_ft_setup(xv_ft *f, xv_finetune_task task) {
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
    f->data = f->data_seed = xv_rng_split(&root, 1);
    f->aug = xv_rng_split(&root, 2);
    f->neg = xv_rng_split(&root, 3);
    *xv_graph_rng(f->g) = xv_rng_split(&root, 4);
    xv_graph_set_training(f->g, true);
    xv_graph_set_free_used_grads(f->g, true); /* only parameter gradients are read after backward */
    xv_graph_set_grad(f->g, true);
    XV_TRY(xv_adamw_init(&f->opt, &f->m->params, &f->cfg.optim, NULL));
    f->opt_ready = true;
    /* the official train loaders drop the last partial batch */
    f->steps_per_epoch = f->n / B;
    return xv_schedule_init(&f->sched, f->steps_per_epoch * f->cfg.epochs, f->cfg.warmup, f->cfg.warmup_is_fraction);
}

/* Images, texts and targets of batch number `b` of the epoch's order. */
static xv_status make_batch(xv_ft *f, int64_t b, xv_text_batch *tb) {
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

xv_status xv_ft_train_step(xv_ft *f, int64_t b, xv_ft_losses *out) {
    const int B = f->cfg.batch_size, R = f->res;
    *out = (xv_ft_losses){NAN, NAN, NAN, NAN, NAN};
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
            xv_tensor *itm = xv_itm_loss(g, f->m, ve, NULL, te, atts, ni, nt, NULL, NULL);
            loss = xv_add(g, itc, itm);
            if ((st = xv_graph_status(g)) == XV_OK) out->itc = itc->data[0], out->itm = itm->data[0];
        }
    } else if (st == XV_OK) {
        xv_tensor *target = xv_tensor_wrap_f32(g, f->target, XV_SHAPE(B, 4));
        xv_tensor *giou = NULL;
        xv_tensor *l1 = xv_bbox_loss(g, xv_bbox_predict(g, f->m, ve, te, atts, NULL), target, NULL, &giou);
        loss = xv_add(g, l1, giou);
        if ((st = xv_graph_status(g)) == XV_OK) out->bbox = l1->data[0], out->giou = giou->data[0];
    }
    if (st == XV_OK) st = xv_graph_status(g);
    if (st == XV_OK) {
        out->total = loss->data[0];
        if (!isfinite(out->total))
            st = xv_error(XV_ERR_NUMERIC, "fine-tuning: loss %g at step %lld", out->total, (long long)f->sched.pos);
    }
    if (st == XV_OK) st = xv_backward(g, loss);
    /* fp32 without clipping, as the official fine-tuning runs */
    if (st == XV_OK) st = xv_adamw_step(&f->opt, xv_schedule_factor(&f->sched));
    xv_schedule_step(&f->sched);
    xv_text_batch_free(&tb);
    return st;
}

/* DIR as a model folder (model/model_folder.h) with the input's layout and
 * parts (a pretraining-layout model stays one; a converted official
 * retrieval checkpoint keeps its `text_encoder.*` names). */
xv_status xv_ft_write_model(const xv_ft *f, const char *dir) {
    char *vocab = xv_fs_join(f->o->init_dir, "vocab.txt");
    xv_status st = vocab ? xv_model_folder_write(dir, f->m, vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(vocab);
    return st;
}

void xv_ft_free(xv_ft *f) {
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

