/* Captioning fine-tuning, as the official Captioning.py with
 * models/model_captioning.py (vqa-captioning sheet §3), behind
 * finetune_task.h.
 *
 * Model: a captioning model made from the --init pretraining model by the
 * prefix swap text_encoder. -> text_decoder. (model/task_source.h), or a
 * captioning model as it is. Training entries {image, caption} of every
 * train_file (image under image_root), one pair per sample; fine-tuning
 * train transform; text = prompt + pre_caption(caption, max_tokens) through
 * [CLS] ... [SEP] cut to max_tokens; labels -100 on padding and the prompt's
 * ids; label-smoothed cross-entropy (label_smoothing), mean over scored
 * tokens. Evaluation: each test_file entry (its image; "caption" a string or
 * a list of references) captioned by beam search (num_beams, max_length,
 * min_length), written as OUTPUT_DIR/result/<name>.json [{image_id,
 * caption}], scored with BLEU-1..4, ROUGE-L and CIDEr-D (tasks/caption_metrics.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/task_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "data/caption.h"
#include "data/transforms.h"
#include "model/task_source.h"
#include "tasks/caption_metrics.h"
#include "train/finetune_captioning.h"

typedef struct {
    xv_caption_train_set t;
    int prompt_len; /* [CLS] + the prompt's pieces: the masked labels */
    xv_ft_batch b;
} caption_data;

const char *const xv_caption_yaml_keys[] = {"batch_size_train", "batch_size_test", "prompt", "label_smoothing",
                                            "max_length", "min_length", "num_beams", "num_dec_layers",
                                            "sc_train_sample_n", "sc_baseline_type", "sc_beam_size",
                                            "cider_cached_tokens", NULL};

xv_status xv_caption_read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    xv_caption_keys *k = calloc(1, sizeof *k);
    if (!(cfg->task_data = k)) return xv_error(XV_ERR_NOMEM, "out of memory");
    *k = (xv_caption_keys){.label_smoothing = 0.1, .num_beams = 3, .max_length = 20, .min_length = 5,
                           .sc_train_sample_n = 5};
    const char *prompt = "a picture of ", *baseline = "greedy";
    XV_TRY(xv_yaml_get_string(root, "prompt", &prompt));
    if (!(k->prompt = strdup(prompt))) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_yaml_get_double(root, "label_smoothing", 0, 1, &k->label_smoothing));
    XV_TRY(xv_yaml_get_int(root, "num_beams", 1, 64, &k->num_beams));
    XV_TRY(xv_yaml_get_int(root, "max_length", 2, 4096, &k->max_length));
    XV_TRY(xv_yaml_get_int(root, "min_length", 0, 4096, &k->min_length));
    XV_TRY(xv_yaml_get_int(root, "sc_train_sample_n", 1, 1024, &k->sc_train_sample_n));
    XV_TRY(xv_yaml_get_string(root, "sc_baseline_type", &baseline));
    if (strcmp(baseline, "greedy") && strcmp(baseline, "sample"))
        return xv_yaml_type_error(xv_yaml_get(root, "sc_baseline_type"), "'greedy' or 'sample'");
    k->sc_baseline_sample = !strcmp(baseline, "sample");
    if (k->sc_baseline_sample && k->sc_train_sample_n < 2)
        return xv_error(XV_ERR_INVALID_ARG, "sc_baseline_type 'sample' needs sc_train_sample_n of at least 2 (got %d)",
                        k->sc_train_sample_n);
    return XV_OK;
}

void xv_caption_free_config(xv_finetune_config *cfg) {
    xv_caption_keys *k = cfg->task_data;
    if (!k) return;
    free(k->prompt);
    free(k);
    cfg->task_data = NULL;
}

xv_status xv_caption_open_model(xv_ft *f) {
    char *scratch = NULL;
    xv_caption_model *m = NULL;
    xv_status st = xv_ft_init_scratch(f, &scratch);
    if (st == XV_OK) st = xv_caption_from_pretrained(f->o->init, scratch, &m);
    free(scratch);
    XV_TRY(st);
    m->sep_id = xv_tokenizer_special_ids(f->tok).sep;
    f->task_model = m;
    f->params = &m->params;
    f->res = m->cfg.vision.image_res;
    if (f->cfg.image_res && f->cfg.image_res != f->res)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: image_res %d differs from the model's %d (captioning fine-tuning "
                        "keeps the model's resolution)", f->o->config_path, f->cfg.image_res, f->res);
    return XV_OK; /* no init_params: every tensor at the base lr */
}

xv_status xv_caption_write_model(const xv_ft *f, const char *dir) {
    return xv_ft_write_task_model(f, &((const xv_caption_model *)f->task_model)->cfg, dir);
}

void xv_caption_free_model(xv_ft *f) {
    xv_caption_free(f->task_model);
    f->task_model = NULL;
}

xv_status xv_caption_train_set_read(const xv_ft *f, xv_caption_train_set *t) {
    memset(t, 0, sizeof *t);
    if (f->cfg.train_file.n > 16) return xv_error(XV_ERR_INVALID_ARG, "at most 16 train_file entries");
    int64_t n = 0;
    for (int i = 0; i < f->cfg.train_file.n; i++) {
        XV_TRY(xv_ft_read_json_list(f->cfg.train_file.paths[i], &t->files[t->n_files]));
        n += cJSON_GetArraySize(t->files[t->n_files++]);
    }
    t->caption = calloc((size_t)n + 1, sizeof *t->caption);
    t->paths = calloc((size_t)n + 1, sizeof *t->paths);
    t->path_of = calloc((size_t)n + 1, sizeof *t->path_of);
    if (!t->caption || !t->paths || !t->path_of) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int fi = 0; fi < t->n_files; fi++) {
        int i = 0;
        for (const cJSON *e = t->files[fi]->child; e; e = e->next, i++) {
            const cJSON *im = cJSON_GetObjectItemCaseSensitive(e, "image"), *c = cJSON_GetObjectItemCaseSensitive(e, "caption");
            if (!cJSON_IsString(im) || !cJSON_IsString(c))
                return xv_error(XV_ERR_FORMAT, "%s: entry %d needs \"image\" and \"caption\" (strings)",
                                f->cfg.train_file.paths[fi], i);
            XV_TRY(xv_ft_image_path(&f->cfg, NULL, im->valuestring, f->cfg.train_file.paths[fi], i, &t->paths[t->n]));
            t->caption[t->n] = c->valuestring;
            t->path_of[t->n] = t->n;
            t->n++;
        }
    }
    return XV_OK;
}

void xv_caption_train_set_free(xv_caption_train_set *t) {
    for (int i = 0; i < t->n_files; i++) cJSON_Delete(t->files[i]);
    for (int64_t s = 0; t->paths && s < t->n; s++) free(t->paths[s]);
    free(t->caption), free(t->paths), free(t->path_of);
    memset(t, 0, sizeof *t);
}

xv_status xv_caption_prompt_ids(const xv_ft *f, int32_t **ids, int *len) {
    const xv_caption_keys *k = f->cfg.task_data;
    xv_text_batch pb;
    const xv_encode_opts o = xv_encode_finetune(0);
    XV_TRY(xv_encode_batch(f->tok, (const char *const *)&k->prompt, 1, &o, &pb));
    *len = pb.len;
    *ids = malloc(sizeof **ids * (size_t)pb.len);
    if (*ids) memcpy(*ids, pb.ids, sizeof **ids * (size_t)pb.len);
    xv_text_batch_free(&pb);
    return *ids ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
}

static xv_status setup(xv_ft *f) {
    caption_data *d = calloc(1, sizeof *d);
    if (!(f->task_state = d)) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_caption_train_set_read(f, &d->t));
    f->n = d->t.n;
    int32_t *prompt = NULL;
    XV_TRY(xv_caption_prompt_ids(f, &prompt, &d->prompt_len));
    free(prompt);
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    return xv_ft_batch_init(&d->b, f, d->t.paths, d->t.n, d->t.path_of, d->t.n);
}

static void task_free(xv_ft *f) {
    caption_data *d = f->task_state;
    if (!d) return;
    xv_caption_train_set_free(&d->t);
    xv_ft_batch_free(&d->b);
    free(d);
    f->task_state = NULL;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    caption_data *d = f->task_state;
    const xv_caption_keys *k = f->cfg.task_data;
    const xv_caption_model *m = f->task_model;
    const int B = f->cfg.batch_size, R = f->res;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        char *clean = NULL;
        size_t len;
        XV_TRY(xv_pre_caption(d->t.caption[s], strlen(d->t.caption[s]), f->cfg.max_tokens, &clean, &len));
        free(d->b.clean[i]);
        d->b.clean[i] = clean;
        XV_TRY(xv_transform_train(&f->aug, &d->b.images[d->b.img_of[s]], R, XV_TRAIN_FINETUNE,
                                  d->b.pixels + (size_t)i * 3 * R * R));
    }
    xv_text_batch_free(&d->b.tb);
    const xv_encode_opts o = xv_encode_caption(f->cfg.max_tokens);
    XV_TRY(xv_encode_caption_batch(f->tok, k->prompt, (const char *const *)d->b.clean, B, &o, &d->b.tb));
    xv_graph *g = f->g;
    const xv_text_batch *tb = &d->b.tb;
    xv_tensor *ids = xv_tensor_wrap_i32(g, tb->ids, XV_SHAPE(tb->batch, tb->len));
    xv_tensor *atts = xv_tensor_wrap_i32(g, tb->atts, XV_SHAPE(tb->batch, tb->len));
    xv_tensor *labels = xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, d->prompt_len);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, xv_tensor_wrap_f32(g, d->b.pixels, XV_SHAPE(B, 3, R, R)), NULL);
    xv_caption_lm_out lm;
    *out = xv_caption_lm_loss(g, m, vis, ids, atts, labels, (float)k->label_smoothing, &lm);
    XV_TRY(xv_graph_status(g));
    rec->region = false;
    term[0] = (*out)->data[0];
    return XV_OK;
}

/* ---- evaluation ---- */

typedef struct {
    char **paths, **captions;
    const char ***refs;
    int *n_refs;
    double *image_id;
    int n;
} test_set;

static void test_set_free(test_set *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->paths ? t->paths[i] : NULL);
        free(t->captions ? t->captions[i] : NULL);
        free(t->refs ? t->refs[i] : NULL);
    }
    free(t->paths), free(t->captions), free(t->refs), free(t->n_refs), free(t->image_id);
}

/* The entries of one test file: image paths and reference lists (borrowed from j). */
static xv_status test_entries(const xv_ft *f, const cJSON *j, const char *file, test_set *t) {
    const int n = cJSON_GetArraySize(j);
    t->paths = calloc((size_t)n + 1, sizeof *t->paths);
    t->captions = calloc((size_t)n + 1, sizeof *t->captions);
    t->refs = calloc((size_t)n + 1, sizeof *t->refs);
    t->n_refs = calloc((size_t)n + 1, sizeof *t->n_refs);
    t->image_id = calloc((size_t)n + 1, sizeof *t->image_id);
    if (!t->paths || !t->captions || !t->refs || !t->n_refs || !t->image_id)
        return xv_error(XV_ERR_NOMEM, "out of memory");
    for (const cJSON *e = j->child; e; e = e->next, t->n++) {
        const int i = t->n;
        const cJSON *im = cJSON_GetObjectItemCaseSensitive(e, "image"), *c = cJSON_GetObjectItemCaseSensitive(e, "caption");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "image_id");
        const int nr = cJSON_IsArray(c) ? cJSON_GetArraySize(c) : 1;
        if (!cJSON_IsString(im) || !(cJSON_IsString(c) || (cJSON_IsArray(c) && nr > 0)))
            return xv_error(XV_ERR_FORMAT, "%s: entry %d needs \"image\" and \"caption\" (a string or a list of "
                            "reference strings)", file, i);
        XV_TRY(xv_ft_image_path(&f->cfg, NULL, im->valuestring, file, i, &t->paths[i]));
        if (!(t->refs[i] = calloc((size_t)nr, sizeof(char *)))) return xv_error(XV_ERR_NOMEM, "out of memory");
        t->n_refs[i] = nr;
        int r = 0;
        for (const cJSON *s = cJSON_IsArray(c) ? c->child : c; s && r < nr; s = cJSON_IsArray(c) ? s->next : NULL, r++) {
            if (!cJSON_IsString(s)) return xv_error(XV_ERR_FORMAT, "%s: entry %d: a reference is not a string", file, i);
            t->refs[i][r] = s->valuestring;
        }
        t->image_id[i] = cJSON_IsNumber(id) ? id->valuedouble : i;
    }
    return XV_OK;
}

/* t->captions of every test image: under mpirun each rank captions its share
 * (DistributedSampler's, dist.h), as Captioning.py's test loader, and every
 * rank gets them all in test order (the padding's repeats dropped, as
 * collect_result's remove_duplicate='image_id' drops them). */
static xv_status caption_all(const xv_ft *f, xv_graph *g, test_set *t, const xvlm_caption_params *p) {
    const int64_t m = xv_dist_shard_size(t->n);
    const char **paths = calloc((size_t)(m ? m : 1), sizeof *paths);
    char **mine = calloc((size_t)(m ? m : 1), sizeof *mine);
    xv_status st = paths && mine ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; st == XV_OK && k < m; k++) paths[k] = t->paths[xv_dist_shard_sample(t->n, k)];
    if (st == XV_OK) st = xv_api_caption_files(f->task_model, f->tok, g, paths, (int)m, p, mine, NULL);
    if (st == XV_OK) st = xv_dist_gather_shard_strings(mine, t->n, t->captions);
    for (int64_t k = 0; mine && k < m; k++) free(mine[k]);
    free(mine), free(paths);
    return st;
}

xv_status xv_caption_evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    (void)ctx;
    const xv_caption_keys *k = f->cfg.task_data;
    if (f->cfg.test_file.n != 1) return xv_error(XV_ERR_INVALID_ARG, "captioning evaluates one test_file");
    cJSON *j = NULL, *results = cJSON_CreateArray();
    test_set t = {0};
    xv_graph *g = xv_graph_new(0);
    xv_status st = g && results ? xv_ft_read_json_list(f->cfg.test_file.paths[0], &j) : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = test_entries(f, j, f->cfg.test_file.paths[0], &t);
    if (st == XV_OK) {
        xv_graph_set_grad(g, false);
        xv_graph_set_training(g, false);
        xvlm_caption_params p = {.num_beams = k->num_beams, .max_length = k->max_length, .min_length = k->min_length,
                                 .prompt = k->prompt};
        st = caption_all(f, g, &t, &p);
    }
    xv_caption_scores sc = {0};
    if (st == XV_OK)
        st = xv_caption_scores_compute((const char *const *)t.captions, (const char *const *const *)t.refs, t.n_refs,
                                       t.n, &sc);
    for (int i = 0; st == XV_OK && i < t.n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "image_id", t.image_id[i]);
        cJSON_AddStringToObject(r, "caption", t.captions[i]);
        cJSON_AddItemToArray(results, r);
    }
    char *path = NULL;
    if (st == XV_OK) st = xv_ft_result_path(f, results_name, &path);
    char *text = st == XV_OK && path ? cJSON_Print(results) : NULL;
    if (text) st = xv_fs_write_file(path, text, strlen(text), XV_FS_DURABLE);
    free(text), free(path);
    if (st == XV_OK) {
        static const char *const names[6] = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"};
        const double v[6] = {sc.bleu[0], sc.bleu[1], sc.bleu[2], sc.bleu[3], sc.rouge_l, sc.cider_d};
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; i < 6; i++) {
            xv_ft_scores_put(out, "test", names[i], v[i]);
            xv_ft_json_num(o, names[i], v[i]);
        }
        out->metric = sc.cider_d;
        out->aux = sc.bleu[3];
        st = xv_ft_scores_set_official(out, o);
    }
    cJSON_Delete(results);
    cJSON_Delete(j);
    test_set_free(&t);
    xv_graph_free(g);
    return st;
}

void xv_caption_print_scores(const xv_finetune_scores *s, FILE *out) {
    fprintf(out, "  BLEU-4 %.4f  ROUGE-L %.4f  CIDEr-D %.4f\n", xv_finetune_scores_get(s, "test_Bleu_4"),
            xv_finetune_scores_get(s, "test_ROUGE_L"), xv_finetune_scores_get(s, "test_CIDEr"));
}

const xv_finetune_task xv_ft_captioning = {
    .name = "captioning",
    XV_CAPTION_TASK_COMMON,
    .n_terms = 1,
    .terms = {"loss"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    XV_CAPTION_TASK_EVALUATION,
};
