/* What the two captioning fine-tuning tasks share: "captioning"
 * (Captioning.py, finetune_captioning.c) and "captioning_scst"
 * (Captioning_scst.py, finetune_caption_scst.c) read the same YAML keys,
 * start from the same model, read the same training file and are evaluated
 * the same way; they differ in the loss. */
#ifndef XV_TRAIN_FINETUNE_CAPTIONING_H
#define XV_TRAIN_FINETUNE_CAPTIONING_H

#include "train/finetune_task.h"

/* The captioning keys of the task YAML (cfg->task_data). */
typedef struct {
    char *prompt;            /* prompt: 'a picture of ' */
    double label_smoothing;  /* label_smoothing: 0.1 */
    int num_beams, max_length, min_length; /* 3, 20, 5: the evaluation's beam search */
    /* Captioning_scst.yaml */
    int sc_train_sample_n;   /* sc_train_sample_n: sampled captions per image (5) */
    bool sc_baseline_sample; /* sc_baseline_type 'sample' (the mean of the other samples); 'greedy' (default): the
                                greedy caption */
} xv_caption_keys;

/* The training entries {image, caption} of every train_file, one sample each
 * (strings borrowed from the parsed files). */
typedef struct {
    struct cJSON *files[16];
    int n_files;
    const char **caption; /* [n] */
    char **paths;         /* [n] image_root/image */
    int64_t *path_of;     /* [n] = i */
    int64_t n;
} xv_caption_train_set;

xv_status xv_caption_train_set_read(const xv_ft *f, xv_caption_train_set *t);
void xv_caption_train_set_free(xv_caption_train_set *t);

/* The prompt's ids without [SEP] (the official prompt_length counts them):
 * [CLS] + its pieces, malloc'd into *ids. */
xv_status xv_caption_prompt_ids(const xv_ft *f, int32_t **ids, int *len);

/* the hooks both tasks use (finetune_task.h) */
extern const char *const xv_caption_yaml_keys[];
xv_status xv_caption_read_config(const xv_yaml_node *root, xv_finetune_config *cfg);
void xv_caption_free_config(xv_finetune_config *cfg);
xv_status xv_caption_open_model(xv_ft *f);
xv_status xv_caption_write_model(const xv_ft *f, const char *dir);
void xv_caption_free_model(xv_ft *f);
xv_status xv_caption_evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out);
void xv_caption_print_scores(const xv_finetune_scores *s, FILE *out);

/* The fields of both task definitions (xv_finetune_task initialisers):
 * keys, model, and the evaluation with its CIDEr-D selection (--evaluate
 * writes result/test_eval.json, as Captioning.py). */
#define XV_CAPTION_TASK_COMMON                                                                                   \
    .batch_key = "batch_size_train", .keys = xv_caption_yaml_keys, .read_config = xv_caption_read_config,       \
    .free_config = xv_caption_free_config, .open_model = xv_caption_open_model,                                 \
    .write_model = xv_caption_write_model, .free_model = xv_caption_free_model
#define XV_CAPTION_TASK_EVALUATION                                                                               \
    .evaluate = xv_caption_evaluate, .eval_results_name = "test_eval", .selection = {"test_CIDEr"}, .selection_digits = 4, .metric_key = "cider_d", \
    .aux_key = "bleu_4", .metric_label = "CIDEr-D", .print_scores = xv_caption_print_scores

#endif
