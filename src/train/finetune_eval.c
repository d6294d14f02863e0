/* Scoring the model being fine-tuned, in memory, with the official result
 * names (finetune_internal.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tasks/eval_grounding.h"
#include "tasks/eval_retrieval.h"
#include "train/finetune_internal.h"

/* One evaluation split: its official name and file. The test file is the
 * "test" split; val_file joins here as "val" once the config reads it. */
typedef struct {
    const char *name, *file;
} split;

static int splits_of(const xv_ft *f, split out[2]) {
    out[0] = (split){"test", f->cfg.test_file};
    return 1;
}

static void put(xv_ft_scores *s, const char *split_name, const char *key, double v) {
    if (s->n == XV_FT_MAX_SCORES) return;
    snprintf(s->name[s->n], sizeof s->name[s->n], "%s_%s", split_name, key);
    s->value[s->n++] = v;
}

static xv_status retrieval(xvlm_ctx *ctx, const xv_ft *f, const split *sp, const char *root, xv_ft_scores *out,
                           bool is_test) {
    xv_retrieval_set set;
    xv_eval_retrieval_result r;
    xv_eval_retrieval_opts eo = xv_eval_retrieval_opts_default();
    eo.k_test = f->cfg.k_test;
    eo.max_words = f->cfg.max_words;
    eo.max_tokens = f->cfg.max_tokens;
    XV_TRY(xv_retrieval_set_read(sp->file, root, &set));
    xv_status st = xv_eval_retrieval(ctx, &set, &eo, &r);
    if (st == XV_OK) {
        const xv_retrieval_result *m = &r.itm; /* Retrieval.py's score: ITC top k_test re-ranked by ITM */
        const char *const keys[9] = {"txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1",
                                     "img_r5", "img_r10", "img_r_mean", "r_mean"};
        const double v[9] = {m->txt_r1, m->txt_r5, m->txt_r10, m->txt_r_mean, m->img_r1,
                             m->img_r5, m->img_r10, m->img_r_mean, m->r_mean};
        for (int k = 0; k < 9; k++) put(out, sp->name, keys[k], v[k]);
        if (is_test) out->metric = m->r_mean, out->aux = r.itc.r_mean;
        xv_eval_retrieval_result_free(&r);
    }
    xv_retrieval_set_free(&set);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s split (%s)", sp->name, sp->file);
}

static xv_status grounding(xvlm_ctx *ctx, const xv_ft *f, const split *sp, const char *root, xv_ft_scores *out,
                           bool is_test) {
    xv_grounding_set set;
    xv_eval_grounding_result r;
    xv_eval_grounding_opts eo = xv_eval_grounding_opts_default();
    eo.max_words = f->cfg.max_words;
    XV_TRY(xv_grounding_set_read(sp->file, root, &set));
    xv_status st = xv_eval_grounding(ctx, &set, NULL, &eo, &r);
    if (st == XV_OK) {
        put(out, sp->name, "d", r.accuracy);
        if (is_test) out->metric = r.accuracy, out->aux = r.mean_iou;
        xv_eval_grounding_result_free(&r);
    }
    xv_grounding_set_free(&set);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s split (%s)", sp->name, sp->file);
}

xv_status xv_ft_evaluate(xv_ft *f, xv_ft_scores *out) {
    memset(out, 0, sizeof *out);
    out->metric = out->aux = NAN;
    /* the model in memory through the API's scoring (its own graph, no dropout) */
    struct xvlm_model mm = {.m = f->m, .tok = f->tok};
    xvlm_ctx *ctx = NULL;
    XV_TRY(xv_api_ctx_new(&mm, &ctx));
    split sp[2];
    const int n = splits_of(f, sp);
    xv_status st = XV_OK;
    for (int i = 0; i < n && st == XV_OK; i++) {
        char *root = xv_ft_image_root(f, sp[i].file);
        const bool is_test = !strcmp(sp[i].name, "test");
        if (!root) st = xv_error(XV_ERR_NOMEM, "out of memory");
        else if (f->cfg.task == XV_FINETUNE_RETRIEVAL) st = retrieval(ctx, f, &sp[i], root, out, is_test);
        else st = grounding(ctx, f, &sp[i], root, out, is_test);
        free(root);
    }
    xvlm_ctx_free(ctx);
    return st;
}

static double find(const xv_ft_scores *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return s->value[i];
    return NAN;
}

double xv_ft_selection(const xv_ft *f, const xv_ft_scores *s, const char **name) {
    /* Retrieval.py keeps checkpoint_best by the test r_mean (not val's) */
    *name = f->cfg.task == XV_FINETUNE_RETRIEVAL ? "test_r_mean" : "val_d";
    double v = find(s, *name);
    if (isnan(v) && f->cfg.task == XV_FINETUNE_GROUNDING) v = find(s, *name = "test_d");
    return v;
}

void xv_ft_print_scores(const xv_ft *f, const xv_ft_scores *s, FILE *out) {
    if (f->cfg.task == XV_FINETUNE_GROUNDING) {
        for (int i = 0; i < s->n; i++) fprintf(out, "%s%s %.2f", i ? "  " : "  ", s->name[i], s->value[i]);
        fputc('\n', out);
        return;
    }
    fprintf(out, "  %-6s %7s %7s %7s %7s %7s %7s %7s\n", "split", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5",
            "img_r10", "r_mean");
    for (int i = 0; i + 9 <= s->n; i += 9) {
        const double *v = s->value + i;
        int len = (int)(strchr(s->name[i], '_') - s->name[i]);
        fprintf(out, "  %-6.*s %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f\n", len, s->name[i], v[0], v[1], v[2], v[4],
                v[5], v[6], v[8]);
    }
}
