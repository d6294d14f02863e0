/* Scoring the model being fine-tuned, in memory, through the task's
 * evaluate hook, and the named-score helpers the tasks share
 * (finetune_task.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "train/finetune_task.h"

void xv_ft_scores_put(xv_finetune_scores *s, const char *split_name, const char *key, double v) {
    if (s->n == XV_FT_MAX_SCORES) return;
    if (split_name) snprintf(s->name[s->n], sizeof s->name[s->n], "%s_%s", split_name, key);
    else snprintf(s->name[s->n], sizeof s->name[s->n], "%s", key);
    s->value[s->n++] = v;
}

void xv_ft_print_scores(const xv_finetune_scores *s, FILE *out) {
    for (int i = 0; i < s->n; i++) fprintf(out, "  %s %.4f", s->name[i], s->value[i]);
    fputc('\n', out);
}

double xv_finetune_scores_get(const xv_finetune_scores *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return s->value[i];
    return NAN;
}

void xv_ft_json_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

xv_status xv_ft_scores_set_official(xv_finetune_scores *s, cJSON *o) {
    const cJSON_bool ok = cJSON_PrintPreallocated(o, s->official, (int)sizeof s->official, false);
    cJSON_Delete(o);
    if (!ok) return xv_error(XV_ERR_INVALID_ARG, "fine-tuning: the result dict is longer than %zu bytes",
                             sizeof s->official);
    return XV_OK;
}

xv_status xv_ft_result_path(const xv_ft *f, const char *results_name, char **out) {
    *out = NULL;
    if (!results_name || !f->o->output_dir || xv_dist_rank() != 0) return XV_OK; /* rank 0 alone writes */
    char name[64];
    snprintf(name, sizeof name, "%s.json", results_name);
    char *dir = xv_fs_join(f->o->output_dir, "result");
    xv_status st = dir && (*out = xv_fs_join(dir, name)) ? xv_fs_mkdir_p(dir) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(dir);
    return st;
}

xv_status xv_ft_evaluate(xv_ft *f, const char *results_name, xv_finetune_scores *out) {
    memset(out, 0, sizeof *out);
    out->metric = out->aux = NAN;
    snprintf(out->official, sizeof out->official, "{}");
    if (!f->task->evaluate)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: a training-only stage (the official script evaluates nothing)",
                        f->task->name);
    /* the model in memory through the API's scoring (its own graph, no dropout) */
    struct xvlm_model mm = {.m = f->m, .tok = f->tok};
    xvlm_ctx *ctx = NULL;
    if (f->m) XV_TRY(xv_api_ctx_new(&mm, &ctx)); /* a task with its own model reads f->task_model */
    xv_status st = f->task->evaluate(f, ctx, results_name, out);
    xvlm_ctx_free(ctx);
    return st;
}

double xv_ft_selection(const xv_ft *f, const xv_finetune_scores *s, const char **name) {
    double v = NAN;
    *name = f->task->selection[0];
    for (int k = 0; k < 2 && f->task->selection[k] && isnan(v); k++)
        v = xv_finetune_scores_get(s, *name = f->task->selection[k]);
    return v;
}

xv_status xv_finetune_evaluate(const char *task, const xv_finetune_eval_opts *eo, xv_finetune_scores *out) {
    memset(out, 0, sizeof *out);
    if (!eo->config_path || !eo->model)
        return xv_error(XV_ERR_INVALID_ARG, "evaluation: a task config and a model are needed");
    xv_finetune_opts o = xv_finetune_opts_default();
    o.config_path = eo->config_path, o.init = eo->model, o.output_dir = eo->output_dir, o.notes = eo->notes;
    o.infer = eo->infer;
    xv_ft f;
    memset(&f, 0, sizeof f);
    f.o = &o;
    xv_status st = xv_finetune_config_load(eo->config_path, task, &f.cfg, eo->notes);
    f.task = f.cfg.task;
    if (st == XV_OK) st = xv_finetune_config_override(&f.cfg, eo->test_file, eo->image_root, eo->refcoco_data,
                                                      eo->k_test);
    if (eo->allow_outside_root) f.cfg.allow_outside_root = true;
    if (st == XV_OK && f.task->open_model) { /* a task with its own model (VQA, captioning) */
        st = xv_ft_open_vocab(&f, eo->model, eo->vocab);
        if (st == XV_OK) st = f.task->open_model(&f);
    } else if (st == XV_OK) {
        st = xv_ft_open_model(&f, eo->model, eo->vocab);
    }
    if (st == XV_OK) st = xv_ft_evaluate(&f, f.task->eval_results_name, out);
    xv_ft_free(&f);
    return st;
}
