/* Fine-tuning X-VLM for image-text retrieval (the official Retrieval.py with
 * models/model_retrieval.py) and for box grounding (Grounding_bbox.py with
 * models/model_bbox.py), §9.1 and §9.2 of docs/architecture.md.
 *
 * Retrieval: training entries {image, caption, image_id}, one (image, caption)
 * pair per sample, shuffled each epoch; fine-tuning train transform
 * (RandomResizedCrop scale 0.5..1, flip, RandAug 10 ops); pre_caption(30);
 * [CLS] + tokens cut to max_tokens, padded to the longest. Loss = ITC with
 * idx = image_id (same-image pairs are positives) + ITM whose hard negatives
 * skip same-image pairs. temp is trained and never clamped.
 *
 * Grounding: entries {image, text, ref_id} with the box from the REFER index
 * of refcoco_data (or {image, text, bbox [x, y, w, h] pixels}); the region crop
 * around the box, flip (skipped when the text mentions left/right:
 * careful_hflip), resize, RandAug over the 5 colour ops; target
 * (cx, cy, w, h)/res. Loss = ΣL1/B + Σ(1 − GIoU)/B.
 *
 * Both: AdamW (lr 3e-5, weight decay 0.01, the official decay groups, no
 * lr_mult since the fine-tuning models have no init_params), linear schedule
 * with warmup (fraction 0.1), fp32, no gradient clipping, dropout on. The
 * model is evaluated before (zero-shot) and after every epoch: retrieval on
 * val_file and test_file, grounding on test_file by REFER split
 * (tasks/eval_retrieval.h, eval_grounding.h). */
#ifndef XV_TRAIN_FINETUNE_H
#define XV_TRAIN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "tasks/eval_grounding.h"
#include "tasks/metrics.h"
#include "train/adamw.h"

/* XV_FINETUNE_NLVR runs through train/finetune_nlvr.h (its own loop), sharing the config reader. */
typedef enum { XV_FINETUNE_RETRIEVAL, XV_FINETUNE_GROUNDING, XV_FINETUNE_NLVR } xv_finetune_task;

/* A path or a list of paths of the YAML, as written (relative ones from the
 * working directory, as the official scripts run). */
typedef struct {
    char **paths;
    int n;
} xv_path_list;

/* The keys of an official Retrieval.yaml / Grounding_bbox.yaml used here. */
typedef struct {
    xv_finetune_task task;
    xv_path_list train_file; /* train_file: every file, concatenated (re_train_dataset, grounding_dataset_bbox) */
    xv_path_list val_file;   /* retrieval: val_file, evaluated next to test_file (n 0: none) */
    xv_path_list test_file;  /* test_file; grounding: refcoco+_val.json + refcoco+_test.json, the REFER split of
                                each ref_id decides val / testA / testB */
    char *image_root;     /* image_root, joined to each entry's "image" (NULL: the paths as written) */
    char *refcoco_data;   /* grounding: REFER root, DATA/refcoco+/refs(unc).p + instances.json give the boxes
                             (NULL: boxes inline, the VLUE format) */
    char *det_file;       /* grounding: detector proposals (tasks/refer.h xv_dets_read); kept, unused by the box task */
    char *coco_file;      /* grounding: read by the official code and unused; kept */
    int image_res;        /* image_res (0: the model's); another one rescales the Swin window with it
                             (224/7 -> 384/12) and interpolates the relative-position tables */
    int batch_size;       /* batch_size_train (retrieval) / batch_size (grounding) */
    int k_test;           /* 256 */
    int max_words;        /* pre_caption cap: 30 */
    int max_tokens;       /* 40 */
    xv_adamw_config optim; /* optimizer{lr: 3e-5, weight_decay: 0.01}; lr_mult 1 (no init_params) */
    int epochs;           /* schedular{epochs} */
    double warmup;        /* schedular{num_warmup_steps}: 0.1 */
    bool warmup_is_fraction;
    bool careful_hflip;   /* grounding: true */
} xv_finetune_config;

/* The official values for `task` (configs/Retrieval_coco.yaml,
 * Grounding_bbox.yaml); no files set. */
xv_finetune_config xv_finetune_config_default(xv_finetune_task task);

/* Read `path` for `task` over the defaults; keys that do not apply are noted
 * to `notes` (may be NULL). */
xv_status xv_finetune_config_load(const char *path, xv_finetune_task task, xv_finetune_config *out, FILE *notes);
void xv_finetune_config_free(xv_finetune_config *c);

typedef struct {
    const char *config_path;
    const char *init_dir;    /* model folder: config.json, weights.safetensors, vocab.txt */
    const char *output_dir;  /* see xv_finetune_run */
    /* NULL: a fresh run (refused when output_dir holds checkpoints); "": the
     * newest checkpoint of output_dir/checkpoints (a fresh run when none);
     * otherwise that checkpoint file. */
    const char *resume;
    uint64_t seed;           /* data order, augmentation, dropout, negatives */
    int64_t max_steps;       /* stop after this many steps in all (0: epochs × steps per epoch) */
    int keep_last;           /* checkpoints kept (2) */
    int plot_smooth;         /* moving-average window of the loss plot (25) */
    bool eval_before;        /* also evaluate the initial model (zero-shot; not on a resume) */
    bool progress;           /* progress line with ETA and the per-epoch table */
    FILE *notes;             /* config notes, progress and tables (may be NULL) */
} xv_finetune_opts;

xv_finetune_opts xv_finetune_opts_default(void);

typedef struct {
    int64_t start_step, steps, total_steps; /* steps: done in all (resumes included) */
    double first_loss, last_loss; /* mean loss over the first / last 10 % of this call's steps */
    double seconds_train;
    /* retrieval: r_mean of the Retrieval.py score (ITC top-k re-ranked by ITM);
     * grounding: accuracy (% IoU >= 0.5). Test file; NaN when not evaluated. */
    double metric_before, metric_after;
    double itc_r_mean_before, itc_r_mean_after; /* retrieval: ITC-only ranking */
    double mean_iou_before, mean_iou_after;     /* grounding */
    int64_t best_epoch;  /* epoch (0-based) of model_best/; -1: none scored above 0 */
    double best_score;   /* its selection score (test_r_mean / val_d, test_d) */
    /* The official result dicts. Retrieval: itm_eval of val_file (has_val)
     * and test_file; grounding: grounding_eval_bbox (val_d, testA_d, testB_d). */
    bool has_val;
    xv_retrieval_result val_before, val_after, test_before, test_after;
    xv_grounding_splits splits_before, splits_after;
} xv_finetune_result;

/* The official epoch loop: train an epoch, evaluate every split, log, keep
 * the best epoch, checkpoint. Output directory:
 *   log.jsonl        one record per update (train_log.h; retrieval updates
 *                    are "image" records with loss_itc/loss_itm, grounding
 *                    ones "region" records with loss_bbox/loss_giou), one
 *                    "epoch" record per epoch (train_<term> means and lr, the
 *                    official result keys: val_txt_r1 ... val_r_mean,
 *                    test_txt_r1 ... test_r_mean; val_d, testA_d, testB_d
 *                    (test_d without REFER); and "selection") and, after the last
 *                    epoch, a "best" record with best_epoch, as the official
 *                    log.txt ends with "best epoch: N"
 *   loss_curves.png  the loss terms over the steps
 *   checkpoints/checkpoint_<step>.safetensors  after every epoch and when
 *                    stopped by max_steps (weights, AdamW, schedule, random
 *                    streams, best so far; the data order follows from the
 *                    seed and the step), newest keep_last kept
 *   model_best/      the best epoch's model (Retrieval.py checkpoint_best.pth:
 *                    best test r_mean; Grounding_bbox.py: best val_d, else test_d)
 *   model/           the final model; both folders hold config.json,
 *                    weights.safetensors, vocab.txt (every command opens them)
 *   result.json      summary, with the official dicts "before" (zero-shot)
 *                    and "after": retrieval {"val", "test"} itm_eval dicts,
 *                    grounding {val_d, testA_d, testB_d, score}
 *   result/          grounding: the per-expression results (ref_id, box) as
 *                    collect_tensor_result collects them: zero_shot.json,
 *                    epochN.json after each epoch
 * A resumed run continues bitwise as the uninterrupted one (same thread
 * count); a killed run loses at most the epoch under way. */
xv_status xv_finetune_run(xv_finetune_task task, const xv_finetune_opts *o, xv_finetune_result *res);

#endif
