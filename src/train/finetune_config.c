/* Reading the shared keys of an official task YAML (finetune.h); the task's
 * own keys through its read_config hook (finetune_task.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/yaml_tree.h"
#include "nn/swin_config.h"
#include "train/finetune_task.h"
#include "train/schedule.h"

xv_finetune_config xv_finetune_config_default(const xv_finetune_task *task) {
    xv_finetune_config c = {
        .task = task,
        .batch_size = 20,
        .k_test = 256,
        .max_words = 30,
        .max_tokens = 40,
        .optim = xv_adamw_default(),
        .epochs = 10,
        .warmup = 0.1,
        .warmup_is_fraction = true,
        .careful_hflip = true,
    };
    c.optim.lr = 3e-5;  /* optimizer.lr of Retrieval_coco.yaml / Grounding_bbox.yaml */
    c.optim.lr_mult = 1; /* optim.py with an empty init_params list: nothing to multiply */
    return c;
}

/* A path or a list of paths, kept as written: relative ones are taken from
 * the working directory, as the official scripts and `xvlm pretrain` do. */
static xv_status get_paths(const xv_yaml_node *root, const char *key, bool required, xv_path_list *out) {
    if (required) XV_TRY(xv_yaml_require(root, key, "a path or a list of paths"));
    const char **paths = NULL;
    int n = 0;
    XV_TRY(xv_yaml_get_strings(root, key, &paths, &n));
    if (!paths) return XV_OK;
    xv_status st = n >= 1 ? XV_OK : xv_yaml_type_error(xv_yaml_get(root, key), "a path or a list of paths");
    if (st == XV_OK && !(out->paths = calloc((size_t)n, sizeof *out->paths)))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == XV_OK; i++)
        if ((out->paths[i] = strdup(paths[i]))) out->n = i + 1;
        else st = xv_error(XV_ERR_NOMEM, "out of memory");
    free(paths);
    return st;
}

/* One path as written (NULL when absent). */
static xv_status get_path(const xv_yaml_node *root, const char *key, char **out) {
    const char *s = NULL;
    XV_TRY(xv_yaml_get_string(root, key, &s));
    if (s && !(*out = strdup(s))) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static void path_list_free(xv_path_list *l) {
    for (int i = 0; l->paths && i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

xv_status xv_ft_config_path(const xv_yaml_node *root, const char *key, char **out) {
    return get_path(root, key, out);
}

static xv_status read_keys(const xv_yaml_node *root, xv_finetune_config *out) {
    const xv_finetune_task *task = out->task;
    XV_TRY(get_paths(root, task->train_key ? task->train_key : "train_file", true, &out->train_file));
    /* a training-only stage (NLVR_pretrain.py) evaluates nothing */
    XV_TRY(get_paths(root, "test_file", task->evaluate != NULL, &out->test_file));
    if (task->reads_val_file) XV_TRY(get_paths(root, "val_file", false, &out->val_file));
    XV_TRY(get_path(root, "image_root", &out->image_root));
    XV_TRY(get_path(root, "text_encoder", &out->text_encoder));
    XV_TRY(xv_yaml_get_bool(root, "allow_outside_root", &out->allow_outside_root));
    if (task->read_config) XV_TRY(task->read_config(root, out));
    XV_TRY(xv_yaml_get_int(root, "image_res", 1, XV_SWIN_MAX_IMAGE_RES, &out->image_res));
    if (task->batch_key) XV_TRY(xv_yaml_get_int(root, task->batch_key, 2, 65536, &out->batch_size));
    XV_TRY(xv_yaml_get_int(root, "k_test", 1, 1000000000, &out->k_test));
    XV_TRY(xv_yaml_get_int(root, "max_words", 1, 1000000000, &out->max_words));
    XV_TRY(xv_yaml_get_int(root, "max_tokens", 2, 1 << 16, &out->max_tokens));
    const xv_yaml_node *opt, *sch;
    XV_TRY(xv_yaml_get_map(root, "optimizer", &opt));
    XV_TRY(xv_yaml_get_map(root, "schedular", &sch));
    XV_TRY(xv_yaml_get_double(opt, "lr", 0, 1, &out->optim.lr));
    XV_TRY(xv_yaml_get_double(opt, "weight_decay", 0, 1, &out->optim.weight_decay));
    XV_TRY(xv_yaml_get_int(sch, "epochs", 1, 1000000000, &out->epochs));
    XV_TRY(xv_yaml_get_int(sch, "num_training_steps", 1, 1000000000, &out->num_training_steps));
    XV_TRY(xv_yaml_get_int(root, "eval_steps", 1, 1000000000, &out->eval_steps));
    return xv_schedule_read_warmup(sch, &out->warmup, &out->warmup_is_fraction);
}

/* Notes the keys no task knows: a key of another task (batch_size in a
 * Retrieval.yaml) is not noted, as the official configs share keys freely. */
static xv_status note_unknown(const xv_yaml_node *root, FILE *notes) {
    /* the shared keys, and those the official scripts build the model and the evaluation loaders
     * from: the model here comes whole from --init (text_encoder's vocab.txt when it has none) */
    static const char *const shared[] = {"train_file", "val_file", "test_file", "image_root", "allow_outside_root", "image_res",
                                         "k_test", "max_words", "max_tokens", "optimizer", "schedular",
                                         "text_encoder", "use_clip_vit", "use_swin", "vision_config", "patch_size",
                                         "use_roberta", "text_config", "embed_dim", "temp", "batch_size_test",
                                         "batch_size_test_text", "eval_steps"};
    const int n_shared = (int)(sizeof shared / sizeof *shared);
    int n = n_shared + 1;
    for (const xv_finetune_task *const *t = xv_finetune_tasks(); *t; t++)
        for (const char *const *k = (*t)->keys; k && *k; k++) n++;
    for (const xv_finetune_task *const *t = xv_finetune_tasks(); *t; t++) n++;
    const char **known = malloc((size_t)n * sizeof *known);
    if (!known) return xv_error(XV_ERR_NOMEM, "out of memory");
    int i = 0;
    for (; i < n_shared; i++) known[i] = shared[i];
    for (const xv_finetune_task *const *t = xv_finetune_tasks(); *t; t++) {
        if ((*t)->batch_key) known[i++] = (*t)->batch_key;
        for (const char *const *k = (*t)->keys; k && *k; k++) known[i++] = *k;
    }
    known[i] = NULL;
    xv_yaml_note_unknown(root, known, notes);
    free(known);
    return XV_OK;
}

xv_status xv_finetune_config_load(const char *path, const char *task, xv_finetune_config *out, FILE *notes) {
    const xv_finetune_task *t = xv_finetune_task_find(task);
    if (!t) {
        memset(out, 0, sizeof *out);
        return xv_error(XV_ERR_INVALID_ARG, "no fine-tuning task '%s' (%s)", task ? task : "(null)",
                        xv_finetune_task_names());
    }
    *out = xv_finetune_config_default(t);
    xv_yaml_node *root = NULL;
    XV_TRY(xv_yaml_load(path, &root));
    xv_status st = read_keys(root, out);
    if (st == XV_OK) st = note_unknown(root, notes);
    xv_yaml_free(root);
    if (st != XV_OK) xv_finetune_config_free(out);
    return st;
}

/* *dst = a copy of v (when v is not NULL). */
static xv_status replace(char **dst, const char *v) {
    if (!v) return XV_OK;
    char *copy = strdup(v);
    if (!copy) return xv_error(XV_ERR_NOMEM, "out of memory");
    free(*dst);
    *dst = copy;
    return XV_OK;
}

xv_status xv_finetune_config_override(xv_finetune_config *c, const char *test_file, const char *image_root,
                                      const char *refcoco_data, int k_test) {
    if (test_file) {
        char *one = NULL;
        XV_TRY(replace(&one, test_file));
        char **paths = malloc(sizeof *paths);
        if (!paths) {
            free(one);
            return xv_error(XV_ERR_NOMEM, "out of memory");
        }
        path_list_free(&c->test_file);
        paths[0] = one;
        c->test_file = (xv_path_list){paths, 1};
    }
    XV_TRY(replace(&c->image_root, image_root));
    XV_TRY(replace(&c->refcoco_data, refcoco_data));
    if (k_test > 0) c->k_test = k_test;
    return XV_OK;
}

void xv_finetune_config_free(xv_finetune_config *c) {
    if (c->task && c->task->free_config) c->task->free_config(c);
    path_list_free(&c->train_file);
    path_list_free(&c->val_file);
    path_list_free(&c->test_file);
    free(c->image_root);
    free(c->text_encoder);
    free(c->refcoco_data);
    free(c->det_file);
    free(c->coco_file);
    memset(c, 0, sizeof *c);
}
