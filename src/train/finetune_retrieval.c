/* Retrieval fine-tuning, as the official Retrieval.py with
 * models/model_retrieval.py (§9.1), behind finetune_task.h.
 *
 * Training entries {image, caption, image_id} of every train_file, one
 * (image, caption) pair per sample; fine-tuning train transform
 * (RandomResizedCrop scale 0.5..1, flip, RandAug 10 ops); pre_caption(30);
 * [CLS] + tokens cut to max_tokens, padded to the longest. Loss = ITC with
 * idx = image_id (same-image pairs are positives) + ITM whose hard negatives
 * skip same-image pairs. temp is trained and never clamped. Evaluation: the
 * Retrieval.py score (ITC top k_test re-ranked by ITM) of val_file and
 * test_file; the best epoch has the best test r_mean. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/transforms.h"
#include "model/losses.h"
#include "ops/ops.h"
#include "tasks/eval_data.h"
#include "tasks/eval_retrieval.h"
#include "train/finetune_task.h"

typedef struct {
    xv_retrieval_set set;
    xv_ft_batch b;
    int32_t *idx, *neg_img, *neg_txt; /* [batch] each: the image of each pair, the hard negatives */
} retrieval;

/* Entries of the same image file are one image (as image_id groups them in
 * the official files), so idx = the image's index. */
static xv_status setup(xv_ft *f) {
    const xv_model_parts *p = &f->m->parts;
    if (!p->itc || !p->itm)
        return xv_error(XV_ERR_INVALID_ARG, "%s: retrieval fine-tuning needs vision_proj/text_proj/temp and itm_head",
                        f->o->init);
    retrieval *t = calloc(1, sizeof *t);
    if (!(f->task_state = t)) return xv_error(XV_ERR_NOMEM, "out of memory");
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    XV_TRY(xv_retrieval_set_read_files((const char *const *)f->cfg.train_file.paths, f->cfg.train_file.n,
                                       &images, &t->set));
    f->n = t->set.n_texts;
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    XV_TRY(xv_ft_batch_init(&t->b, f, t->set.image_paths, t->set.n_images, t->set.txt2img, f->n));
    const int B = f->cfg.batch_size;
    if (!(t->idx = malloc((size_t)B * 3 * sizeof *t->idx))) return xv_error(XV_ERR_NOMEM, "out of memory");
    t->neg_img = t->idx + B, t->neg_txt = t->idx + 2 * B;
    return XV_OK;
}

static void task_free(xv_ft *f) {
    retrieval *t = f->task_state;
    if (!t) return;
    xv_retrieval_set_free(&t->set);
    xv_ft_batch_free(&t->b);
    free(t->idx);
    free(t);
    f->task_state = NULL;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    retrieval *t = f->task_state;
    const int B = f->cfg.batch_size, R = f->res;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        t->idx[i] = t->b.img_of[s];
        XV_TRY(xv_ft_batch_caption(&t->b, f, i, t->set.texts[s]));
        XV_TRY(xv_transform_train(&f->aug, &t->b.images[t->b.img_of[s]], R, XV_TRAIN_FINETUNE,
                                  t->b.pixels + (size_t)i * 3 * R * R));
    }
    XV_TRY(xv_ft_batch_encode(&t->b, f, f->cfg.max_tokens));
    xv_graph *g = f->g;
    xv_tensor *ve, *te, *atts;
    XV_TRY(xv_ft_batch_encoders(&t->b, f, &ve, &te, &atts));
    xv_tensor *idx = xv_tensor_wrap_i32(g, t->idx, XV_SHAPE(B));
    xv_tensor *sim = NULL;
    xv_tensor *itc = xv_itc_loss(g, f->m, xv_model_image_feat(g, f->m, ve), xv_model_text_feat(g, f->m, te), idx, &sim);
    XV_TRY(xv_graph_status(g));
    XV_TRY(xv_itm_sample_negatives(sim->data, B, t->idx, &f->neg, t->neg_img, t->neg_txt));
    xv_tensor *ni = xv_tensor_wrap_i32(g, t->neg_img, XV_SHAPE(B));
    xv_tensor *nt = xv_tensor_wrap_i32(g, t->neg_txt, XV_SHAPE(B));
    xv_tensor *itm = xv_itm_loss(g, f->m, ve, NULL, te, atts, ni, nt, NULL, NULL);
    *out = xv_add(g, itc, itm);
    XV_TRY(xv_graph_status(g));
    rec->region = false;
    term[0] = rec->loss_itc = itc->data[0];
    term[1] = rec->loss_itm = itm->data[0];
    return XV_OK;
}

/* itm_eval's dict (Retrieval.py). */
static cJSON *recall_dict(const xv_retrieval_result *d) {
    cJSON *o = cJSON_CreateObject();
    double v[XV_RECALL_N];
    xv_recall_values(d, v);
    for (int i = 0; o && i < XV_RECALL_N; i++) xv_ft_json_num(o, xv_recall_keys[i], v[i]);
    return o;
}

/* One split: `name`_txt_r1 ... `name`_r_mean, its itm_eval dict into `dicts`. */
static xv_status score_split(xvlm_ctx *ctx, const xv_ft *f, const char *name, const xv_path_list *files,
                             xv_finetune_scores *out, cJSON *dicts) {
    xv_eval_retrieval_result r;
    xv_eval_retrieval_opts eo = xv_eval_retrieval_opts_default();
    eo.k_test = f->cfg.k_test;
    eo.max_words = f->cfg.max_words;
    eo.max_tokens = f->cfg.max_tokens;
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    xv_status st = xv_eval_retrieval_files(ctx, (const char *const *)files->paths, files->n, &images, &eo,
                                           &r);
    if (st != XV_OK) return xv_error_wrap(st, "%s split (%s)", name, files->paths[0]);
    const xv_retrieval_result *m = &r.itm; /* Retrieval.py's score: ITC top k_test re-ranked by ITM */
    double v[XV_RECALL_N];
    xv_recall_values(m, v);
    for (int k = 0; k < XV_RECALL_N; k++) xv_ft_scores_put(out, name, xv_recall_keys[k], v[k]);
    if (!strcmp(name, "test")) out->metric = m->r_mean, out->aux = r.itc.r_mean;
    cJSON_AddItemToObject(dicts, name, recall_dict(m));
    xv_eval_retrieval_result_free(&r);
    return XV_OK;
}

static xv_status evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    (void)results_name; /* Retrieval.py writes no per-sample results */
    cJSON *dicts = cJSON_CreateObject();
    if (!dicts) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = XV_OK;
    if (f->cfg.val_file.n) st = score_split(ctx, f, "val", &f->cfg.val_file, out, dicts);
    if (st == XV_OK) st = score_split(ctx, f, "test", &f->cfg.test_file, out, dicts);
    if (st != XV_OK) {
        cJSON_Delete(dicts);
        return st;
    }
    return xv_ft_scores_set_official(out, dicts);
}

static void print_scores(const xv_finetune_scores *s, FILE *out) {
    fprintf(out, "  %-6s %7s %7s %7s %7s %7s %7s %7s\n", "split", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5",
            "img_r10", "r_mean");
    for (int i = 0; i + 9 <= s->n; i += 9) {
        const double *v = s->value + i;
        int len = (int)(strchr(s->name[i], '_') - s->name[i]);
        fprintf(out, "  %-6.*s %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f\n", len, s->name[i], v[0], v[1], v[2], v[4],
                v[5], v[6], v[8]);
    }
}

const xv_finetune_task xv_ft_retrieval = {
    .name = "retrieval",
    .batch_key = "batch_size_train",
    .reads_val_file = true,
    .n_terms = 2,
    .terms = {"loss_itc", "loss_itm"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = evaluate,
    .selection = {"test_r_mean"}, /* Retrieval.py keeps checkpoint_best by the test r_mean (not val's) */
    .selection_digits = 2,
    .metric_key = "r_mean",
    .aux_key = "itc_r_mean",
    .metric_label = "r_mean",
    .print_scores = print_scores,
};
