/* The per-task side of fine-tuning: what a task supplies to the shared epoch
 * loop (finetune_run.c), and the run state the loop hands it (xv_ft).
 *
 * How a new task plugs in (VQA, captioning, NLVR2, ...):
 *  1. write src/train/finetune_<task>.c defining `const xv_finetune_task
 *     xv_ft_<task> = {.name = "<task>", ...}` with the hooks below (keep its
 *     data and buffers in its own struct behind f->task_state);
 *  2. declare it and add `&xv_ft_<task>` to the table in finetune_tasks.c.
 * `xvlm finetune <task>` (log, checkpoints, resume, model_best/, model/,
 * result.json) and `xvlm evaluate <task> --config` then come as they are. */
#ifndef XV_TRAIN_FINETUNE_TASK_H
#define XV_TRAIN_FINETUNE_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"
#include "core/tensor.h"
#include "data/image.h"
#include "data/jsonl.h"
#include "data/pretrain_sample.h"
#include "data/tokenizer.h"
#include "io/yaml_tree.h"
#include "model/model.h"
#include "model/model_folder.h"
#include "train/adamw.h"
#include "train/finetune.h"
#include "train/param_groups.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "xvlm.h"

#define XV_FT_MAX_TERMS 4

/* The run state shared by the loop and the task. */
typedef struct xv_ft {
    const xv_finetune_opts *o;
    const xv_finetune_task *task;
    xv_finetune_config cfg;
    xv_model *m;       /* the X-VLM model; NULL for a task with its own (open_model) */
    void *task_model;  /* that task's own model (VQA, captioning) */
    xv_params *params; /* what the optimizer trains and checkpoints: m's or the task model's */
    xv_init_params large_lr; /* trained at lr·lr_mult (the task model's init_params; n 0: none) */
    xv_tokenizer *tok;
    xv_model_vocab vocab; /* the model's vocab.txt, written with every model folder */
    int res;         /* the model's image_res after loading (the config's, when it sets one) */
    int64_t n;       /* training samples (set by the task's setup) */
    int32_t *perm;   /* the epoch's order of all n samples: shuffled in place at each epoch start, the
                        same on every rank */
    int32_t *order;  /* this rank's samples of the epoch ([n_mine]): what the loss hook reads. Under
                        mpirun DistributedSampler's shard, perm padded from its start to a multiple of
                        the world, every world-th from the rank's index; in one process perm itself */
    int64_t n_mine;
    xv_rng data_seed; /* the data stream before the first shuffle (resume replays the shuffles) */
    /* random streams (checkpointed): data order (seeded with the seed on
     * every rank), augmentation, the task's own draws (retrieval's hard
     * negatives), and dropout inside the graph (seed + rank, as the official
     * scripts seed each rank) */
    xv_rng data, aug, neg;
    xv_graph *g;
    xv_adamw opt;
    bool opt_ready;
    xv_lr_schedule sched;
    int64_t steps_per_epoch; /* n_mine / batch: the official train loaders drop the last partial batch */
    int64_t eval_every;      /* steps between evaluations: steps_per_epoch, or the YAML's eval_steps */
    int64_t total_steps;     /* epochs · steps_per_epoch, or the YAML's num_training_steps */
    void *task_state;        /* the task's training data and batch buffers */
} xv_ft;

struct xv_finetune_task {
    const char *name;   /* the CLI's word and result.json's "task": "retrieval" */
    const char *train_key;    /* the key of the training files (NULL: "train_file") */
    /* ---- the task YAML ---- */
    const char *batch_key;    /* the key of the training batch size: "batch_size_train" */
    bool reads_val_file;      /* val_file is evaluated each epoch next to test_file */
    const char *const *keys;  /* the task's own keys beyond the shared ones (NULL-terminated; NULL: none) */
    /* Read the task's own keys of `root` into cfg (task keys or cfg->task_data);
     * NULL: none. Errors name the file, line and key (yaml_tree.h getters). */
    xv_status (*read_config)(const xv_yaml_node *root, xv_finetune_config *cfg);
    void (*free_config)(xv_finetune_config *cfg); /* frees cfg->task_data; NULL: nothing to free */
    /* ---- a model of the task's own (NULL: the X-VLM model from --init) ----
     * Load it from f->o->init (at f->cfg.image_res when set) into
     * f->task_model, setting f->params and f->res; write it as a model folder;
     * free it. */
    xv_status (*open_model)(xv_ft *f);
    xv_status (*write_model)(const xv_ft *f, const char *dir);
    void (*free_model)(xv_ft *f);
    /* ---- training ---- */
    int n_terms;
    const char *terms[XV_FT_MAX_TERMS]; /* the loss terms' official names ("loss_itc"): the epoch
                                           record's train_<term> means */
    /* Check the model's parts, read the training data (f->cfg's files),
     * allocate f->task_state and set f->n, the number of training samples. */
    xv_status (*setup)(xv_ft *f);
    /* The loss of batch number `b` of f->order (samples order[b*B .. b*B+B-1])
     * on f->g, which is reset, in training mode, with gradients on; term[k]
     * gets terms[k]'s value. `rec` gets the update record's kind and loss
     * fields (train_log.h); the loop fills the rest. */
    xv_status (*loss)(xv_ft *f, int64_t b, xv_tensor **loss, double term[XV_FT_MAX_TERMS], xv_update_record *rec);
    void (*free)(xv_ft *f); /* frees f->task_state */
    /* ---- evaluation ---- */
    /* Score the model as it is now (ctx: the model in memory, no dropout;
     * NULL for a task with its own model, which reads f->task_model) on
     * every evaluation split; results_name ("zero_shot", "epochN", or
     * eval_results_name) names the per-sample result file the task may write
     * under OUTPUT_DIR/result/ (xv_ft_result_path). Runs without setup too
     * (xvlm evaluate): f->task_state is then NULL; f->cfg, f->m, f->tok and
     * f->o->output_dir are set. */
    xv_status (*evaluate)(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out);
    /* The score the official script keeps the best epoch by: the first of
     * these names the scores hold (Grounding_bbox.py: val_d, else test_d). */
    const char *eval_results_name; /* the official --evaluate result file: "grounding_bbox_eval" */
    const char *selection[2];
    int selection_digits;  /* decimals when printed: 2 for percentages, 4 for fractions */
    /* result.json's and the summary's names of the headline numbers */
    const char *metric_key, *aux_key, *metric_label;
    /* the per-epoch table (one row per split) */
    void (*print_scores)(const xv_finetune_scores *s, FILE *out);
};

/* The built-in tasks, and all of them NULL-terminated (finetune_tasks.c). */
extern const xv_finetune_task xv_ft_retrieval, xv_ft_grounding, xv_ft_vqa, xv_ft_captioning, xv_ft_nlvr;
extern const xv_finetune_task xv_ft_captioning_scst, xv_ft_nlvr_pretrain, xv_ft_bbox_pretrain, xv_ft_weak_grounding;
const xv_finetune_task *const *xv_finetune_tasks(void);

/* ---- shared by the tasks (finetune_config.c, finetune_step.c, finetune_eval.c) ---- */

/* A path key of the task YAML as written (NULL when absent), for read_config. */
xv_status xv_ft_config_path(const xv_yaml_node *root, const char *key, char **out);

/* The training images, decoded once, and one batch's pixels and texts: the
 * part of the task state that image-text tasks share. */
typedef struct {
    xv_image *images;  /* each distinct image file once */
    int n_images;
    int32_t *img_of;   /* [samples] index into images */
    int batch, res;
    float *pixels;     /* [batch, 3, res, res] */
    char **clean;      /* [batch] pre_caption'd texts */
    xv_text_batch tb;  /* their tokens; alive until the next batch (the graph wraps them) */
} xv_ft_batch;

/* Decode paths[0..n_paths) (sample i shows paths[path_of[i]], n samples) and
 * allocate the buffers of f's batch size and resolution. */
xv_status xv_ft_batch_init(xv_ft_batch *b, const xv_ft *f, char *const *paths, int64_t n_paths,
                           const int64_t *path_of, int64_t n);
/* clean[i] = pre_caption(text, f's max_words); frees the previous one. */
xv_status xv_ft_batch_caption(xv_ft_batch *b, const xv_ft *f, int i, const char *text);
/* tb from clean[0..batch), [CLS] + tokens cut to max_tokens (0: the model's positions). */
xv_status xv_ft_batch_encode(xv_ft_batch *b, const xv_ft *f, int max_tokens);
/* The batch's pixels and tokens through the vision and text encoders on f->g:
 * *ve image embeddings, *te text embeddings, *atts the attention mask. */
xv_status xv_ft_batch_encoders(const xv_ft_batch *b, xv_ft *f, xv_tensor **ve, xv_tensor **te, xv_tensor **atts);
void xv_ft_batch_free(xv_ft_batch *b);
/* Every score on one line, "  name value" (a task's print_scores). */
void xv_ft_print_scores(const xv_finetune_scores *s, FILE *out);
/* Append `split_name`_`key` (or `key` when split_name is NULL) = v. */
void xv_ft_scores_put(xv_finetune_scores *s, const char *split_name, const char *key, double v);
/* A number for JSON: null when not finite (NaN is not JSON). */
struct cJSON;
void xv_ft_json_num(struct cJSON *o, const char *key, double v);
/* `o` printed into s->official (unformatted), then deleted. */
xv_status xv_ft_scores_set_official(xv_finetune_scores *s, struct cJSON *o);
/* OUTPUT_DIR/result/<results_name>.json, its folder made (*out malloc'd;
 * NULL when results_name is NULL, and on every rank but 0 under mpirun). */
xv_status xv_ft_result_path(const xv_ft *f, const char *results_name, char **out);

/* ---- the training-only stages' corpus (finetune_corpus.c) ---- */

/* The JSON-lines corpus of NLVR_pretrain.py / Grounding_bbox_pretrain.py
 * (f->cfg.train_file), every record parsed once, and the pretraining sample
 * pipeline over it (data/pretrain_sample.h: xv_sample_image_text,
 * xv_sample_region) on f's tokenizer, resolution, image root and "augment"
 * stream; the MLM masks it also makes are ignored, as officially. */
typedef struct {
    xv_file_list files; /* where[].path points into it */
    cJSON **recs;
    xv_jsonl_where *where;
    int64_t n;
    xv_sample_shared sh;
    xv_pretrain_counters count;
    int warn_budget;
    xv_sampler s;
} xv_ft_corpus;

/* `data`: the loader settings (image_key, caption_key, is_image_rpath,
 * crop_scale, regions); the rest comes from f. */
xv_status xv_ft_corpus_open(xv_ft *f, const xv_pretrain_config *data, const char *label, xv_ft_corpus *c);
void xv_ft_corpus_free(xv_ft_corpus *c);

/* The paired-layout model the NLVR2 stages train (finetune_nlvr.c), made from
 * f->m in place: to_nlvr: an NLVR2 model (kept), from the text-assignment
 * model or a pretraining one; false: the text-assignment model, from a
 * pretraining one. New heads are drawn from --seed. */
xv_status xv_ft_init_paired(xv_ft *f, bool to_nlvr);

/* ---- for the tasks with their own model (finetune_json.c) ---- */

/* A JSON list file (data/jsonl.h's xv_json_read_list: an error names the
 * file, and the line of trailing bytes). */
xv_status xv_ft_read_json_list(const char *path, struct cJSON **out);
/* OUTPUT_DIR/name for a scratch file of this process: OUTPUT_DIR/rank<r>.name
 * under mpirun, where every rank writes its own (malloc'd). */
char *xv_ft_scratch_path(const xv_ft *f, const char *name);
/* The image `name` of entry `entry` of `file` under the dataset path policy
 * (tasks/eval_data.h's xv_dataset_image_path) with `root` (NULL: the YAML's
 * image_root) and the YAML's allow_outside_root; malloc'd into *out. A
 * refusal names the file and the entry. */
xv_status xv_ft_image_path(const xv_finetune_config *cfg, const char *root, const char *name, const char *file,
                           int entry, char **out);
/* OUTPUT_DIR/init_weights.safetensors, its folder made: where the task model
 * made from a pretraining --init is kept (*out malloc'd; NULL without an
 * output folder, when only a model of the task's kind opens). */
xv_status xv_ft_init_scratch(const xv_ft *f, char **out);
/* The task model as a model folder: cfg, f->params and --init's vocab.txt. */
xv_status xv_ft_write_task_model(const xv_ft *f, const xv_model_config *cfg, const char *dir);

/* ---- the loop's side (finetune_step.c, finetune_eval.c) ---- */

/* The model named by `arg` (a folder, a single-file model or an official
 * checkpoint) at f->cfg's image_res, with its vocabulary (`vocab`: another
 * vocab.txt; NULL: the model's). */
xv_status xv_ft_open_model(xv_ft *f, const char *arg, const char *vocab);
/* Only the vocabulary and tokenizer of that model (f->vocab, f->tok). */
xv_status xv_ft_open_vocab(xv_ft *f, const char *arg, const char *vocab);
/* Config, tokenizer, model (rescaled to the config's image_res), the task's
 * training data, optimizer, schedule and random streams. */
xv_status xv_ft_setup(xv_ft *f, const char *task);
void xv_ft_free(xv_ft *f);
/* The epoch's start: perm shuffled by the data stream, this rank's order
 * taken from it. */
void xv_ft_shuffle(xv_ft *f);
/* The evaluation rounds that end at or before `step`. A round ends, as the
 * official loops break, at every eval_every steps, at every epoch's end and
 * at the last step (Captioning_scst.py: a multiple of eval_steps, the loader
 * exhausted, num_training_steps reached); without eval_steps a round is an
 * epoch. */
int64_t xv_ft_rounds_through(const xv_ft *f, int64_t step);
static inline bool xv_ft_round_ends(const xv_ft *f, int64_t step) {
    return step % f->eval_every == 0 || step % f->steps_per_epoch == 0 || step == f->total_steps;
}
/* Forward + backward (gradients averaged over the ranks) + AdamW of batch
 * number `b` of the rank's order;
 * term[] as the task's loss hook, *total the loss, rec the update's loss fields. */
xv_status xv_ft_train_step(xv_ft *f, int64_t b, double term[XV_FT_MAX_TERMS], xv_update_record *rec);
/* DIR/{config.json, weights.safetensors, vocab.txt} of the model as it is now. */
xv_status xv_ft_write_model(const xv_ft *f, const char *dir);
/* Score the model as it is now through the task's evaluate hook. */
xv_status xv_ft_evaluate(xv_ft *f, const char *results_name, xv_finetune_scores *out);
/* The task's selection score (NaN when absent); *name gets its key. */
double xv_ft_selection(const xv_ft *f, const xv_finetune_scores *s, const char **name);

#endif
