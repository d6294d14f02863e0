/* What the fine-tuning files share (finetune.h is the public side):
 * finetune_step.c loads the model and the training data and runs one
 * update; finetune_eval.c scores the model in memory on the evaluation
 * files; finetune_run.c runs the epochs, logs, checkpoints and resumes. */
#ifndef XV_TRAIN_FINETUNE_INTERNAL_H
#define XV_TRAIN_FINETUNE_INTERNAL_H

#include "core/tensor.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/tokenizer.h"
#include "model/model.h"
#include "tasks/eval_data.h"
#include "tasks/eval_grounding.h"
#include "tasks/metrics.h"
#include "tasks/refer.h"
#include "train/adamw.h"
#include "train/finetune.h"
#include "train/schedule.h"

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
    xv_refer refer;   /* grounding with refcoco_data: REFER's boxes and splits (train and evaluation) */
    int32_t *order;   /* the epoch's sample order: shuffled in place at each epoch start */
    xv_rng data_seed; /* the data stream before the first shuffle (resume replays the shuffles) */
    xv_rng data, aug, neg;
    xv_graph *g;
    xv_adamw opt;
    bool opt_ready;
    xv_lr_schedule sched;
    int64_t steps_per_epoch; /* the official train loaders drop the last partial batch */
    /* one batch */
    float *pixels, *target;
    int32_t *idx, *neg_img, *neg_txt;
    char **clean;
} xv_ft;

/* The loss terms of one update (NaN: not a term of this task). */
typedef struct {
    double itc, itm, bbox, giou, total;
} xv_ft_losses;

/* Config, tokenizer, model (rescaled to the config's image_res), training
 * data, optimizer, schedule and random streams. */
xv_status xv_ft_setup(xv_ft *f, xv_finetune_task task);
void xv_ft_free(xv_ft *f);
/* Forward + backward + AdamW of batch number `b` of the epoch's order. */
xv_status xv_ft_train_step(xv_ft *f, int64_t b, xv_ft_losses *out);
/* DIR/{config.json, weights.safetensors, vocab.txt} of the model as it is now. */
xv_status xv_ft_write_model(const xv_ft *f, const char *dir);

/* ---- evaluation (finetune_eval.c) ---- */
#define XV_FT_MAX_SCORES 40

/* Named results with the official log keys: retrieval `<split>_txt_r1` ...
 * `<split>_r_mean` (Retrieval.py's itm_eval keys prefixed val_/test_),
 * grounding grounding_eval_bbox's fractions by REFER split (val_d, testA_d,
 * testB_d; without REFER the whole test file is `test_d`). */
typedef struct {
    int n;
    char name[XV_FT_MAX_SCORES][32];
    double value[XV_FT_MAX_SCORES];
    double metric, aux; /* test file: r_mean (ITM re-ranked) and ITC-only r_mean; accuracy (%) and mean IoU */
    /* the official dicts: retrieval itm_eval of val_file (has_val) and test_file; grounding the split dict */
    bool has_val;
    xv_retrieval_result val, test;
    xv_grounding_splits splits;
} xv_ft_scores;

/* Score the model as it is now on every evaluation split. Grounding also
 * writes the per-expression results to OUTPUT_DIR/result/<results_name>.json
 * (collect_tensor_result's zero_shot / epochN; NULL: none). */
xv_status xv_ft_evaluate(xv_ft *f, const char *results_name, xv_ft_scores *out);
/* The score the official script keeps the best epoch by: Retrieval.py
 * `test_r_mean`, Grounding_bbox.py `val_d` (the test file's `test_d` without
 * REFER splits). NaN when absent; *name gets its key. */
double xv_ft_selection(const xv_ft *f, const xv_ft_scores *s, const char **name);
/* The per-epoch table (one row per split) to `out`. */
void xv_ft_print_scores(const xv_ft *f, const xv_ft_scores *s, FILE *out);

#endif
