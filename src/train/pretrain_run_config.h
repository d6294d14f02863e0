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

#include "data/pretrain_data.h"
#include "io/yaml_tree.h"
#include "model/config.h"
#include "train/trainer.h"

/* The run's settings are the configs of the parts that use them, filled over
 * their own defaults (xv_pretrain_config_default, xv_trainer_config_default),
 * so each official default is written once, next to its struct. */
typedef struct {
    char *path;         /* the YAML file */
    char *text;         /* its content (stored in checkpoints) */
    xv_yaml_node *yaml; /* the parsed file: the loaders' strings point into it */
    xv_model_config model;
    /* The two data loaders: train_file / images{...} and train_file_regions /
     * regions{...}, with the text and masking keys of the top level in both.
     * images.num_workers / regions.num_workers: the official 0 (loading in
     * the main process) is read as 1 worker thread. */
    xv_pretrain_config images, regions;
    /* regions.iter_perc, accelerator.CLIP_GRAD_NORM, optimizer{lr,
     * weight_decay, lr_mult}, schedular.num_warmup_steps,
     * calc_image_bbox_loss, bbox_loss; seed, total_steps and steps_per_epoch
     * are the run's to set. */
    xv_trainer_config trainer;
    int64_t train_dataset_size;
    int epochs;                 /* schedular.epochs: 41 */
    int64_t ckpt_frequent_step; /* 50000 */
    int ckpt_frequent;          /* 5 (epochs) */
    char *vocab;                /* vocab.txt (both loaders' vocab_path) */
} xv_pretrain_run_config;

/* Read and check `path`. Notes about ignored keys go to `notes` (may be NULL)
 * one per line. On failure *out is left zeroed. */
xv_status xv_pretrain_run_config_load(const char *path, xv_pretrain_run_config *out, FILE *notes);
void xv_pretrain_run_config_free(xv_pretrain_run_config *c);

/* ceil(train_dataset_size / (images.batch_size · world)): batch_size is per
 * rank, as in Pretrain.py. */
int64_t xv_pretrain_steps_per_epoch(const xv_pretrain_run_config *c);

/* images.crop_scale of `map`: [lo, hi] with 0 < lo <= hi <= 1 (RandomResizedCrop's
 * area range; ours, the official pipeline keeps (0.2, 1)); absent: unchanged. */
xv_status xv_read_crop_scale(const xv_yaml_node *map, double *min, double *max);

#endif
