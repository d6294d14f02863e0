#include "train/pretrain_run_config.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "nn/swin_config.h"
#include "train/schedule.h"

#define BIG 1000000000 /* upper bound of counts */
#define MAX_BATCH 65536 /* batch_size: beyond this a run cannot allocate its activations */

/* ---- the model ---- */

static xv_status read_model(const char *path, const xv_yaml_node *root, xv_model_config *m) {
    const xv_yaml_node *mc = xv_yaml_get(root, "model_config");
    if (!mc) {
        if (!xv_yaml_get(root, "vision_config") || !xv_yaml_get(root, "text_config"))
            return xv_error(XV_ERR_MISSING,
                            "%s: no model: give vision_config + text_config (official JSON files) or model_config",
                            path);
        return xv_config_load(path, m); /* the official layout, read by model/config.h */
    }
    if (mc->kind == XV_YAML_STRING) {
        char *p = NULL;
        XV_TRY(xv_yaml_find_file(path, mc->text, &p));
        xv_status st = xv_config_load(p, m);
        free(p);
        if (st != XV_OK) return xv_error_wrap(st, "%s:%d: model_config", path, mc->line);
    } else if (mc->kind == XV_YAML_MAP) {
        char *json = xv_yaml_to_json(mc);
        if (!json) return xv_error(XV_ERR_NOMEM, "out of memory");
        char label[512];
        snprintf(label, sizeof label, "%s:%d: model_config", path, mc->line);
        xv_status st = xv_config_parse_json(json, label, m);
        free(json);
        XV_TRY(st);
    } else {
        return xv_yaml_type_error(mc, "a config.json path or a mapping");
    }
    /* The YAML's own model keys must agree with (or refine) the model config. */
    int image_res = m->vision.image_res, patch = m->vision.region_stride;
    XV_TRY(xv_yaml_get_int(root, "image_res", 1, XV_SWIN_MAX_IMAGE_RES, &image_res));
    XV_TRY(xv_yaml_get_int(root, "patch_size", 1, BIG, &patch));
    if (image_res != m->vision.image_res || patch != m->vision.region_stride)
        return xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d / patch_size %d differ from model_config's %d / %d",
                        path, image_res, patch, m->vision.image_res, m->vision.region_stride);
    XV_TRY(xv_yaml_get_int(root, "embed_dim", 1, 1 << 16, &m->embed_dim));
    double temp = m->temp;
    XV_TRY(xv_yaml_get_double(root, "temp", 1e-6, 10, &temp));
    m->temp = (float)temp;
    xv_status st = xv_config_validate(m);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s", path);
}

/* ---- data loaders ---- */

/* The top-level keys both loaders share: text, masking, the model's image size. */
static xv_status read_text_keys(const xv_yaml_node *root, const xv_pretrain_run_config *rc, xv_pretrain_config *c) {
    c->vocab_path = rc->vocab;
    c->image_res = rc->model.vision.image_res;
    c->patch_size = rc->model.vision.region_stride;
    XV_TRY(xv_yaml_get_int(root, "max_words", 1, BIG, &c->max_words));
    XV_TRY(xv_yaml_get_int(root, "max_tokens", 2, 1 << 16, &c->max_tokens));
    XV_TRY(xv_yaml_get_double(root, "mask_prob", 0, 1, &c->masking.mask_prob));
    XV_TRY(xv_yaml_get_int(root, "max_masks", 1, BIG, &c->masking.max_masks));
    XV_TRY(xv_yaml_get_bool(root, "mask_whole_word", &c->masking.whole_word));
    XV_TRY(xv_yaml_get_double(root, "skipgram_prb", 0, 1, &c->masking.skipgram_prb));
    return xv_yaml_get_int(root, "skipgram_size", 1, BIG, &c->masking.skipgram_size);
}

xv_status xv_read_crop_scale(const xv_yaml_node *map, double *min, double *max) {
    const xv_yaml_node *n = xv_yaml_get(map, "crop_scale");
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_SEQ || n->n != 2) return xv_yaml_type_error(n, "a list of two numbers [min, max]");
    double v[2];
    for (int i = 0; i < 2; i++) {
        const xv_yaml_node *e = n->items[i];
        if (e->kind != XV_YAML_INT && e->kind != XV_YAML_FLOAT) return xv_yaml_type_error(e, "a number");
        v[i] = e->f;
    }
    if (!(v[0] > 0 && v[0] <= v[1] && v[1] <= 1))
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = [%g, %g] must satisfy 0 < min <= max <= 1", n->file,
                        n->line, n->name, v[0], v[1]);
    *min = v[0], *max = v[1];
    return XV_OK;
}

/* images{...} or regions{...} (iter_perc, a trainer setting, is read by the caller). */
static xv_status read_source(const xv_yaml_node *root, const char *name, xv_pretrain_config *c, FILE *notes) {
    static const char *const known_images[] = {"image_key", "is_image_rpath", "caption_key", "tokenized",
                                               "batch_size", "num_workers", "image_root", "allow_outside_root",
                                               "crop_scale", NULL};
    static const char *const known_regions[] = {"image_key", "is_image_rpath", "caption_key", "tokenized",
                                                "batch_size", "num_workers", "image_root", "allow_outside_root", "iter_perc",
                                                "max_images", "max_regions", "min_perc_in_image", "careful_hflip",
                                                NULL};
    const bool regions = c->kind == XV_PRETRAIN_REGIONS;
    XV_TRY(xv_yaml_get_string(root, "image_root", &c->image_root)); /* the top level's, for both */
    XV_TRY(xv_yaml_get_bool(root, "allow_outside_root", &c->allow_outside_root));
    const xv_yaml_node *m;
    XV_TRY(xv_yaml_get_map(root, name, &m));
    XV_TRY(xv_yaml_get_string(m, "image_key", &c->image_key));
    XV_TRY(xv_yaml_get_string(m, "caption_key", &c->caption_key));
    XV_TRY(xv_yaml_get_bool(m, "is_image_rpath", &c->is_image_rpath));
    XV_TRY(xv_yaml_get_bool(m, "tokenized", &c->tokenized));
    XV_TRY(xv_yaml_get_int(m, "batch_size", 2, MAX_BATCH, &c->batch_size));
    XV_TRY(xv_yaml_get_int(m, "num_workers", 0, BIG, &c->num_workers));
    if (c->num_workers == 0) c->num_workers = 1; /* the official 0 = loading in the main process */
    XV_TRY(xv_yaml_get_string(m, "image_root", &c->image_root));
    XV_TRY(xv_yaml_get_bool(m, "allow_outside_root", &c->allow_outside_root));
    if (regions) {
        XV_TRY(xv_yaml_get_int(m, "max_images", 1, BIG, &c->max_images));
        XV_TRY(xv_yaml_get_int(m, "max_regions", 1, BIG, &c->max_regions));
        XV_TRY(xv_yaml_get_double(m, "min_perc_in_image", 0, 1, &c->min_perc_in_image));
        XV_TRY(xv_yaml_get_bool(m, "careful_hflip", &c->careful_hflip));
    } else {
        XV_TRY(xv_read_crop_scale(m, &c->crop_scale_min, &c->crop_scale_max));
    }
    xv_yaml_note_unknown(m, regions ? known_regions : known_images, notes);
    return XV_OK;
}

/* ---- optimisation ---- */

/* optimizer.opt / schedular.sched: only the one implemented name. */
static xv_status require_name(const xv_yaml_node *map, const char *key, const char *only) {
    const char *name = NULL;
    XV_TRY(xv_yaml_get_string(map, key, &name));
    if (name && strcmp(name, only)) {
        const xv_yaml_node *n = xv_yaml_get(map, key);
        return xv_error(XV_ERR_UNSUPPORTED, "%s:%d: %s: only %s is implemented", n->file, n->line, n->name, only);
    }
    return XV_OK;
}

static xv_status read_optim(const xv_yaml_node *root, xv_pretrain_run_config *rc, FILE *notes) {
    static const char *const known_opt[] = {"opt", "lr", "weight_decay", "lr_mult", NULL};
    static const char *const known_sched[] = {"sched", "lr", "epochs", "num_warmup_steps", NULL};
    xv_trainer_config *t = &rc->trainer;
    const xv_yaml_node *o, *s, *a;
    XV_TRY(xv_yaml_get_map(root, "optimizer", &o));
    XV_TRY(xv_yaml_get_map(root, "schedular", &s));
    XV_TRY(xv_yaml_get_map(root, "accelerator", &a));
    XV_TRY(require_name(o, "opt", "adamW"));
    XV_TRY(xv_yaml_get_double(o, "lr", 0, 10, &t->optim.lr));
    XV_TRY(xv_yaml_get_double(o, "weight_decay", 0, 10, &t->optim.weight_decay));
    XV_TRY(xv_yaml_get_double(o, "lr_mult", 0, 1e6, &t->optim.lr_mult));
    xv_yaml_note_unknown(o, known_opt, notes);

    XV_TRY(require_name(s, "sched", "linear"));
    double sched_lr = t->optim.lr;
    XV_TRY(xv_yaml_get_double(s, "lr", 0, 10, &sched_lr));
    if (sched_lr != t->optim.lr && notes)
        fprintf(notes, "note: %s: schedular.lr %g ignored: the schedule scales optimizer.lr (%g), as officially\n",
                rc->path, sched_lr, t->optim.lr);
    XV_TRY(xv_yaml_get_int(s, "epochs", 1, BIG, &rc->epochs));
    XV_TRY(xv_schedule_read_warmup(s, &t->warmup, &t->warmup_is_fraction));
    xv_yaml_note_unknown(s, known_sched, notes);

    if (a) {
        XV_TRY(xv_yaml_get_double(a, "CLIP_GRAD_NORM", -1, 1e9, &t->clip_norm));
        bool first = true;
        for (int i = 0; i < a->n && notes; i++)
            if (strcmp(a->keys[i], "CLIP_GRAD_NORM")) {
                fprintf(notes, "%s%s", first ? "note: ignored (fp32 in one process, no apex/DDP): accelerator." : ", ",
                        a->keys[i]);
                first = false;
            }
        if (!first) fputc('\n', notes);
    }
    return XV_OK;
}

/* ---- the whole file ---- */

/* `vocab`, else text_encoder's vocab.txt (the official key names the folder). */
static xv_status read_vocab(const xv_yaml_node *root, char **out) {
    const char *vocab = NULL, *enc = NULL;
    XV_TRY(xv_yaml_get_string(root, "vocab", &vocab));
    if (!vocab) XV_TRY(xv_yaml_get_string(root, "text_encoder", &enc));
    if (!vocab && !enc) return xv_error(XV_ERR_MISSING, "%s: no vocabulary: set \"vocab\" or \"text_encoder\"", root->file);
    const char *dir = vocab ? "" : enc, *file = vocab ? vocab : "/vocab.txt";
    size_t n = strlen(dir) + strlen(file) + 1;
    if (!(*out = malloc(n))) return xv_error(XV_ERR_NOMEM, "out of memory");
    snprintf(*out, n, "%s%s", dir, file);
    return XV_OK;
}

static xv_status read_all(const xv_yaml_node *root, xv_pretrain_run_config *rc, FILE *notes) {
    static const char *const known[] = {
        "train_file", "train_file_regions", "train_dataset_size", "images", "regions", "vision_config",
        "text_config", "model_config", "image_res", "patch_size", "embed_dim", "temp", "max_words", "max_tokens",
        "mask_prob", "max_masks", "mask_whole_word", "skipgram_prb", "skipgram_size", "calc_image_bbox_loss",
        "bbox_loss", "optimizer", "schedular", "accelerator", "ckpt_frequent_step", "ckpt_frequent", "text_encoder", "vocab",
        "image_root", "allow_outside_root", "use_clip_vit", "use_swin", "use_roberta", "load_bertL_by_sep", NULL};
    const char *path = rc->path;
    bool flag = false;
    XV_TRY(xv_yaml_get_bool(root, "use_clip_vit", &flag));
    if (flag) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_clip_vit: only the Swin encoder is implemented", path);
    XV_TRY(xv_yaml_get_bool(root, "use_roberta", &flag));
    if (flag) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_roberta: only BERT is implemented", path);
    const xv_yaml_node *sep = xv_yaml_get(root, "load_bertL_by_sep");
    if (sep && notes)
        fprintf(notes, "note: %s:%d: \"load_bertL_by_sep\" ignored: the text encoder starts from random or --init weights\n",
                path, sep->line);
    XV_TRY(read_model(path, root, &rc->model));
    XV_TRY(read_vocab(root, &rc->vocab));

    xv_pretrain_config *im = &rc->images, *rg = &rc->regions;
    const char **files = NULL, **files_regions = NULL;
    XV_TRY(xv_yaml_get_strings(root, "train_file", &files, &im->n_files));
    im->files = files;
    XV_TRY(xv_yaml_get_strings(root, "train_file_regions", &files_regions, &rg->n_files));
    rg->files = files_regions;
    XV_TRY(xv_yaml_get_int64(root, "train_dataset_size", 1, INT64_MAX, &rc->train_dataset_size));
    XV_TRY(read_text_keys(root, rc, im));
    XV_TRY(read_text_keys(root, rc, rg));
    XV_TRY(read_source(root, "images", im, notes));
    XV_TRY(read_source(root, "regions", rg, notes));
    const xv_yaml_node *regions_map = xv_yaml_get(root, "regions");
    XV_TRY(xv_yaml_get_double(regions_map, "iter_perc", 0, 1, &rc->trainer.iter_perc));
    XV_TRY(xv_yaml_get_bool(root, "calc_image_bbox_loss", &rc->trainer.calc_image_bbox_loss));
    XV_TRY(xv_yaml_get_bool(root, "bbox_loss", &rc->trainer.bbox_loss));
    XV_TRY(xv_yaml_get_int64(root, "ckpt_frequent_step", 1, INT64_MAX, &rc->ckpt_frequent_step));
    XV_TRY(xv_yaml_get_int(root, "ckpt_frequent", 1, BIG, &rc->ckpt_frequent));
    XV_TRY(read_optim(root, rc, notes));
    xv_yaml_note_unknown(root, known, notes);

    /* What a run cannot do without. */
    if (!im->n_files) return xv_error(XV_ERR_MISSING, "%s: key \"train_file\" is missing", path);
    if (rc->trainer.iter_perc > 0 && !rg->n_files)
        return xv_error(XV_ERR_MISSING, "%s: regions.iter_perc is %g but \"train_file_regions\" is missing", path,
                        rc->trainer.iter_perc);
    if (!rc->train_dataset_size)
        return xv_error(XV_ERR_MISSING, "%s: key \"train_dataset_size\" is missing (it sets the schedule)", path);
    if (im->max_tokens > rc->model.text.max_positions)
        return xv_error(XV_ERR_INVALID_ARG, "%s: max_tokens %d exceeds the text encoder's %d positions", path,
                        im->max_tokens, rc->model.text.max_positions);
    if (im->masking.max_masks >= im->max_tokens)
        return xv_error(XV_ERR_INVALID_ARG, "%s: max_masks %d must be below max_tokens %d", path,
                        im->masking.max_masks, im->max_tokens);
    return XV_OK;
}

/* Run configs are small; anything over 16 MiB is refused. */
static xv_status read_text(const char *path, char **out) {
    uint8_t *text = NULL;
    size_t len;
    xv_status st = xv_fs_read_file(path, INT64_C(16) << 20, &text, &len);
    *out = (char *)text;
    return st;
}

xv_status xv_pretrain_run_config_load(const char *path, xv_pretrain_run_config *out, FILE *notes) {
    memset(out, 0, sizeof *out);
    xv_pretrain_run_config rc = {
        .images = xv_pretrain_config_default(XV_PRETRAIN_IMAGES),
        .regions = xv_pretrain_config_default(XV_PRETRAIN_REGIONS),
        .trainer = xv_trainer_config_default(),
        /* configs/Pretrain_XVLM_base_4m.yaml */
        .epochs = 41,
        .ckpt_frequent_step = 50000,
        .ckpt_frequent = 5,
    };
    rc.images.repeat = rc.regions.repeat = true; /* the official loaders stream endlessly; the step count ends the run */
    xv_status st = (rc.path = strdup(path)) ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = read_text(path, &rc.text);
    if (st == XV_OK) st = xv_yaml_parse(rc.text, strlen(rc.text), path, &rc.yaml);
    if (st == XV_OK) st = read_all(rc.yaml, &rc, notes);
    if (st != XV_OK) {
        xv_pretrain_run_config_free(&rc);
        return st;
    }
    *out = rc;
    return XV_OK;
}

void xv_pretrain_run_config_free(xv_pretrain_run_config *c) {
    free(c->path);
    free(c->text);
    xv_yaml_free(c->yaml);
    /* the file lists are ours (xv_yaml_get_strings); their strings are the tree's */
    free((void *)c->images.files);
    free((void *)c->regions.files);
    free(c->vocab);
    memset(c, 0, sizeof *c);
}

int64_t xv_pretrain_steps_per_epoch(const xv_pretrain_run_config *c) {
    const int64_t per_step = c->images.batch_size * xv_dist_world(); /* batch_size is per rank */
    return (c->train_dataset_size + per_step - 1) / per_step;
}
