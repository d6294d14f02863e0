/* Fine-tuning X-VLM as the official task scripts run it (§9 of
 * docs/architecture.md): one epoch loop (finetune_run.c) shared by every task,
 * and one file per task behind the interface of finetune_task.h:
 *
 * - "retrieval" (finetune_retrieval.c): Retrieval.py with
 *   models/model_retrieval.py, ITC (same image_id = positive) + ITM with hard
 *   negatives; evaluated on val_file and test_file (itm_eval's dicts);
 * - "grounding" (finetune_grounding.c): Grounding_bbox.py with
 *   models/model_bbox.py, the region crop around the REFER box, L1 + GIoU;
 *   evaluated on test_file by REFER split (val_d, testA_d, testB_d);
 * - "nlvr" (finetune_nlvr.c): NLVR.py with models/model_nlvr.py, two images
 *   per statement, cross-entropy over cls_head; accuracy on val_file (dev)
 *   and test_file (val_acc, test_acc).
 *
 * Every task: AdamW (lr 3e-5, weight decay 0.01, the official decay groups, no
 * lr_mult since the fine-tuning models have no init_params), linear schedule
 * with warmup (fraction 0.1), fp32, no gradient clipping, dropout on. The
 * model is evaluated before (zero-shot) and after every epoch. */
#ifndef XV_TRAIN_FINETUNE_H
#define XV_TRAIN_FINETUNE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "io/xvlm_config_infer.h"
#include "core/fs.h"
#include "train/adamw.h"

/* A fine-tuning task (finetune_task.h); found by its name. */
typedef struct xv_finetune_task xv_finetune_task;

/* The task called `name` ("retrieval", "grounding"), NULL when none is. */
const xv_finetune_task *xv_finetune_task_find(const char *name);
/* The task names, "retrieval, grounding", for usage messages. */
const char *xv_finetune_task_names(void);

/* A path or a list of paths of the YAML, as written (relative ones from the
 * working directory, as the official scripts run). */
typedef struct {
    char **paths;
    int n;
} xv_path_list;

/* The keys of an official task YAML (Retrieval.yaml, Grounding_bbox.yaml)
 * used here. The shared keys come first; a task reads only those that apply
 * (its config hook reads its own, into the task keys or task_data). */
typedef struct {
    const xv_finetune_task *task;
    xv_path_list train_file; /* train_file: every file, concatenated (re_train_dataset, grounding_dataset_bbox) */
    xv_path_list val_file;   /* val_file where the task reads it (retrieval), evaluated next to test_file (n 0: none) */
    xv_path_list test_file;  /* test_file; grounding: refcoco+_val.json + refcoco+_test.json, the REFER split of
                                each ref_id decides val / testA / testB */
    char *image_root;     /* image_root, joined to each entry's "image" (NULL: the paths as written) */
    char *text_encoder;   /* text_encoder: its vocab.txt when the initial model has none (the official
                             tokenizer comes from there) */
    bool allow_outside_root; /* allow_outside_root (ours): images may resolve outside image_root */
    int image_res;        /* image_res (0: the model's); another one rescales the Swin window with it
                             (224/7 -> 384/12) and interpolates the relative-position tables */
    int batch_size;       /* the task's batch key: batch_size_train (retrieval) / batch_size (grounding) */
    int k_test;           /* 256 */
    int max_words;        /* pre_caption cap: 30 */
    int max_tokens;       /* 40 */
    xv_adamw_config optim; /* optimizer{lr: 3e-5, weight_decay: 0.01}; lr_mult 1 (no init_params) */
    int epochs;           /* schedular{epochs} */
    int num_training_steps; /* schedular{num_training_steps} (Captioning_scst.yaml; 0: epochs x steps per epoch) */
    int eval_steps;       /* eval_steps: steps between evaluations (Captioning_scst.yaml; 0: every epoch) */
    double warmup;        /* schedular{num_warmup_steps}: 0.1 */
    bool warmup_is_fraction;
    double clip_grad_norm; /* global gradient-norm clip (the apex stages' accelerator.CLIP_GRAD_NORM); 0: none,
                              as the fine-tuning scripts run */
    /* the grounding tasks' keys (box grounding; weakly-supervised grounding reads them too) */
    char *refcoco_data;   /* grounding: REFER root, DATA/refcoco+/refs(unc).p + instances.json give the boxes
                             (NULL: boxes inline, the VLUE format) */
    char *det_file;       /* grounding: detector proposals (tasks/refer.h xv_dets_read); kept, unused by the box task */
    char *coco_file;      /* grounding: read by the official code and unused; kept */
    bool careful_hflip;   /* grounding: true */
    void *task_data;      /* a task's own keys (its config hook allocates, its free_config frees) */
} xv_finetune_config;

/* The dataset path policy of the config's images (image_root,
 * allow_outside_root), for the task data readers. */
static inline xv_fs_root xv_finetune_images(const xv_finetune_config *c) {
    return (xv_fs_root){.root = c->image_root, .allow_outside_root = c->allow_outside_root};
}

/* The official values for `task` (configs/Retrieval_coco.yaml,
 * Grounding_bbox.yaml); no files set. */
xv_finetune_config xv_finetune_config_default(const xv_finetune_task *task);

/* Read `path` for the task named `task` over the defaults; keys that do not
 * apply are noted to `notes` (may be NULL). */
xv_status xv_finetune_config_load(const char *path, const char *task, xv_finetune_config *out, FILE *notes);
/* Command-line flags over the YAML: each one given (not NULL, > 0) replaces
 * its key (test_file by that one file). */
xv_status xv_finetune_config_override(xv_finetune_config *c, const char *test_file, const char *image_root,
                                      const char *refcoco_data, int k_test);
void xv_finetune_config_free(xv_finetune_config *c);

typedef struct {
    const char *config_path;
    const char *init;        /* the initial model: a folder, a single-file model or an official
                                checkpoint (model/model_source.h), with its vocabulary */
    xv_infer_opts infer;     /* an official checkpoint's conversion hints (image_res, text_heads; 0: inferred) */
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

#define XV_FT_MAX_SCORES 40

/* One evaluation, as the task's official script reports it. */
typedef struct {
    /* named results with the official log keys (retrieval `val_txt_r1` ...
     * `test_r_mean`, grounding `val_d`, `testA_d`, `testB_d`), logged in each
     * "epoch" record */
    int n;
    char name[XV_FT_MAX_SCORES][32];
    double value[XV_FT_MAX_SCORES];
    /* the task's headline numbers (retrieval: test r_mean ITM re-ranked and
     * ITC-only; grounding: accuracy % at IoU >= 0.5 and mean IoU); NaN: none */
    double metric, aux;
    /* the official result dicts as one JSON object (result.json "before" and
     * "after"): retrieval {"val": itm_eval, "test": itm_eval}, grounding
     * {val_d, testA_d, testB_d, score} */
    char official[2048];
} xv_finetune_scores;

/* The value named `name`, NaN when absent. */
double xv_finetune_scores_get(const xv_finetune_scores *s, const char *name);

typedef struct {
    int64_t start_step, steps, total_steps; /* steps: done in all (resumes included) */
    double first_loss, last_loss; /* mean loss over the first / last 10 % of this call's steps */
    double seconds_train;
    /* the headline numbers (metric and aux of the scores) before (zero-shot)
     * and after; NaN when not evaluated */
    double metric_before, metric_after, aux_before, aux_after;
    int64_t best_epoch;  /* epoch (0-based) of model_best/; -1: none scored above 0 */
    double best_score;   /* its selection score (test_r_mean / val_d, test_d) */
    xv_finetune_scores before, after; /* before: n 0 when not evaluated */
    /* the signal (SIGINT, SIGTERM) that stopped the run after a step, with a
     * checkpoint to --resume from and no model/ or result.json; 0: none */
    int interrupted;
} xv_finetune_result;

/* `xvlm evaluate TASK --config YAML`: the task's evaluation of a model,
 * everything from the YAML (test_file, val_file, image_root, refcoco_data,
 * k_test, image_res, ...), the fields below only override. */
typedef struct {
    const char *config_path;
    const char *model;       /* a folder, a single-file model or an official checkpoint */
    const char *vocab;       /* another vocab.txt (NULL: the model's) */
    xv_infer_opts infer;     /* an official checkpoint's conversion hints (0: inferred) */
    const char *output_dir;  /* where per-sample result files go (grounding: result/grounding_bbox_eval.json,
                                with ref_id); NULL: none */
    const char *test_file;   /* overrides (NULL / 0: the YAML's) */
    const char *image_root;
    bool allow_outside_root; /* true: images may resolve outside the image root (false: the YAML's) */
    const char *refcoco_data;
    int k_test;
    FILE *notes;             /* config notes (may be NULL) */
} xv_finetune_eval_opts;

/* Score the model as the official script's --evaluate does, with the same
 * per-epoch evaluation as fine-tuning (the official names in out). */
xv_status xv_finetune_evaluate(const char *task, const xv_finetune_eval_opts *o, xv_finetune_scores *out);

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
 * count). SIGINT / SIGTERM stop the run after the current step with a
 * checkpoint (res->interrupted); a killed run (SIGKILL) loses at most the
 * epoch under way. */
xv_status xv_finetune_run(const char *task, const xv_finetune_opts *o, xv_finetune_result *res);

#endif
