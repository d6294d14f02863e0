/* The settings of a pretraining run, read from an official pretraining YAML
 * (configs/Pretrain_XVLM_base_4m.yaml) with the keys that apply here.
 *
 * Model: `vision_config` + `text_config` (official Swin / BERT JSON files, as
 * model/config.h reads them), or `model_config:` naming a project config.json
 * or holding its content inline as a mapping (so a tiny model and X-VLM base
 * come from the same code). image_res and patch_size must agree with the
 * model; embed_dim and temp override it.
 *
 * Read (official key names): train_file, train_file_regions,
 * train_dataset_size, images{image_key, is_image_rpath, caption_key,
 * tokenized, batch_size, num_workers}, regions{the same + iter_perc,
 * max_images, max_regions, min_perc_in_image, careful_hflip}, image_res,
 * patch_size, embed_dim, temp, max_words, max_tokens, mask_prob, max_masks,
 * skipgram_prb, skipgram_size, mask_whole_word, calc_image_bbox_loss,
 * optimizer{lr, weight_decay, lr_mult}, schedular{lr, epochs,
 * num_warmup_steps}, accelerator{CLIP_GRAD_NORM}, ckpt_frequent_step,
 * ckpt_frequent, text_encoder (its vocab.txt).
 * Added here: `vocab` (a vocab.txt, instead of text_encoder's), `image_root`
 * (top level, or inside images/regions: prefix of relative image paths),
 * `bbox_loss` (default true; false trains region batches without the box
 * losses, the paper's "w/o bbox loss" ablation).
 * Keys that do not apply (apex settings, use_* flags already satisfied, ...)
 * and unknown keys are reported as notes and otherwise ignored; a key of the
 * wrong type is refused with its name and line. */
#ifndef XV_TRAIN_PRETRAIN_RUN_CONFIG_H
#define XV_TRAIN_PRETRAIN_RUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/config.h"

typedef struct {
    char *image_key, *caption_key; /* "binary", "caption" */
    bool is_image_rpath, tokenized;
    int batch_size;  /* images: pairs per batch; regions: texts per batch */
    int num_workers;
    char *image_root; /* NULL = paths as written */
} xv_pretrain_source_config;

typedef struct {
    char *path;      /* the YAML file */
    char *text;      /* its content (stored in checkpoints) */
    xv_model_config model;
    /* data */
    char **train_file, **train_file_regions;
    int n_train_file, n_train_file_regions;
    int64_t train_dataset_size;
    xv_pretrain_source_config images, regions;
    double iter_perc;          /* 0.5 */
    int max_images, max_regions; /* 48, 5 */
    double min_perc_in_image;  /* 0.5 */
    bool careful_hflip;        /* false */
    double crop_scale[2];      /* images.crop_scale: (0.2, 1), the official RandomResizedCrop area range */
    bool calc_image_bbox_loss; /* false: whole-image texts excluded from the box loss */
    bool bbox_loss;            /* true; false = no box losses (ablation key, not official) */
    char *vocab;               /* vocab.txt */
    int max_words, max_tokens; /* 40, 40 */
    double mask_prob;          /* 0.25 */
    int max_masks;             /* 8 */
    bool mask_whole_word;      /* true */
    double skipgram_prb;       /* 0.2 */
    int skipgram_size;         /* 3 */
    /* optimisation */
    double lr, weight_decay, lr_mult; /* 1e-4, 0.01, 2 */
    int epochs;                       /* 41 */
    double warmup;                    /* 2500 */
    bool warmup_is_fraction;          /* a float num_warmup_steps is a fraction of the steps */
    double clip_grad_norm;            /* 1.0 */
    int64_t ckpt_frequent_step;       /* 50000 */
    int ckpt_frequent;                /* 5 (epochs) */
} xv_pretrain_run_config;

/* Read and check `path`. Notes about ignored keys go to `notes` (may be NULL)
 * one per line. On failure *out is left zeroed. */
xv_status xv_pretrain_run_config_load(const char *path, xv_pretrain_run_config *out, FILE *notes);
void xv_pretrain_run_config_free(xv_pretrain_run_config *c);

/* ceil(train_dataset_size / images.batch_size) (one process). */
int64_t xv_pretrain_steps_per_epoch(const xv_pretrain_run_config *c);

#endif
