/* NLVR domain pretraining ("text assignment"), as the official
 * NLVR_pretrain.py with models/model_nlvr_pretrain.py
 * (shared/docs/xvlm-nlvr-grounding.md §2), behind finetune_task.h:
 * `xvlm finetune nlvr_pretrain`.
 *
 * Config: the pretraining keys the script reads: train_file (JSON-lines
 * files, as the pretraining image-text corpus), image_root,
 * images{batch_size, image_key, caption_key, is_image_rpath, crop_scale
 * (ours)}, train_dataset_size (read, not used: the epochs here go over the
 * lines read), image_res, max_words, max_tokens, optimizer{lr, weight_decay,
 * lr_mult}, schedular{epochs, num_warmup_steps}, accelerator{CLIP_GRAD_NORM}.
 * The official config (configs/NLVR_pretrain_O1.yaml) is not in the
 * repository, so there are no official values beyond the keys.
 * Start: a pretraining model, converted as load_pretrained does (fusion
 * layers duplicated, vision_proj kept, a new ta_head from --seed).
 * Training: each record through the pretraining image-text sample
 * (xv_sample_image_text, as ImageTextJsonDataset: RandomResizedCrop scale
 * crop_scale, officially (0.2, 1), flip, RandAug; random.choice of a caption
 * list, pre_caption(max_words), [CLS] + tokens padded to max_tokens); the pairs drawn from the batch's image similarity
 * (xv_ta_forward with the run's "negatives" stream), cross-entropy over
 * ta_head ("loss"); ta_head at lr·lr_mult; the global gradient norm clipped
 * to CLIP_GRAD_NORM (fp32 here, apex O1 officially); vision_proj gets no
 * gradient and never changes.
 * No evaluation (the official script has none): model/ is the
 * model_state_epoch_latest.th that `finetune nlvr --init` loads as
 * NLVR.py --load_nlvr_pretrain does. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/nlvr.h"
#include "train/finetune_task.h"
#include "train/pretrain_run_config.h"

/* The keys of this stage beyond the shared ones (cfg->task_data). */
typedef struct {
    xv_pretrain_config data; /* strings owned below */
    char *image_key, *caption_key;
} ta_config;

typedef struct {
    xv_ft_corpus corpus;
    float *pixels;    /* [batch, 3, R, R] */
    int32_t *rows;    /* [batch, 3 L + 2 M]: each sample's text arrays */
    int32_t *ids, *atts; /* [batch, L]: the samples made */
} ta_data;

static const char *const keys[] = {"images", "accelerator", "train_dataset_size", NULL};

static xv_status read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    ta_config *c = calloc(1, sizeof *c);
    if (!(cfg->task_data = c)) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_pretrain_config *d = &c->data;
    *d = xv_pretrain_config_default(XV_PRETRAIN_IMAGES);
    d->image_key = "image";
    d->is_image_rpath = true;
    const xv_yaml_node *images, *acc;
    XV_TRY(xv_yaml_require(root, "images", "the image-text corpus settings, images{batch_size, ...}"));
    XV_TRY(xv_yaml_get_map(root, "images", &images));
    XV_TRY(xv_yaml_require(images, "batch_size", "the training batch size"));
    XV_TRY(xv_yaml_get_int(images, "batch_size", 3, 65536, &cfg->batch_size)); /* label 2 needs 3 images */
    XV_TRY(xv_yaml_get_string(images, "image_key", &d->image_key));
    XV_TRY(xv_yaml_get_string(images, "caption_key", &d->caption_key));
    XV_TRY(xv_yaml_get_bool(images, "is_image_rpath", &d->is_image_rpath));
    XV_TRY(xv_read_crop_scale(images, &d->crop_scale_min, &d->crop_scale_max));
    if (!(c->image_key = strdup(d->image_key)) || !(c->caption_key = strdup(d->caption_key)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    d->image_key = c->image_key, d->caption_key = c->caption_key;
    int64_t size = 0;
    XV_TRY(xv_yaml_get_int64(root, "train_dataset_size", 1, INT64_MAX, &size));
    XV_TRY(xv_yaml_get_double(xv_yaml_get(root, "optimizer"), "lr_mult", 0, 1e6, &cfg->optim.lr_mult));
    cfg->clip_grad_norm = 1.0; /* the official accelerator configs' CLIP_GRAD_NORM */
    XV_TRY(xv_yaml_get_map(root, "accelerator", &acc));
    return xv_yaml_get_double(acc, "CLIP_GRAD_NORM", 0, 1e9, &cfg->clip_grad_norm);
}

static void free_config(xv_finetune_config *cfg) {
    ta_config *c = cfg->task_data;
    if (c) free(c->image_key), free(c->caption_key);
    free(c);
    cfg->task_data = NULL;
}

static xv_status setup(xv_ft *f) {
    XV_TRY(xv_ft_init_paired(f, false));
    const xv_init_params_spec spec = {.kind = XV_INIT_PARAMS_NLVR_PRETRAIN};
    XV_TRY(xv_init_params_build(&spec, &f->large_lr)); /* ta_head at lr·lr_mult (optimiser built before apex) */
    ta_data *d = calloc(1, sizeof *d);
    if (!(f->task_state = d)) return xv_error(XV_ERR_NOMEM, "out of memory");
    const ta_config *c = f->cfg.task_data;
    XV_TRY(xv_ft_corpus_open(f, &c->data, "nlvr_pretrain", &d->corpus));
    f->n = d->corpus.n;
    const size_t B = (size_t)f->cfg.batch_size, L = (size_t)f->cfg.max_tokens;
    const size_t M = (size_t)d->corpus.sh.cfg.masking.max_masks;
    d->pixels = malloc(B * 3 * (size_t)f->res * (size_t)f->res * sizeof *d->pixels);
    d->rows = malloc(B * (3 * L + 2 * M) * sizeof *d->rows);
    d->ids = malloc(B * L * sizeof *d->ids), d->atts = malloc(B * L * sizeof *d->atts);
    if (!d->pixels || !d->rows || !d->ids || !d->atts) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static void task_free(xv_ft *f) {
    ta_data *d = f->task_state;
    if (!d) return;
    xv_ft_corpus_free(&d->corpus);
    free(d->pixels), free(d->rows), free(d->ids), free(d->atts);
    free(d);
    f->task_state = NULL;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    ta_data *d = f->task_state;
    xv_ft_corpus *cp = &d->corpus;
    const int B = f->cfg.batch_size, R = f->res, L = f->cfg.max_tokens, M = cp->sh.cfg.masking.max_masks;
    const size_t img = (size_t)3 * R * R;
    int n = 0; /* samples made: a record skipped (its image or caption unusable, warned and counted) gives none */
    for (int i = 0; i < B; i++) {
        const int32_t r = f->order[b * B + i];
        int32_t *p = d->rows + (size_t)n * (size_t)(3 * L + 2 * M);
        const xv_text_row row = {p, p + L, p + 2 * L, p + 3 * L, p + 3 * L + M};
        const xv_sample_result sr = xv_sample_image_text(&cp->s, cp->recs[r], &cp->where[r], d->pixels + (size_t)n * img, row);
        if (sr == XV_SAMPLE_FATAL)
            return xv_error_wrap(XV_ERR_NOMEM, "%s:%lld", cp->where[r].path, (long long)cp->where[r].line);
        if (sr != XV_SAMPLE_OK) continue;
        memcpy(d->ids + (size_t)n * L, row.ids, (size_t)L * sizeof *d->ids);
        memcpy(d->atts + (size_t)n * L, row.atts, (size_t)L * sizeof *d->atts);
        n++;
    }
    if (n < 3) return xv_error(XV_ERR_INVALID_ARG, "text assignment: %d usable samples in step %lld, 3 needed "
                               "(see the warnings above)", n, (long long)f->sched.pos);
    xv_graph *g = f->g;
    const xv_ta_batch tb = {
        .images = xv_tensor_wrap_f32(g, d->pixels, XV_SHAPE(n, 3, R, R)),
        .text_ids = xv_tensor_wrap_i32(g, d->ids, XV_SHAPE(n, L)),
        .text_atts = xv_tensor_wrap_i32(g, d->atts, XV_SHAPE(n, L)),
        .rng = &f->neg, /* the pairing draws */
    };
    XV_TRY(xv_graph_status(g));
    xv_ta_out o;
    XV_TRY(xv_ta_forward(g, f->m, &tb, &o));
    *out = o.loss;
    rec->region = false;
    term[0] = o.loss->data[0];
    return XV_OK;
}

const xv_finetune_task xv_ft_nlvr_pretrain = {
    .name = "nlvr_pretrain",
    .batch_key = NULL, /* images.batch_size, read with the task's keys */
    .keys = keys,
    .read_config = read_config,
    .free_config = free_config,
    .n_terms = 1,
    .terms = {"loss"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = NULL, /* and so no selection, metric keys, score table or model_best/ */
};
