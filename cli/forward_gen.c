/* `xvlm forward` on the generative task models (vqa-captioning sheet §2-3):
 * the VQA training step ("train.") and answer ranking ("eval."), and the
 * captioning fine-tuning ("train."), domain-pretraining ("pretrain."),
 * generation ("gen.") and SCST ("scst.") steps, each written under the
 * names of shared/fixtures/{vqa,captioning}. Settings the inputs do not
 * carry (k, beam lengths, prompt, SCST references) come from the model
 * folder's config.json ("task_config", "info.scst"), as the fixtures hold
 * them, else from the official defaults. */
#include "forward_gen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/detokenize.h"
#include "forward_io.h"
#include "model/model.h"
#include "tasks/cider.h"

/* config.json of the model folder (NULL when absent or unreadable: the
 * defaults then apply; an empty dir is a single-file model). */
static cJSON *folder_config(const char *dir) {
    if (!dir || !*dir) return NULL;
    char *path = xv_fs_join(dir, "config.json");
    uint8_t *buf = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    if (path && xv_fs_read_file(path, 64 << 20, &buf, &len) == XV_OK) root = cJSON_ParseWithLength((char *)buf, len);
    free(buf);
    free(path);
    return root;
}

static int task_int(const cJSON *cfg, const char *key, int fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "task_config"), key);
    return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static double task_num(const cJSON *cfg, const char *key, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "task_config"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static const char *task_str(const cJSON *cfg, const char *key, const char *fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "task_config"), key);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

static xv_status backward(xv_graph *g, xv_params *p, xv_tensor *loss) {
    XV_TRY(xv_graph_status(g));
    xv_params_zero_grad(p);
    return xv_backward(g, loss);
}

/* The images of a step: P.image, else train.image rows P.image_index (all of
 * them without an index). */
static xv_status step_images(const xv_st_file *in, xv_graph *g, const char *prefix, xv_tensor **out) {
    char name[64], index[64];
    snprintf(name, sizeof name, "%simage", prefix);
    snprintf(index, sizeof index, "%simage_index", prefix);
    XV_TRY(xv_forward_input(in, g, name, true, false, out));
    if (*out) return XV_OK;
    xv_tensor *all, *idx;
    XV_TRY(xv_forward_input(in, g, "train.image", true, true, &all));
    XV_TRY(xv_forward_input(in, g, index, false, false, &idx));
    if (idx)
        for (int64_t i = 0; i < idx->numel; i++)
            if (idx->idata[i] < 0 || idx->idata[i] >= all->shape[0])
                return xv_error(XV_ERR_SHAPE, "%s: input %s[%lld] = %d is not a row of train.image [%lld, ...]",
                                xv_st_path(in), index, (long long)i, idx->idata[i], (long long)all->shape[0]);
    *out = idx ? xv_gather_rows(g, all, idx) : all;
    return xv_graph_status(g);
}

/* ---- VQA ---- */

static xv_status vqa_train(xv_vqa_model *m, const xv_st_file *in, bool grads, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_tensor *img, *q_ids, *q_atts, *n_ans, *a_ids, *a_atts, *wts;
    xv_status st = xv_forward_input(in, g, "train.image", true, true, &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.question_ids", false, true, &q_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.question_atts", false, true, &q_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.answers_per_question", false, true, &n_ans);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.answer_ids", false, true, &a_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.answer_atts", false, true, &a_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.answer_weights", true, true, &wts);
    xv_tensor *vis = NULL, *qs = NULL;
    xv_vqa_train_out o = {0};
    if (st == XV_OK) {
        vis = xv_vision_embeds(g, &m->vision, img, NULL);
        qs = xv_vqa_question_states(g, m, vis, q_ids, q_atts);
        xv_vqa_train_forward(g, m, qs, q_atts, n_ans, a_ids, a_atts, wts, &o);
        st = xv_graph_status(g);
    }
    if (st == XV_OK && grads) st = backward(g, &m->params, o.loss);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"vision_embeds", vis},      {"question_states", qs}, {"decoder_hidden", o.hidden},
                              {"decoder_logits", o.logits}, {"answer_nll", o.nll},   {"loss", o.loss}};
        st = xv_forward_put_all(w, "train.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK && grads) st = xv_forward_put_grad(w, "", "train.grad.vision_embeds", vis);
        if (st == XV_OK && grads) st = xv_forward_put_grad(w, "", "train.grad.question_states", qs);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "train.", &m->params);
        if (st == XV_OK) printf("train.   vqa loss %.6f\n", o.loss->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step train. (VQA)");
}

static xv_status vqa_eval(xv_vqa_model *m, const xv_st_file *in, int k, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(false);
    if (!g) return XV_ERR_NOMEM;
    xv_tensor *img, *q_ids, *q_atts, *a_ids, *a_atts;
    xv_status st = step_images(in, g, "eval.", &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "eval.question_ids", false, true, &q_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "eval.question_atts", false, true, &q_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "eval.answer_ids", false, true, &a_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "eval.answer_atts", false, true, &a_atts);
    if (st == XV_OK && k <= 0) k = a_ids->shape[0] < 128 ? (int)a_ids->shape[0] : 128;
    if (st == XV_OK && k > a_ids->shape[0])
        st = xv_error(XV_ERR_INVALID_ARG, "k = %d exceeds the %lld candidate answers of eval.answer_ids", k,
                      (long long)a_ids->shape[0]);
    xv_tensor *vis = NULL, *qs = NULL;
    xv_vqa_ranking r = {0};
    if (st == XV_OK) {
        vis = xv_vision_embeds(g, &m->vision, img, NULL);
        qs = xv_vqa_question_states(g, m, vis, q_ids, q_atts);
        st = xv_graph_status(g);
    }
    if (st == XV_OK) st = xv_vqa_rank(g, m, qs, q_atts, a_ids, a_atts, k, true, &r);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"vision_embeds", vis},
                              {"question_states", qs},
                              {"start_logits", r.start_logits},
                              {"first_token_probs", r.first_token_probs},
                              {"topk_probs_first", r.topk_probs_first},
                              {"topk_ids_first", r.topk_ids_first},
                              {"candidate_ids", r.candidate_ids},
                              {"candidate_logits", r.candidate_logits},
                              {"candidate_nll", r.candidate_nll},
                              {"rerank_log_probs", r.rerank_log_probs},
                              {"topk_probs", r.topk_probs},
                              {"topk_ids", r.topk_ids},
                              {"pred_answer_index", r.pred}};
        st = xv_forward_put_all(w, "eval.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) printf("eval.    %lld questions ranked over %lld answers (k %d)\n", (long long)qs->shape[0],
                                (long long)a_ids->shape[0], k);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step eval. (VQA)");
}

xv_status xv_forward_vqa(xv_vqa_model *m, const char *dir, const xv_st_file *in, bool grads, int k, xv_st_writer *w,
                         int *steps) {
    *steps = 0;
    cJSON *cfg = folder_config(dir);
    if (k <= 0) k = task_int(cfg, "k_test", 0);
    cJSON_Delete(cfg);
    if (xv_st_find(in, "train.answer_ids")) {
        XV_TRY(vqa_train(m, in, grads, w));
        ++*steps;
    }
    if (xv_st_find(in, "eval.question_ids")) {
        XV_TRY(vqa_eval(m, in, k, w));
        ++*steps;
    }
    return XV_OK;
}

/* ---- captioning ---- */

static xv_status caption_train(xv_caption_model *m, const xv_st_file *in, bool grads, float smoothing,
                               int prompt_len, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_tensor *img, *ids, *atts, *labels;
    xv_status st = xv_forward_input(in, g, "train.image", true, true, &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.text_ids", false, true, &ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.text_atts", false, true, &atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.labels", false, false, &labels);
    xv_tensor *vis = NULL;
    xv_caption_lm_out o = {0}, plain = {0};
    if (st == XV_OK) {
        if (!labels) labels = xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, prompt_len);
        vis = xv_vision_embeds(g, &m->vision, img, NULL);
        xv_caption_lm_loss(g, m, vis, ids, atts, labels, smoothing, &o);
        st = xv_graph_status(g);
    }
    if (st == XV_OK && grads) st = backward(g, &m->params, o.loss);
    if (st == XV_OK) { /* the plain cross-entropy after the backward, outside the tape */
        xv_graph_set_grad(g, false);
        xv_caption_lm_loss(g, m, vis, ids, atts, labels, 0.0f, &plain);
        st = xv_graph_status(g);
    }
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"vision_embeds", vis},       {"decoder_hidden", o.hidden},
                              {"logits", o.logits},         {"token_loss", o.token_loss},
                              {"loss", o.loss},             {"loss_without_smoothing", plain.loss}};
        st = xv_forward_put_all(w, "train.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK && grads) st = xv_forward_put_grad(w, "", "train.grad.vision_embeds", vis);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "train.", &m->params);
        if (st == XV_OK) printf("train.   captioning loss %.6f\n", o.loss->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step train. (captioning)");
}

static xv_status caption_pretrain(xv_caption_model *m, const xv_st_file *in, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(false);
    if (!g) return XV_ERR_NOMEM;
    xv_tensor *img, *ids, *atts;
    xv_status st = step_images(in, g, "pretrain.", &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "pretrain.text_ids", false, true, &ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "pretrain.text_atts", false, true, &atts);
    xv_caption_lm_out o = {0};
    if (st == XV_OK) {
        xv_tensor *vis = xv_vision_embeds(g, &m->vision, img, NULL);
        xv_caption_lm_loss(g, m, vis, ids, atts, xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, 0), 0.0f, &o);
        st = xv_graph_status(g);
    }
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"token_nll", o.token_loss}, {"loss", o.loss}};
        st = xv_forward_put_all(w, "pretrain.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) printf("pretrain. captioning loss %.6f\n", o.loss->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step pretrain. (captioning)");
}

/* Beam search with o under gen.<name>.*; the input gen.<name>.settings I64 [3]
 * (num_beams, max_length, min_length) overrides o. */
static xv_status beam(xv_caption_model *m, const xv_st_file *in, xv_graph *g, xv_tensor *vis, xv_tensor *prompt,
                      const char *name, xv_beam_opts o, xv_st_writer *w) {
    char key[96];
    snprintf(key, sizeof key, "gen.%s.settings", name);
    xv_tensor *set;
    XV_TRY(xv_forward_input(in, g, key, false, false, &set));
    if (set && set->numel != 3)
        return xv_error(XV_ERR_SHAPE, "%s: input %s must hold num_beams, max_length, min_length", xv_st_path(in), key);
    if (set) o = (xv_beam_opts){.num_beams = set->idata[0], .max_length = set->idata[1],
                                .min_length = set->idata[2], .length_penalty = 1.0f};
    xv_lm_source src = xv_caption_source(m, xv_repeat_rows(g, vis, o.num_beams));
    xv_beam_result r;
    XV_TRY(xv_beam_search(g, &src, prompt, &o, &r));
    snprintf(key, sizeof key, "gen.%s.", name);
    const xv_forward_named outs[] = {{"sequences", r.sequences},     {"sequence_scores", r.sequence_scores},
                          {"cand_scores", r.cand_scores}, {"cand_tokens", r.cand_tokens},
                          {"cand_beam", r.cand_beam},     {"beam_scores", r.beam_scores},
                          {"beam_tokens", r.beam_tokens}, {"beam_rows", r.beam_rows}};
    return xv_forward_put_all(w, key, outs, sizeof outs / sizeof *outs);
}

typedef struct {
    xv_beam_opts beam;
    float smoothing;
    const char *prompt;
} caption_settings;

static xv_status caption_gen(xv_caption_model *m, const xv_st_file *in, const caption_settings *cs,
                             xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(false);
    if (!g) return XV_ERR_NOMEM;
    xv_tensor *img, *prompt;
    xv_status st = step_images(in, g, "gen.", &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "gen.prompt_ids", false, true, &prompt);
    if (st == XV_OK) {
        xv_tensor *vis = xv_vision_embeds(g, &m->vision, img, NULL);
        xv_lm_source src = xv_caption_source(m, vis);
        xv_tensor *rows = xv_repeat_rows(g, xv_reshape(g, prompt, XV_SHAPE(1, prompt->numel)), (int)img->shape[0]);
        st = xv_forward_put(w, "gen.", "first_step_logits", xv_lm_next_logits(g, &src, rows));
        /* The fixture's second setting: [SEP] suppressed for the first new ids. */
        const xv_beam_opts beam2 = {.num_beams = 3, .max_length = 18, .min_length = 14, .length_penalty = 1.0f};
        if (st == XV_OK) st = beam(m, in, g, vis, prompt, "beam", cs->beam, w);
        if (st == XV_OK) st = beam(m, in, g, vis, prompt, "beam2", beam2, w);
        xv_tensor *lp = NULL;
        xv_tensor *greedy = st == XV_OK ? xv_oscar_generate(g, &src, prompt, cs->beam.max_length, NULL, &lp, NULL) : NULL;
        xv_tensor *hf = st == XV_OK ? xv_greedy_search(g, &src, prompt, cs->beam.max_length, cs->beam.min_length) : NULL;
        if (st == XV_OK) st = xv_graph_status(g);
        const xv_forward_named outs[] = {{"greedy.sequences", greedy}, {"greedy.mean_logprob", lp}, {"hf_greedy.sequences", hf}};
        if (st == XV_OK) st = xv_forward_put_all(w, "gen.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) printf("gen.     %lld images: beam search, greedy loops\n", (long long)img->shape[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step gen. (captioning)");
}

/* ---- SCST: rewards from CIDEr-D against config.json info.scst ---- */

static char **wrap_all(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    char **s = calloc((size_t)(*n > 0 ? *n : 1), sizeof *s);
    for (int i = 0; s && i < *n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        s[i] = cJSON_IsString(e) ? xv_cider_wrap(e->valuestring) : NULL;
        if (!s[i]) *n = i; /* stop at a non-string (refused by the caller's check) */
    }
    return s;
}

static void free_all(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

static bool string_lists(const cJSON *a) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1) return false;
    for (const cJSON *e = a->child; e; e = e->next) {
        if (!cJSON_IsArray(e)) return false;
        for (const cJSON *s = e->child; s; s = s->next)
            if (!cJSON_IsString(s)) return false;
    }
    return true;
}

/* CIDEr-D of every row of seqs (row r is image r / per_image's caption). */
static xv_status cider_rows(const xv_cider *c, const xv_tokenizer *tok, const cJSON *gt, const xv_tensor *seqs,
                            int per_image, size_t prompt_chars, double *out) {
    for (int64_t r = 0; r < seqs->shape[0]; r++) {
        const cJSON *refs_j = cJSON_GetArrayItem(gt, (int)(r / per_image));
        if (!refs_j) return xv_error(XV_ERR_SHAPE, "info.scst.gt_captions has no references for image %lld",
                                     (long long)(r / per_image));
        char *caption = xv_decode_caption(tok, seqs->idata + r * seqs->shape[1], (size_t)seqs->shape[1], prompt_chars);
        char *cand = caption ? xv_cider_wrap(caption) : NULL;
        int nr;
        char **refs = wrap_all(refs_j, &nr);
        if (cand && refs) out[r] = xv_cider_d(c, cand, (const char *const *)refs, nr);
        bool ok = cand && refs;
        free_all(refs, nr);
        free(cand);
        free(caption);
        if (!ok) return xv_error(XV_ERR_NOMEM, "out of memory scoring captions");
    }
    return XV_OK;
}

static xv_status cider_from(const cJSON *corpus, xv_cider **out) {
    const int n = cJSON_GetArraySize(corpus);
    const char ***refs = calloc((size_t)n, sizeof *refs);
    int *counts = calloc((size_t)n, sizeof *counts);
    xv_status st = refs && counts ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == XV_OK && i < n; i++) {
        const cJSON *img = cJSON_GetArrayItem(corpus, i);
        counts[i] = cJSON_GetArraySize(img);
        refs[i] = calloc((size_t)(counts[i] ? counts[i] : 1), sizeof(char *));
        if (!refs[i]) st = xv_error(XV_ERR_NOMEM, "out of memory");
        for (int r = 0; st == XV_OK && r < counts[i]; r++) refs[i][r] = cJSON_GetArrayItem(img, r)->valuestring;
    }
    if (st == XV_OK) st = xv_cider_new((const char *const *const *)refs, counts, n, out);
    for (int i = 0; refs && i < n; i++) free(refs[i]);
    free(refs);
    free(counts);
    return st;
}

static xv_status caption_scst(xv_caption_model *m, const xv_st_file *in, const cJSON *cfg, const char *dir,
                              const caption_settings *cs, bool grads, xv_st_writer *w) {
    const cJSON *scst = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "info"), "scst");
    const cJSON *corpus = cJSON_GetObjectItemCaseSensitive(scst, "cider_df_corpus");
    const cJSON *gt = cJSON_GetObjectItemCaseSensitive(scst, "gt_captions");
    if (!string_lists(corpus) || !string_lists(gt))
        return xv_error(XV_ERR_MISSING, "step scst.: %s/config.json needs info.scst.cider_df_corpus (the CIDEr-D "
                        "document-frequency corpus) and info.scst.gt_captions (references per image), each a list of "
                        "lists of strings", dir && *dir ? dir : "(model)");
    char *vocab = dir && *dir ? xv_fs_join(dir, "vocab.txt") : NULL;
    xv_tokenizer *tok = NULL;
    xv_status st = vocab ? xv_tokenizer_load(vocab, &tok) : xv_error(XV_ERR_MISSING, "step scst.: no vocab.txt");
    free(vocab);
    xv_graph *g = xv_forward_step_graph(false), *gg = xv_forward_step_graph(grads);
    xv_cider *c = NULL;
    if (st == XV_OK && (!g || !gg)) st = XV_ERR_NOMEM;
    if (st == XV_OK) st = cider_from(corpus, &c);
    xv_tensor *img = NULL, *prompt = NULL, *forced = NULL;
    if (st == XV_OK) st = step_images(in, g, "gen.", &img);
    if (st == XV_OK) st = xv_forward_input(in, g, "gen.prompt_ids", false, true, &prompt);
    if (st == XV_OK) st = xv_forward_input(in, g, "scst.forced_tokens", false, true, &forced);
    const int64_t B = img ? img->shape[0] : 0, R = forced ? forced->shape[0] : 0;
    if (st == XV_OK && (R % B || R == 0))
        st = xv_error(XV_ERR_SHAPE, "scst.forced_tokens has %lld rows, not a multiple of the %lld images", (long long)R,
                      (long long)B);
    const int n = B ? (int)(R / B) : 0;
    double *cider = st == XV_OK ? calloc((size_t)(R + B), sizeof *cider) : NULL;
    float *reward = st == XV_OK ? calloc((size_t)R, sizeof *reward) : NULL;
    if (st == XV_OK && (!cider || !reward)) st = xv_error(XV_ERR_NOMEM, "out of memory");
    xv_tensor *vis = NULL, *vis_n = NULL, *greedy = NULL, *samples = NULL, *lp = NULL, *chosen = NULL;
    const size_t prompt_chars = strlen(cs->prompt);
    if (st == XV_OK) {
        vis = xv_vision_embeds(g, &m->vision, img, NULL);
        vis_n = xv_repeat_rows(g, vis, n);
        xv_lm_source src = xv_caption_source(m, vis), src_n = xv_caption_source(m, vis_n);
        greedy = xv_oscar_generate(g, &src, prompt, cs->beam.max_length, NULL, NULL, NULL);
        samples = xv_oscar_generate(g, &src_n, prompt, cs->beam.max_length, forced, &lp, &chosen);
        st = xv_graph_status(g);
    }
    if (st == XV_OK) st = cider_rows(c, tok, gt, samples, n, prompt_chars, cider);
    if (st == XV_OK) st = cider_rows(c, tok, gt, greedy, 1, prompt_chars, cider + R);
    for (int64_t r = 0; st == XV_OK && r < R; r++) reward[r] = (float)(cider[r] - cider[R + r / n]);
    xv_tensor *loss = NULL, *tf_lp = NULL;
    if (st == XV_OK) {
        loss = xv_caption_scst_loss(gg, m, vis_n, samples, (int)prompt->numel, chosen, reward, &tf_lp);
        st = xv_graph_status(gg);
    }
    if (st == XV_OK && grads) st = backward(gg, &m->params, loss);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"greedy_sequences", greedy}, {"sample_sequences", samples},
                              {"sample_mean_logprob", lp},  {"loss", loss}};
        st = xv_forward_put_all(w, "scst.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) st = xv_st_writer_add(w, "scst.cider_d", XV_ST_F64, XV_SHAPE(R + B), cider, false);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "scst.", &m->params);
        if (st == XV_OK) printf("scst.    loss %.6f (%d samples per image)\n", loss->data[0], n);
    }
    free(cider);
    free(reward);
    xv_cider_free(c);
    xv_tokenizer_free(tok);
    xv_graph_free(gg);
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step scst. (captioning)");
}

xv_status xv_forward_captioning(xv_caption_model *m, const char *dir, const xv_st_file *in, bool grads,
                                xv_st_writer *w, int *steps) {
    *steps = 0;
    cJSON *cfg = folder_config(dir);
    const caption_settings cs = {
        .beam = {.num_beams = task_int(cfg, "num_beams", 3), .max_length = task_int(cfg, "max_length", 20),
                 .min_length = task_int(cfg, "min_length", 5), .length_penalty = 1.0f},
        .smoothing = (float)task_num(cfg, "label_smoothing", 0.1),
        .prompt = task_str(cfg, "prompt", "a picture of "),
    };
    const xv_st_tensor *p = xv_st_find(in, "gen.prompt_ids");
    const int prompt_len = p ? (int)p->numel : 0;
    xv_status st = XV_OK;
    if (xv_st_find(in, "train.text_ids")) {
        if (!xv_st_find(in, "train.labels") && !p)
            st = xv_error(XV_ERR_MISSING, "step train.: give train.labels or gen.prompt_ids (the prompt to mask)");
        if (st == XV_OK) st = caption_train(m, in, grads, cs.smoothing, prompt_len, w);
        ++*steps;
    }
    if (st == XV_OK && xv_st_find(in, "pretrain.text_ids")) {
        st = caption_pretrain(m, in, w);
        ++*steps;
    }
    if (st == XV_OK && p) {
        st = caption_gen(m, in, &cs, w);
        ++*steps;
    }
    if (st == XV_OK && xv_st_find(in, "scst.forced_tokens")) {
        st = caption_scst(m, in, cfg, dir, &cs, grads, w);
        ++*steps;
    }
    cJSON_Delete(cfg);
    return st;
}
