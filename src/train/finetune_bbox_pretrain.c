/* Box-grounding domain pretraining, as the official
 * Grounding_bbox_pretrain.py with models/model_bbox_pretrain.py
 * (shared/docs/xvlm-nlvr-grounding.md §4), behind finetune_task.h:
 * `xvlm finetune grounding_bbox_pretrain`.
 *
 * Config: configs/Grounding_bbox_pretrain_O1.yaml's keys: train_file_regions
 * (JSON-lines region corpora, the pretraining format: image + elems with bb,
 * caption, attributes), image_root, regions{batch_size (texts per step),
 * max_images (records per step), max_regions, min_perc_in_image,
 * image_key, caption_key, is_image_rpath, careful_hflip}, train_dataset_size
 * (read, not used: an epoch here is one pass over the records read),
 * calc_image_bbox_loss, image_res, max_words, max_tokens,
 * optimizer{lr, weight_decay}, schedular{epochs, num_warmup_steps},
 * accelerator{CLIP_GRAD_NORM} (official 1.0).
 * Model: the pretraining model with its bbox_head, loaded as it is.
 * One step: max_images records of the epoch's order through the pretraining
 * region sample (data/pretrain_sample.h: crop around a random elem, the
 * elems kept inside, flip, colour RandAug; pre_caption(max_words), [CLS] +
 * tokens padded to max_tokens), the collate's choice of exactly batch_size
 * texts, then xv_bbox_pretrain_step: full-image tokens (never the region
 * masks), L1 + GIoU over the texts that are not whole-image captions
 * (calc_image_bbox_loss False, the official value; True counts them too).
 * Global gradient norm clipped to CLIP_GRAD_NORM (fp32 here, apex O1
 * officially). No evaluation: model/ is the model_state_epoch_latest.th that
 * `finetune grounding --init` starts from (Grounding_bbox.py
 * --load_bbox_pretrain runs the generic loader). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/grounding_steps.h"
#include "train/finetune_task.h"

/* The stage's own keys (cfg->task_data); cfg->batch_size holds max_images. */
typedef struct {
    xv_pretrain_config data; /* strings owned below */
    char *image_key, *caption_key;
    bool calc_image_bbox_loss;
} bp_config;

typedef struct {
    xv_ft_corpus corpus;
    /* one step's buffers */
    float *images;          /* [max_images, 3, R, R] */
    xv_region_texts *texts; /* [max_images] */
    int32_t *rows;          /* [max_images · max_regions · (3 L + 2 M + A + 1)]: the texts' arrays */
    float *targets;         /* [max_images · max_regions · 4] */
    int32_t *keep, *owner, *ids, *atts, *group, *is_image; /* the collated batch */
    float *target;
} bp_data;

static const char *const keys[] = {"train_file_regions", "regions", "accelerator", "train_dataset_size",
                                   "calc_image_bbox_loss", NULL};

static xv_status read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    bp_config *c = calloc(1, sizeof *c);
    if (!(cfg->task_data = c)) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_pretrain_config *d = &c->data;
    *d = xv_pretrain_config_default(XV_PRETRAIN_REGIONS);
    d->image_key = "image";
    d->is_image_rpath = true;
    const xv_yaml_node *regions, *acc;
    XV_TRY(xv_yaml_require(root, "regions", "the region corpus settings, regions{batch_size, max_images, ...}"));
    XV_TRY(xv_yaml_get_map(root, "regions", &regions));
    XV_TRY(xv_yaml_get_int(regions, "batch_size", 1, 65536, &d->batch_size));
    XV_TRY(xv_yaml_get_int(regions, "max_images", 1, 65536, &d->max_images));
    XV_TRY(xv_yaml_get_int(regions, "max_regions", 1, 65536, &d->max_regions));
    XV_TRY(xv_yaml_get_double(regions, "min_perc_in_image", 0, 1, &d->min_perc_in_image));
    XV_TRY(xv_yaml_get_bool(regions, "careful_hflip", &d->careful_hflip));
    XV_TRY(xv_yaml_get_bool(regions, "is_image_rpath", &d->is_image_rpath));
    XV_TRY(xv_yaml_get_string(regions, "image_key", &d->image_key));
    XV_TRY(xv_yaml_get_string(regions, "caption_key", &d->caption_key));
    if (!(c->image_key = strdup(d->image_key)) || !(c->caption_key = strdup(d->caption_key)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    d->image_key = c->image_key, d->caption_key = c->caption_key;
    cfg->batch_size = d->max_images; /* the loop's unit is a record: max_images per step */
    int64_t size = 0;
    XV_TRY(xv_yaml_get_int64(root, "train_dataset_size", 1, INT64_MAX, &size));
    XV_TRY(xv_yaml_get_bool(root, "calc_image_bbox_loss", &c->calc_image_bbox_loss));
    cfg->clip_grad_norm = 1.0; /* Grounding_bbox_pretrain_O1.yaml's CLIP_GRAD_NORM */
    XV_TRY(xv_yaml_get_map(root, "accelerator", &acc));
    return xv_yaml_get_double(acc, "CLIP_GRAD_NORM", 0, 1e9, &cfg->clip_grad_norm);
}

static void free_config(xv_finetune_config *cfg) {
    bp_config *c = cfg->task_data;
    if (c) free(c->image_key), free(c->caption_key);
    free(c);
    cfg->task_data = NULL;
}

/* One step's buffers: the records' samples and the collated batch. */
static xv_status buffers_init(xv_ft *f, bp_data *d) {
    const bp_config *c = f->cfg.task_data;
    const size_t MI = (size_t)c->data.max_images, MR = (size_t)c->data.max_regions, T = (size_t)c->data.batch_size;
    const size_t L = (size_t)f->cfg.max_tokens, M = (size_t)d->corpus.sh.cfg.masking.max_masks;
    const size_t A = (size_t)(1 + d->corpus.sh.n_patch * d->corpus.sh.n_patch), row = 3 * L + 2 * M;
    d->images = malloc(MI * 3 * (size_t)f->res * (size_t)f->res * sizeof *d->images);
    d->texts = calloc(MI, sizeof *d->texts);
    d->rows = malloc(MI * MR * (row + A + 1) * sizeof *d->rows);
    d->targets = malloc(MI * MR * 4 * sizeof *d->targets);
    d->keep = malloc(T * sizeof *d->keep), d->owner = malloc(MI * MR * sizeof *d->owner);
    d->ids = malloc(T * L * sizeof *d->ids), d->atts = malloc(T * L * sizeof *d->atts);
    d->group = malloc(T * sizeof *d->group), d->is_image = malloc(T * sizeof *d->is_image);
    d->target = malloc(T * 4 * sizeof *d->target);
    if (!d->images || !d->texts || !d->rows || !d->targets || !d->keep || !d->owner || !d->ids || !d->atts ||
        !d->group || !d->is_image || !d->target)
        return xv_error(XV_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < MI; k++) {
        xv_region_texts *t = &d->texts[k];
        int32_t *p = d->rows + k * MR * (row + A + 1);
        if (!(t->rows = calloc(MR, sizeof *t->rows))) return xv_error(XV_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < MR; j++, p += row)
            t->rows[j] = (xv_text_row){p, p + L, p + 2 * L, p + 3 * L, p + 3 * L + M};
        t->image_atts = p;
        t->is_image = p + MR * A;
        t->target = d->targets + k * MR * 4;
    }
    return XV_OK;
}

static xv_status setup(xv_ft *f) {
    if (!f->m->parts.bbox)
        return xv_error(XV_ERR_INVALID_ARG, "%s: no bbox_head: box domain pretraining starts from a pretraining "
                        "model with its box head", f->o->init);
    bp_data *d = calloc(1, sizeof *d);
    if (!(f->task_state = d)) return xv_error(XV_ERR_NOMEM, "out of memory");
    const bp_config *c = f->cfg.task_data;
    XV_TRY(xv_ft_corpus_open(f, &c->data, "grounding_bbox_pretrain", &d->corpus));
    f->n = d->corpus.n;
    return buffers_init(f, d);
}

static void task_free(xv_ft *f) {
    bp_data *d = f->task_state;
    if (!d) return;
    xv_ft_corpus_free(&d->corpus);
    const bp_config *c = f->cfg.task_data;
    for (int k = 0; d->texts && k < c->data.max_images; k++) free(d->texts[k].rows);
    free(d->texts), free(d->images), free(d->rows), free(d->targets), free(d->keep), free(d->owner);
    free(d->ids), free(d->atts), free(d->group), free(d->is_image), free(d->target);
    free(d);
    f->task_state = NULL;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    bp_data *d = f->task_state;
    const bp_config *c = f->cfg.task_data;
    const int MI = c->data.max_images, T = c->data.batch_size, R = f->res, L = f->cfg.max_tokens;
    const size_t img = (size_t)3 * R * R;
    /* every record of the step through the region sample; skipped ones give no image */
    int n_img = 0, n_txt = 0;
    for (int k = 0; k < MI; k++) {
        const int32_t r = f->order[b * MI + k];
        xv_region_texts *t = &d->texts[n_img];
        xv_ft_corpus *cp = &d->corpus;
        const xv_sample_result sr = xv_sample_region(&cp->s, cp->recs[r], &cp->where[r], d->images + (size_t)n_img * img, t);
        if (sr == XV_SAMPLE_FATAL)
            return xv_error_wrap(XV_ERR_NOMEM, "%s:%lld", cp->where[r].path, (long long)cp->where[r].line);
        if (sr != XV_SAMPLE_OK) continue;
        for (int j = 0; j < t->n; j++) d->owner[n_txt++] = n_img * c->data.max_regions + j;
        n_img++;
    }
    if (!n_txt) return xv_error(XV_ERR_INVALID_ARG, "box domain pretraining: no record of step %lld gave a region "
                                "text (see the warnings above)", (long long)f->sched.pos);
    /* the collate: exactly batch_size texts (a random subset, or repeats) */
    if (xv_region_choose_texts(&f->aug, n_txt, T, d->keep) < 0) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < T; i++) {
        const int o = d->owner[d->keep[i]], k = o / c->data.max_regions, j = o % c->data.max_regions;
        const xv_region_texts *t = &d->texts[k];
        memcpy(d->ids + (size_t)i * L, t->rows[j].ids, (size_t)L * sizeof *d->ids);
        memcpy(d->atts + (size_t)i * L, t->rows[j].atts, (size_t)L * sizeof *d->atts);
        memcpy(d->target + 4 * i, t->target + 4 * j, 4 * sizeof *d->target);
        d->group[i] = k;
        d->is_image[i] = t->is_image[j];
    }
    xv_graph *g = f->g;
    const xv_bbox_pretrain_batch bb = {
        .image = xv_tensor_wrap_f32(g, d->images, XV_SHAPE(n_img, 3, R, R)),
        .text_ids = xv_tensor_wrap_i32(g, d->ids, XV_SHAPE(T, L)),
        .text_atts = xv_tensor_wrap_i32(g, d->atts, XV_SHAPE(T, L)),
        .idx_to_group_img = xv_tensor_wrap_i32(g, d->group, XV_SHAPE(T)),
        .target_bbox = xv_tensor_wrap_f32(g, d->target, XV_SHAPE(T, 4)),
        /* calc_image_bbox_loss: the official loop passes is_image = None */
        .is_image = c->calc_image_bbox_loss ? NULL : xv_tensor_wrap_i32(g, d->is_image, XV_SHAPE(T)),
    };
    XV_TRY(xv_graph_status(g));
    xv_bbox_pretrain_out o;
    XV_TRY(xv_bbox_pretrain_step(g, f->m, &bb, &o));
    *out = o.loss_total;
    rec->region = true;
    term[0] = rec->loss_bbox = o.loss_bbox->data[0];
    term[1] = rec->loss_giou = o.loss_giou->data[0];
    return XV_OK;
}

const xv_finetune_task xv_ft_bbox_pretrain = {
    .name = "grounding_bbox_pretrain",
    .train_key = "train_file_regions",
    .batch_key = NULL, /* regions{batch_size, max_images}, read with the task's keys */
    .keys = keys,
    .read_config = read_config,
    .free_config = free_config,
    .n_terms = 2,
    .terms = {"loss_bbox", "loss_giou"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = NULL, /* Grounding_bbox_pretrain.py evaluates nothing */
};
