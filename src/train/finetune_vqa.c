/* VQA fine-tuning, as the official VQA.py with models/model_vqa.py
 * (vqa-captioning sheet §2), behind finetune_task.h.
 *
 * Model: a VQA model made from the --init pretraining model as
 * load_pretrained does (model/task_source.h), or a VQA model as it is; the
 * decoder's cross-attention key/value train at lr·lr_mult. Training entries
 * {image, question, answer, dataset} of every train_file (image under
 * vqa_root, vg_root for dataset "vg", as written for "gqa"; answer a list of
 * the annotators' answers, or one string for "vg"): one question per sample,
 * its unique answers weighted by their share of the list (vg: 0.5);
 * RandomResizedCrop(0.5..1) + RandAug without flip; pre_question(30),
 * [CLS] + pieces cut to max_tokens; answers [CLS] answer [SEP]. Loss =
 * Σ w·NLL / questions. Evaluation: every test_file question ranked over
 * answer_list (k_test), written as OUTPUT_DIR/result/<name>.json
 * [{question_id, answer}] (the server's format); accuracy when the entries
 * carry `answer`: the VQA accuracy for a list of annotators' answers, exact
 * match of the stripped string otherwise (VQA.py calculate_acc). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "data/caption.h"
#include "data/transforms.h"
#include "model/task_source.h"
#include "tasks/vqa_accuracy.h"
#include "tasks/vqa_prior.h"
#include "train/finetune_task.h"

typedef struct {
    char *vqa_root, *vg_root, *answer_list;
} vqa_keys; /* k_test is the shared cfg.k_test (128 for VQA) */

/* The training questions and their weighted answers. */
typedef struct {
    cJSON *files[16];
    int n_files;
    const char **question;  /* [n] */
    int64_t *ans_off;       /* [n + 1] into ans / weight */
    const char **ans;
    float *weight;
    char **paths;           /* [n] image paths */
    int64_t *path_of;       /* [n] = i */
    xv_ft_batch b;
    /* one batch's answers */
    const char **batch_ans;
    float *batch_w;
    int32_t *batch_n;
} vqa_data;

static const char *const keys[] = {"batch_size_train", "vqa_root", "vg_root", "answer_list", "num_dec_layers",
                                   "batch_size_test", "k_test", "lr_mult", NULL};

static xv_status read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    vqa_keys *k = calloc(1, sizeof *k);
    if (!(cfg->task_data = k)) return xv_error(XV_ERR_NOMEM, "out of memory");
    cfg->k_test = 128; /* VQA.yaml; the shared reader then takes the YAML's k_test */
    XV_TRY(xv_ft_config_path(root, "vqa_root", &k->vqa_root));
    XV_TRY(xv_ft_config_path(root, "vg_root", &k->vg_root));
    XV_TRY(xv_ft_config_path(root, "answer_list", &k->answer_list));
    const xv_yaml_node *opt = NULL;
    XV_TRY(xv_yaml_get_map(root, "optimizer", &opt));
    cfg->optim.lr_mult = 2; /* VQA.yaml */
    if (opt) XV_TRY(xv_yaml_get_double(opt, "lr_mult", 0, 1000, &cfg->optim.lr_mult));
    if (!k->answer_list) return xv_error(XV_ERR_MISSING, "the VQA config needs answer_list (a JSON list of answers)");
    return XV_OK;
}

static void free_config(xv_finetune_config *cfg) {
    vqa_keys *k = cfg->task_data;
    if (!k) return;
    free(k->vqa_root), free(k->vg_root), free(k->answer_list);
    free(k);
    cfg->task_data = NULL;
}

static xv_status open_model(xv_ft *f) {
    char *scratch = NULL;
    xv_vqa_model *m = NULL;
    xv_status st = xv_ft_init_scratch(f, &scratch);
    if (st == XV_OK) st = xv_vqa_from_pretrained(f->o->init, scratch, f->o->seed, &m);
    free(scratch);
    XV_TRY(st);
    f->task_model = m;
    f->params = &m->params;
    f->res = m->cfg.vision.image_res;
    if (f->cfg.image_res && f->cfg.image_res != f->res)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: image_res %d differs from the model's %d (VQA fine-tuning keeps the "
                        "model's resolution; convert it first)", f->o->config_path, f->cfg.image_res, f->res);
    const xv_init_params_spec spec = {.kind = XV_INIT_PARAMS_VQA,
                                      .vqa_widths_differ = m->cfg.text.hidden != m->cfg.vision.vision_width};
    return xv_init_params_build(&spec, &f->large_lr);
}

static xv_status write_model(const xv_ft *f, const char *dir) {
    return xv_ft_write_task_model(f, &((const xv_vqa_model *)f->task_model)->cfg, dir);
}

static void free_model(xv_ft *f) {
    xv_vqa_free(f->task_model);
    f->task_model = NULL;
}

static const char *str_key(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One training entry's image and weighted answers, appended to d. */
static xv_status add_entry(vqa_data *d, const vqa_keys *k, const xv_finetune_config *cfg, const cJSON *e,
                           const char *file, int i, int64_t s, int64_t *n_ans) {
    const char *image = str_key(e, "image"), *question = str_key(e, "question"), *dataset = str_key(e, "dataset");
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(e, "answer");
    const bool vg = dataset && !strcmp(dataset, "vg");
    if (!image || !question || !(vg ? cJSON_IsString(answer) : cJSON_IsArray(answer) && cJSON_GetArraySize(answer)))
        return xv_error(XV_ERR_FORMAT, "%s: entry %d needs \"image\", \"question\" and \"answer\" (a list of strings; "
                        "one string for dataset \"vg\")", file, i);
    const char *root = vg ? k->vg_root : dataset && !strcmp(dataset, "gqa") ? NULL : k->vqa_root;
    XV_TRY(xv_ft_image_path(cfg, root, image, file, i, &d->paths[s]));
    d->question[s] = question;
    d->path_of[s] = s;
    if (vg) {
        d->ans[*n_ans] = answer->valuestring;
        d->weight[(*n_ans)++] = 0.5f;
        return XV_OK;
    }
    /* unique answers in order of first appearance; weight = share of the list */
    const int64_t first = *n_ans;
    const int total = cJSON_GetArraySize(answer);
    for (const cJSON *a = answer->child; a; a = a->next) {
        if (!cJSON_IsString(a)) return xv_error(XV_ERR_FORMAT, "%s: entry %d: an answer is not a string", file, i);
        int64_t j = first;
        while (j < *n_ans && strcmp(d->ans[j], a->valuestring)) j++;
        if (j == *n_ans) {
            d->ans[j] = a->valuestring;
            d->weight[j] = 0;
            ++*n_ans;
        }
        d->weight[j] += (float)(1.0 / total);
    }
    return XV_OK;
}

static xv_status setup(xv_ft *f) {
    const vqa_keys *k = f->cfg.task_data;
    vqa_data *d = calloc(1, sizeof *d);
    if (!(f->task_state = d)) return xv_error(XV_ERR_NOMEM, "out of memory");
    if (f->cfg.train_file.n > 16) return xv_error(XV_ERR_INVALID_ARG, "at most 16 train_file entries");
    int64_t n = 0, n_ans = 0;
    for (int i = 0; i < f->cfg.train_file.n; i++) {
        XV_TRY(xv_ft_read_json_list(f->cfg.train_file.paths[i], &d->files[d->n_files]));
        n += cJSON_GetArraySize(d->files[d->n_files++]);
        for (const cJSON *e = d->files[i]->child; e; e = e->next) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "answer");
            n_ans += cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 1;
        }
    }
    d->question = calloc((size_t)n + 1, sizeof *d->question);
    d->ans_off = calloc((size_t)n + 1, sizeof *d->ans_off);
    d->ans = calloc((size_t)n_ans + 1, sizeof *d->ans);
    d->weight = calloc((size_t)n_ans + 1, sizeof *d->weight);
    d->paths = calloc((size_t)n + 1, sizeof *d->paths);
    d->path_of = calloc((size_t)n + 1, sizeof *d->path_of);
    if (!d->question || !d->ans_off || !d->ans || !d->weight || !d->paths || !d->path_of)
        return xv_error(XV_ERR_NOMEM, "out of memory");
    int64_t s = 0, a = 0;
    for (int fi = 0; fi < d->n_files; fi++) {
        int i = 0;
        for (const cJSON *e = d->files[fi]->child; e; e = e->next, i++, s++) {
            d->ans_off[s] = a;
            XV_TRY(add_entry(d, k, &f->cfg, e, f->cfg.train_file.paths[fi], i, s, &a));
        }
    }
    d->ans_off[n] = a;
    f->n = n;
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    XV_TRY(xv_ft_batch_init(&d->b, f, d->paths, n, d->path_of, n));
    const int B = f->cfg.batch_size;
    d->batch_ans = calloc((size_t)n_ans + 1, sizeof *d->batch_ans);
    d->batch_w = calloc((size_t)n_ans + 1, sizeof *d->batch_w);
    d->batch_n = calloc((size_t)B, sizeof *d->batch_n);
    if (!d->batch_ans || !d->batch_w || !d->batch_n) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static void task_free(xv_ft *f) {
    vqa_data *d = f->task_state;
    if (!d) return;
    for (int i = 0; i < d->n_files; i++) cJSON_Delete(d->files[i]);
    for (int64_t s = 0; d->paths && s < f->n; s++) free(d->paths[s]);
    free(d->question), free(d->ans_off), free(d->ans), free(d->weight), free(d->paths), free(d->path_of);
    free(d->batch_ans), free(d->batch_w), free(d->batch_n);
    xv_ft_batch_free(&d->b);
    free(d);
    f->task_state = NULL;
}

/* Texts through the tokenizer into I32 graph tensors [n, len]. */
static xv_status encode(xv_ft *f, const char *const *texts, int n, xv_encode_opts o, xv_tensor **ids,
                        xv_tensor **atts) {
    xv_text_batch tb;
    XV_TRY(xv_encode_batch(f->tok, texts, n, &o, &tb));
    *ids = xv_tensor_new(f->g, XV_I32, XV_SHAPE(tb.batch, tb.len));
    *atts = xv_tensor_new(f->g, XV_I32, XV_SHAPE(tb.batch, tb.len));
    if (*ids && *atts) {
        memcpy((*ids)->idata, tb.ids, sizeof(int32_t) * (size_t)tb.batch * (size_t)tb.len);
        memcpy((*atts)->idata, tb.atts, sizeof(int32_t) * (size_t)tb.batch * (size_t)tb.len);
    }
    xv_text_batch_free(&tb);
    return xv_graph_status(f->g);
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    vqa_data *d = f->task_state;
    const xv_vqa_model *m = f->task_model;
    const int B = f->cfg.batch_size, R = f->res;
    int n_ans = 0;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        char *clean = NULL;
        size_t len;
        XV_TRY(xv_pre_question(d->question[s], strlen(d->question[s]), f->cfg.max_words, &clean, &len));
        free(d->b.clean[i]);
        d->b.clean[i] = clean;
        /* the careful flip of vqa_dataset.py, then the crop and RandAug without a flip */
        xv_image *im = &d->b.images[d->b.img_of[s]];
        const int n_given = (int)(d->ans_off[s + 1] - d->ans_off[s]);
        const bool flip = xv_vqa_flip_draw(&f->aug, d->question[s], d->ans + d->ans_off[s], n_given);
        if (flip) xv_image_hflip(im); /* the decoded image is shared: flipped back below */
        const xv_status ts = xv_transform_train(&f->aug, im, R, XV_TRAIN_FINETUNE_NOFLIP, d->b.pixels + (size_t)i * 3 * R * R);
        if (flip) xv_image_hflip(im);
        XV_TRY(ts);
        d->batch_n[i] = (int32_t)(d->ans_off[s + 1] - d->ans_off[s]);
        for (int64_t a = d->ans_off[s]; a < d->ans_off[s + 1]; a++, n_ans++) {
            d->batch_ans[n_ans] = d->ans[a];
            d->batch_w[n_ans] = d->weight[a];
        }
    }
    xv_graph *g = f->g;
    xv_tensor *q_ids, *q_atts, *a_ids, *a_atts;
    XV_TRY(encode(f, (const char *const *)d->b.clean, B, xv_encode_finetune(f->cfg.max_tokens), &q_ids, &q_atts));
    XV_TRY(encode(f, d->batch_ans, n_ans, xv_encode_vqa_answer(), &a_ids, &a_atts));
    xv_tensor *img = xv_tensor_wrap_f32(g, d->b.pixels, XV_SHAPE(B, 3, R, R));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, img, NULL);
    xv_tensor *qs = xv_vqa_question_states(g, m, vis, q_ids, q_atts);
    xv_vqa_train_out o;
    *out = xv_vqa_train_forward(g, m, qs, q_atts, xv_tensor_wrap_i32(g, d->batch_n, XV_SHAPE(B)), a_ids, a_atts,
                                xv_tensor_wrap_f32(g, d->batch_w, XV_SHAPE(n_ans)), &o);
    XV_TRY(xv_graph_status(g));
    rec->region = false;
    term[0] = (*out)->data[0];
    return XV_OK;
}

/* ---- evaluation ---- */

/* The prediction (an index into answers) of one test question. */
static xv_status predict(xv_ft *f, xv_graph *g, const char *image, const char *question, const xv_tensor *a_ids,
                         const xv_tensor *a_atts, int k, int *pred) {
    const xv_vqa_model *m = f->task_model;
    const int R = f->res;
    xv_graph_reset(g);
    xv_tensor *img = xv_tensor_new(g, XV_F32, XV_SHAPE(1, 3, R, R));
    XV_TRY(xv_graph_status(g));
    int w, h;
    XV_TRY(xv_api_preprocess_file(image, R, img->data, &w, &h));
    char *clean = NULL;
    size_t len;
    XV_TRY(xv_pre_question(question, strlen(question), 50, &clean, &len)); /* the test set's cap */
    xv_text_batch tb;
    const xv_encode_opts o = xv_encode_finetune(0);
    xv_status st = xv_encode_batch(f->tok, (const char *const *)&clean, 1, &o, &tb);
    free(clean);
    XV_TRY(st);
    xv_tensor *q_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(1, tb.len)), *q_atts = xv_tensor_new(g, XV_I32, XV_SHAPE(1, tb.len));
    if (q_ids && q_atts) {
        memcpy(q_ids->idata, tb.ids, sizeof(int32_t) * (size_t)tb.len);
        memcpy(q_atts->idata, tb.atts, sizeof(int32_t) * (size_t)tb.len);
    }
    xv_text_batch_free(&tb);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, img, NULL);
    xv_tensor *qs = xv_vqa_question_states(g, m, vis, q_ids, q_atts);
    XV_TRY(xv_graph_status(g));
    /* the candidates live in the caller's graph: copy them into this one */
    xv_tensor *ai = xv_tensor_new(g, XV_I32, a_ids->shape, 2), *aa = xv_tensor_new(g, XV_I32, a_atts->shape, 2);
    XV_TRY(xv_graph_status(g));
    memcpy(ai->idata, a_ids->idata, sizeof(int32_t) * (size_t)a_ids->numel);
    memcpy(aa->idata, a_atts->idata, sizeof(int32_t) * (size_t)a_atts->numel);
    xv_vqa_ranking r;
    XV_TRY(xv_vqa_rank(g, m, qs, q_atts, ai, aa, k, false, &r));
    *pred = r.pred->idata[0];
    return XV_OK;
}

/* calculate_acc's exact match (stripped), or the VQA accuracy of a list. */
static double score_one(const char *pred, const cJSON *answer) {
    if (cJSON_IsArray(answer)) {
        const int n = cJSON_GetArraySize(answer);
        const char **gt = calloc((size_t)(n ? n : 1), sizeof *gt);
        int i = 0;
        for (const cJSON *a = answer->child; gt && a; a = a->next)
            if (cJSON_IsString(a)) gt[i++] = a->valuestring;
        double v = gt && i ? xv_vqa_accuracy(pred, gt, i) : NAN;
        free(gt);
        return v;
    }
    const char *s = answer->valuestring, *e = s + strlen(s);
    while (*s && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    return strlen(pred) == (size_t)(e - s) && !strncmp(pred, s, (size_t)(e - s)) ? 1.0 : 0.0;
}

/* The answer-prior baseline from every train_file (tasks/vqa_prior.h):
 * each annotator's answer counted under its question's type. */
static xv_status answer_prior(const xv_ft *f, xv_vqa_prior **out) {
    XV_TRY(xv_vqa_prior_new(out));
    xv_status st = XV_OK;
    for (int fi = 0; st == XV_OK && fi < f->cfg.train_file.n; fi++) {
        cJSON *train = NULL;
        st = xv_ft_read_json_list(f->cfg.train_file.paths[fi], &train);
        for (const cJSON *e = train ? train->child : NULL; st == XV_OK && e; e = e->next) {
            const char *question = str_key(e, "question");
            const cJSON *answer = cJSON_GetObjectItemCaseSensitive(e, "answer");
            const char *given[64];
            int n = 0;
            if (cJSON_IsString(answer)) given[n++] = answer->valuestring;
            for (const cJSON *a = cJSON_IsArray(answer) ? answer->child : NULL; a && n < 64; a = a->next)
                if (cJSON_IsString(a)) given[n++] = a->valuestring;
            if (question) st = xv_vqa_prior_add(*out, str_key(e, "question_type"), question, given, n);
        }
        cJSON_Delete(train);
    }
    return st;
}

/* Every entry of every test_file, in order, checked for the keys the
 * evaluation reads (test[f] keeps each file's list alive). */
typedef struct {
    cJSON **test;
    int n_files;
    const cJSON **entry; /* [n] */
    int *file, *index;   /* [n] the entry's test_file and its place in it */
    int n;
} vqa_questions;

static void questions_free(vqa_questions *q) {
    for (int i = 0; q->test && i < q->n_files; i++) cJSON_Delete(q->test[i]);
    free(q->test), free(q->entry), free(q->file), free(q->index);
    memset(q, 0, sizeof *q);
}

static xv_status questions_read(const xv_ft *f, vqa_questions *q) {
    memset(q, 0, sizeof *q);
    const int nf = f->cfg.test_file.n;
    if (!(q->test = calloc((size_t)(nf ? nf : 1), sizeof *q->test))) return xv_error(XV_ERR_NOMEM, "out of memory");
    q->n_files = nf;
    int total = 0;
    for (int fi = 0; fi < nf; fi++) {
        XV_TRY(xv_ft_read_json_list(f->cfg.test_file.paths[fi], &q->test[fi]));
        total += cJSON_GetArraySize(q->test[fi]);
    }
    q->entry = malloc(sizeof *q->entry * (size_t)(total ? total : 1));
    q->file = malloc(sizeof *q->file * (size_t)(total ? total : 1));
    q->index = malloc(sizeof *q->index * (size_t)(total ? total : 1));
    if (!q->entry || !q->file || !q->index) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int fi = 0; fi < nf; fi++) {
        int i = 0;
        for (const cJSON *e = q->test[fi]->child; e; e = e->next, i++) {
            if (!str_key(e, "image") || !str_key(e, "question") ||
                !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "question_id")))
                return xv_error(XV_ERR_FORMAT, "%s: entry %d needs \"image\", \"question\" and \"question_id\"",
                                f->cfg.test_file.paths[fi], i);
            q->entry[q->n] = e, q->file[q->n] = fi, q->index[q->n++] = i;
        }
    }
    return XV_OK;
}

/* The predicted answers (indices into the answer list) of every question:
 * under mpirun each rank ranks its share (DistributedSampler's, dist.h), as
 * VQA.py's test loader, and every rank gets them all in question order. */
static xv_status predict_all(xv_ft *f, const vqa_questions *q, const xv_tensor *a_ids, const xv_tensor *a_atts, int k,
                             int32_t *preds) {
    const vqa_keys *vk = f->cfg.task_data;
    const int64_t m = xv_dist_shard_size(q->n);
    int32_t *mine = malloc(sizeof *mine * (size_t)(m ? m : 1));
    xv_graph *g = xv_graph_new(0);
    xv_status st = mine && g ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        xv_graph_set_grad(g, false);
        xv_graph_set_training(g, false);
    }
    for (int64_t j = 0; st == XV_OK && j < m; j++) {
        const int64_t i = xv_dist_shard_sample(q->n, j);
        const cJSON *e = q->entry[i];
        char *path = NULL;
        int pred = 0;
        st = xv_ft_image_path(&f->cfg, vk->vqa_root, str_key(e, "image"), f->cfg.test_file.paths[q->file[i]],
                              q->index[i], &path);
        if (st == XV_OK) st = predict(f, g, path, str_key(e, "question"), a_ids, a_atts, k, &pred);
        free(path);
        mine[j] = pred;
    }
    if (st == XV_OK) st = xv_dist_gather_shards(mine, sizeof *mine, q->n, preds);
    free(mine);
    xv_graph_free(g);
    return st;
}

static xv_status evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    (void)ctx;
    const vqa_keys *k = f->cfg.task_data;
    char **answers = NULL;
    int n_answers = 0;
    XV_TRY((xv_status)xvlm_answer_list_load(k->answer_list, &answers, &n_answers));
    xv_graph *cand = xv_graph_new(0);
    cJSON *results = cJSON_CreateArray();
    vqa_questions q = {0};
    int32_t *preds = NULL;
    xv_status st = cand && results ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    xv_tensor *a_ids = NULL, *a_atts = NULL;
    xv_graph *train_g = f->g;
    f->g = cand; /* encode() writes into f->g */
    if (st == XV_OK) st = encode(f, (const char *const *)answers, n_answers, xv_encode_vqa_answer(), &a_ids, &a_atts);
    f->g = train_g;
    const int kk = f->cfg.k_test < n_answers ? f->cfg.k_test : n_answers;
    xv_vqa_prior *prior = NULL;
    if (st == XV_OK && answer_prior(f, &prior) != XV_OK) {
        /* a baseline only: the evaluation goes on without it (prior_acc null) */
        if (f->o->notes) fprintf(f->o->notes, "note: no answer-prior baseline: %s\n", xv_error_message());
        xv_vqa_prior_free(prior);
        prior = NULL;
    }
    if (st == XV_OK) st = questions_read(f, &q);
    if (st == XV_OK && !(preds = malloc(sizeof *preds * (size_t)(q.n ? q.n : 1))))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = predict_all(f, &q, a_ids, a_atts, kk, preds);
    double sum = 0, prior_sum = 0;
    int scored = 0;
    const int n = q.n;
    for (int i = 0; st == XV_OK && i < n; i++) {
        const cJSON *e = q.entry[i];
        const char *question = str_key(e, "question");
        const cJSON *answer = cJSON_GetObjectItemCaseSensitive(e, "answer");
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "question_id", cJSON_GetObjectItemCaseSensitive(e, "question_id")->valuedouble);
        cJSON_AddStringToObject(r, "answer", answers[preds[i]]);
        cJSON_AddItemToArray(results, r);
        if (cJSON_IsArray(answer) || cJSON_IsString(answer)) {
            const char *guess = prior ? xv_vqa_prior_answer(prior, str_key(e, "question_type"), question) : NULL;
            sum += score_one(answers[preds[i]], answer);
            prior_sum += guess ? score_one(guess, answer) : 0;
            scored++;
        }
    }
    char *path = NULL;
    if (st == XV_OK) st = xv_ft_result_path(f, results_name, &path);
    char *text = st == XV_OK && path ? cJSON_Print(results) : NULL;
    if (text) st = xv_fs_write_file(path, text, strlen(text), XV_FS_DURABLE);
    free(text);
    free(path);
    if (st == XV_OK) {
        /* accuracy only when every question has its answer (calculate_acc's rule) */
        const double acc = scored == n && n ? 100.0 * sum / n : NAN;
        const double prior_acc = scored == n && n && prior ? 100.0 * prior_sum / n : NAN;
        xv_ft_scores_put(out, "test", "acc", acc);
        xv_ft_scores_put(out, "test", "prior_acc", prior_acc);
        out->metric = acc;
        out->aux = prior_acc;
        cJSON *o = cJSON_CreateObject();
        xv_ft_json_num(o, "acc", acc);
        xv_ft_json_num(o, "answer_prior_acc", prior_acc);
        cJSON_AddNumberToObject(o, "questions", n);
        st = xv_ft_scores_set_official(out, o);
    }
    cJSON_Delete(results);
    questions_free(&q);
    free(preds);
    xv_vqa_prior_free(prior);
    xv_graph_free(cand);
    xvlm_strings_free(answers, n_answers);
    return st;
}

static void print_scores(const xv_finetune_scores *s, FILE *out) {
    fprintf(out, "  VQA accuracy %.2f  (answer prior per question type %.2f)\n", xv_finetune_scores_get(s, "test_acc"),
            xv_finetune_scores_get(s, "test_prior_acc"));
}

const xv_finetune_task xv_ft_vqa = {
    .name = "vqa",
    .batch_key = "batch_size_train",
    .keys = keys,
    .read_config = read_config,
    .free_config = free_config,
    .open_model = open_model,
    .write_model = write_model,
    .free_model = free_model,
    .n_terms = 1,
    .terms = {"loss"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = evaluate,
    .eval_results_name = "vqa_eval", /* VQA.py --evaluate: result/vqa_eval.json */
    .selection = {"test_acc"},
    .selection_digits = 2,
    .metric_key = "acc",
    .aux_key = "answer_prior_acc",
    .metric_label = "VQA accuracy",
    .print_scores = print_scores,
};
