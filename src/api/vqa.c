/* xvlm_vqa: answering questions about an image with the official VQA model
 * (model/vqa.h), as VQA.py's evaluation ranks a candidate answer list. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "api/task_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/caption.h"
#include "model/task_source.h"

struct xvlm_vqa {
    xv_vqa_model *m;
    xv_tokenizer *tok;
    xv_graph *g;
};

#define MAX_ANSWER_LIST_BYTES (256 << 20)

xvlm_vqa_params xvlm_vqa_params_default(void) { return (xvlm_vqa_params){.k = 128, .max_words = 50}; }

void xvlm_vqa_free(xvlm_vqa *v) {
    if (!v) return;
    xv_vqa_free(v->m);
    xv_tokenizer_free(v->tok);
    xv_graph_free(v->g);
    free(v);
}

static xv_status vqa_load(const char *path, const xvlm_model_params *params, xvlm_vqa **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_vqa_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_vqa_load: no model path given");
    const xvlm_model_params p = params ? *params : xvlm_model_params_default();
    const xv_infer_opts infer = {.image_res = p.image_res, .text_heads = p.text_heads};
    xvlm_vqa *v = calloc(1, sizeof *v);
    if (!v) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_vqa_open(path, &infer, p.copy_weights, &v->m);
    if (st == XV_OK) st = xv_api_task_tokenizer(path, &p, v->m->cfg.text.vocab, &v->tok);
    if (st == XV_OK) st = xv_api_set_precision(&v->m->params, &p);
    if (st == XV_OK && !(v->g = xv_graph_new(0))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        xv_graph_set_grad(v->g, false);
        xv_graph_set_training(v->g, false);
        *out = v;
    } else {
        xvlm_vqa_free(v);
    }
    return st;
}

xvlm_status xvlm_vqa_load(const char *path, const xvlm_model_params *params, xvlm_vqa **out) {
    return (xvlm_status)vqa_load(path, params, out);
}

/* The question as the official test set prepares it: pre_question, then
 * [CLS] + pieces, no truncation. */
static xv_status question_batch(const xvlm_vqa *v, const char *question, int max_words, xv_text_batch *b) {
    if (!question || !*question) return xv_error(XV_ERR_INVALID_ARG, "the question is empty");
    char *clean = NULL;
    size_t len = 0;
    XV_TRY(xv_pre_question(question, strlen(question), max_words, &clean, &len));
    size_t words = strspn(clean, " ");
    xv_status st = words == len ? xv_error(XV_ERR_INVALID_ARG, "the question \"%s\" is empty after pre_question "
                                                               "(punctuation removed)", question)
                                : XV_OK;
    const xv_encode_opts o = xv_encode_finetune(0);
    if (st == XV_OK) st = xv_encode_batch(v->tok, (const char *const *)&clean, 1, &o, b);
    free(clean);
    return st;
}

static xv_status answer(xvlm_vqa *v, const char *image_path, const char *question, const char *const *answers,
                        int n_answers, const xvlm_vqa_params *params, xvlm_answer *out, int *n_out) {
    if (!v || !out || !n_out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_vqa_answer: NULL handle or output");
    *n_out = 0;
    const xvlm_vqa_params p = params ? *params : xvlm_vqa_params_default();
    if (!answers || n_answers < 1) return xv_error(XV_ERR_INVALID_ARG, "no candidate answers given");
    if (p.k < 1) return xv_error(XV_ERR_INVALID_ARG, "k must be at least 1 (got %d)", p.k);
    for (int i = 0; i < n_answers; i++)
        if (!answers[i] || !*answers[i]) return xv_error(XV_ERR_INVALID_ARG, "candidate answer %d is empty", i);
    const int k = p.k < n_answers ? p.k : n_answers;
    xv_text_batch q = {0}, a = {0};
    const xv_encode_opts ao = xv_encode_vqa_answer();
    xv_status st = question_batch(v, question, p.max_words, &q);
    if (st == XV_OK) st = xv_encode_batch(v->tok, answers, n_answers, &ao, &a);
    xv_graph *g = v->g;
    xv_graph_reset(g);
    xv_tensor *img = NULL, *q_ids = NULL, *q_atts = NULL, *a_ids = NULL, *a_atts = NULL;
    if (st == XV_OK) st = xv_api_task_images(g, &image_path, 1, v->m->cfg.vision.image_res, &img);
    if (st == XV_OK) st = xv_api_task_text(g, &q, &q_ids, &q_atts);
    if (st == XV_OK) st = xv_api_task_text(g, &a, &a_ids, &a_atts);
    xv_vqa_ranking r = {0};
    if (st == XV_OK) {
        xv_tensor *vis = xv_vision_embeds(g, &v->m->vision, img, NULL);
        xv_tensor *qs = xv_vqa_question_states(g, v->m, vis, q_ids, q_atts);
        st = xv_graph_status(g);
        if (st == XV_OK) st = xv_vqa_rank(g, v->m, qs, q_atts, a_ids, a_atts, k, false, &r);
    }
    for (int j = 0; st == XV_OK && j < k; j++) out[j] = (xvlm_answer){r.topk_ids->idata[j], r.topk_probs->data[j]};
    if (st == XV_OK) *n_out = k;
    xv_text_batch_free(&q);
    xv_text_batch_free(&a);
    xv_graph_reset(g);
    return st;
}

xvlm_status xvlm_vqa_answer(xvlm_vqa *v, const char *image_path, const char *question, const char *const *answers,
                            int n_answers, const xvlm_vqa_params *p, xvlm_answer *out, int *n_out) {
    return (xvlm_status)answer(v, image_path, question, answers, n_answers, p, out, n_out);
}

void xvlm_strings_free(char **strings, int n) {
    for (int i = 0; strings && i < n; i++) free(strings[i]);
    free(strings);
}

static xv_status answer_list_load(const char *path, char ***answers, int *n) {
    if (!path || !answers || !n) return xv_error(XV_ERR_INVALID_ARG, "xvlm_answer_list_load: NULL argument");
    *answers = NULL;
    *n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(path, MAX_ANSWER_LIST_BYTES, &buf, &len));
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    xv_status st = XV_OK;
    if (!root) st = xv_error(XV_ERR_FORMAT, "%s: not valid JSON (an answer list is a JSON list of strings)", path);
    else if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) < 1)
        st = xv_error(XV_ERR_FORMAT, "%s: expected a non-empty JSON list of answer strings", path);
    const int count = st == XV_OK ? cJSON_GetArraySize(root) : 0;
    char **list = st == XV_OK ? calloc((size_t)count, sizeof *list) : NULL;
    if (st == XV_OK && !list) st = xv_error(XV_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = root ? root->child : NULL; st == XV_OK && e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !*e->valuestring)
            st = xv_error(XV_ERR_FORMAT, "%s: entry %d is not a non-empty string (an answer list is a JSON list of "
                                         "strings)", path, i);
        else if (!(list[i] = strdup(e->valuestring)))
            st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(root);
    if (st != XV_OK) {
        xvlm_strings_free(list, count);
        return st;
    }
    *answers = list;
    *n = count;
    return XV_OK;
}

xvlm_status xvlm_answer_list_load(const char *path, char ***answers, int *n) {
    return (xvlm_status)answer_list_load(path, answers, n);
}
