/* Scoring the model being fine-tuned, in memory, with the official result
 * names (finetune_internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "tasks/eval_grounding.h"
#include "tasks/eval_retrieval.h"
#include "train/finetune_internal.h"

/* One evaluation split: its official name and files. Retrieval.py scores
 * val_file ("val") and test_file ("test"); Grounding_bbox.py scores
 * test_file once and grounding_eval_bbox splits it by REFER split. */
typedef struct {
    const char *name;
    const xv_path_list *files;
} split;

static int splits_of(const xv_ft *f, split out[2]) {
    int n = 0;
    if (f->cfg.task == XV_FINETUNE_RETRIEVAL && f->cfg.val_file.n) out[n++] = (split){"val", &f->cfg.val_file};
    out[n++] = (split){"test", &f->cfg.test_file};
    return n;
}

static void put(xv_ft_scores *s, const char *split_name, const char *key, double v) {
    if (s->n == XV_FT_MAX_SCORES) return;
    if (split_name) snprintf(s->name[s->n], sizeof s->name[s->n], "%s_%s", split_name, key);
    else snprintf(s->name[s->n], sizeof s->name[s->n], "%s", key);
    s->value[s->n++] = v;
}

static xv_status retrieval(xvlm_ctx *ctx, const xv_ft *f, const split *sp, xv_ft_scores *out, bool is_test) {
    xv_eval_retrieval_result r;
    xv_eval_retrieval_opts eo = xv_eval_retrieval_opts_default();
    eo.k_test = f->cfg.k_test;
    eo.max_words = f->cfg.max_words;
    eo.max_tokens = f->cfg.max_tokens;
    xv_status st = xv_eval_retrieval_files(ctx, (const char *const *)sp->files->paths, sp->files->n,
                                           f->cfg.image_root, &eo, &r);
    if (st == XV_OK) {
        const xv_retrieval_result *m = &r.itm; /* Retrieval.py's score: ITC top k_test re-ranked by ITM */
        const char *const keys[9] = {"txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1",
                                     "img_r5", "img_r10", "img_r_mean", "r_mean"};
        const double v[9] = {m->txt_r1, m->txt_r5, m->txt_r10, m->txt_r_mean, m->img_r1,
                             m->img_r5, m->img_r10, m->img_r_mean, m->r_mean};
        for (int k = 0; k < 9; k++) put(out, sp->name, keys[k], v[k]);
        if (is_test) out->test = *m, out->metric = m->r_mean, out->aux = r.itc.r_mean;
        else out->val = *m, out->has_val = true;
        xv_eval_retrieval_result_free(&r);
    }
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s split (%s)", sp->name, sp->files->paths[0]);
}

/* test_file through grounding_eval_bbox: val_d, testA_d, testB_d with REFER,
 * else the whole file as test_d; the per-expression results to
 * OUTPUT_DIR/result/<results_name>.json. */
static xv_status grounding(xvlm_ctx *ctx, const xv_ft *f, const split *sp, const char *results_name,
                           xv_ft_scores *out) {
    xv_eval_grounding_result r;
    xv_eval_grounding_opts eo = xv_eval_grounding_opts_default();
    eo.max_words = f->cfg.max_words;
    char *rdir = NULL, *rpath = NULL;
    xv_status st = XV_OK;
    if (results_name) {
        char name[64];
        snprintf(name, sizeof name, "%s.json", results_name);
        rdir = xv_fs_join(f->o->output_dir, "result");
        st = rdir && (rpath = xv_fs_join(rdir, name)) ? xv_fs_mkdir_p(rdir) : xv_error(XV_ERR_NOMEM, "out of memory");
    }
    if (st == XV_OK)
        st = xv_eval_grounding_files(ctx, (const char *const *)sp->files->paths, sp->files->n, f->cfg.image_root,
                                     f->cfg.refcoco_data ? &f->refer : NULL, &eo, rpath, &r, &out->splits);
    if (st == XV_OK) {
        if (f->cfg.refcoco_data) {
            put(out, NULL, "val_d", out->splits.val_d);
            put(out, NULL, "testA_d", out->splits.testA_d);
            put(out, NULL, "testB_d", out->splits.testB_d);
        } else {
            put(out, sp->name, "d", out->splits.score);
        }
        out->metric = r.accuracy, out->aux = r.mean_iou;
        xv_eval_grounding_result_free(&r);
    }
    free(rdir), free(rpath);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s split (%s)", sp->name, sp->files->paths[0]);
}

xv_status xv_ft_evaluate(xv_ft *f, const char *results_name, xv_ft_scores *out) {
    memset(out, 0, sizeof *out);
    out->metric = out->aux = NAN;
    out->splits.val_d = out->splits.testA_d = out->splits.testB_d = out->splits.score = NAN;
    /* the model in memory through the API's scoring (its own graph, no dropout) */
    struct xvlm_model mm = {.m = f->m, .tok = f->tok};
    xvlm_ctx *ctx = NULL;
    XV_TRY(xv_api_ctx_new(&mm, &ctx));
    split sp[2];
    const int n = splits_of(f, sp);
    xv_status st = XV_OK;
    for (int i = 0; i < n && st == XV_OK; i++) {
        if (f->cfg.task == XV_FINETUNE_RETRIEVAL) st = retrieval(ctx, f, &sp[i], out, !strcmp(sp[i].name, "test"));
        else st = grounding(ctx, f, &sp[i], results_name, out);
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
        /* grounding_eval_bbox's fractions */
        for (int i = 0; i < s->n; i++) fprintf(out, "  %s %.4f", s->name[i], s->value[i]);
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
