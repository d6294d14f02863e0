/* The VQA model: building, loading, the training forward and answer ranking. */
#include "model/vqa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

xv_bert_config xv_vqa_decoder_config(const xv_bert_config *text) {
    xv_bert_config d = *text;
    d.encoder_width = text->hidden; /* cross-attends to question states */
    d.fusion_layer = 0;
    d.layers = text->layers - text->fusion_layer;
    return d;
}

static xv_status build(xv_vqa_model *m) {
    if (m->dec_cfg.layers < 1)
        return xv_error(XV_ERR_INVALID_ARG,
                        "VQA: the answer decoder needs num_hidden_layers %d - fusion_layer %d >= 1 layers",
                        m->cfg.text.layers, m->cfg.text.fusion_layer);
    XV_TRY(xv_swin_init(&m->vision, &m->cfg.vision, &m->params, "vision_encoder"));
    XV_TRY(xv_bert_init(&m->encoder, &m->cfg.text, &m->params, "text_encoder"));
    return xv_bert_lm_init(&m->decoder, &m->dec_cfg, &m->params, "text_decoder");
}

xv_status xv_vqa_create(const xv_model_config *cfg, xv_vqa_model **out) {
    *out = NULL;
    XV_TRY(xv_config_validate(cfg));
    xv_vqa_model *m = calloc(1, sizeof *m);
    if (!m) return xv_error(XV_ERR_NOMEM, "out of memory creating the VQA model");
    m->cfg = *cfg;
    m->dec_cfg = xv_vqa_decoder_config(&cfg->text);
    xv_params_init(&m->params);
    xv_status st = build(m);
    if (st != XV_OK) {
        xv_vqa_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

void xv_vqa_free(xv_vqa_model *m) {
    if (!m) return;
    xv_swin_free(&m->vision);
    xv_bert_free(&m->encoder);
    xv_bert_lm_free(&m->decoder);
    xv_params_free(&m->params);
    if (m->mapped) xv_st_close(m->mapped);
    free(m);
}

xv_status xv_vqa_load_dir(const char *dir, bool copy, xv_vqa_model **out) {
    *out = NULL;
    char wpath[4096];
    xv_model_config cfg;
    XV_TRY(xv_model_dir_config(dir, &cfg, wpath, sizeof wpath));
    xv_vqa_model *m;
    XV_TRY(xv_vqa_create(&cfg, &m));
    xv_status st = xv_params_load_file(&m->params, cfg.vision.window, wpath, copy, &m->mapped);
    if (st != XV_OK) {
        xv_vqa_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

static bool prefixed(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

bool xv_vqa_pretrain_source(const xv_vqa_model *m, const char *name, char *buf, size_t n) {
    static const char enc[] = "text_encoder.", dec_layer[] = "text_decoder.bert.encoder.layer.",
                      dec[] = "text_decoder.";
    int written = -1;
    if (prefixed(name, "vision_encoder.")) {
        written = snprintf(buf, n, "%s", name);
    } else if (prefixed(name, enc)) {
        written = snprintf(buf, n, "text_encoder.bert.%s", name + strlen(enc));
    } else if (prefixed(name, dec_layer)) {
        char *rest;
        long j = strtol(name + strlen(dec_layer), &rest, 10);
        bool fresh = prefixed(rest, ".crossattention.self.key.") || prefixed(rest, ".crossattention.self.value.");
        if (*rest == '.' && j >= 0 && j < m->dec_cfg.layers && !fresh)
            written = snprintf(buf, n, "text_encoder.bert.encoder.layer.%ld%s", j + m->cfg.text.fusion_layer, rest);
    } else if (prefixed(name, dec)) {
        written = snprintf(buf, n, "text_encoder.%s", name + strlen(dec)); /* bert.embeddings.*, cls.predictions.* */
    }
    if (written < 0 || (size_t)written >= n) {
        if (n) buf[0] = '\0';
        return false;
    }
    return true;
}

xv_tensor *xv_vqa_question_states(xv_graph *g, const xv_vqa_model *m, xv_tensor *image_embeds, xv_tensor *q_ids,
                                  xv_tensor *q_atts) {
    return xv_bert_forward(g, &m->encoder, XV_BERT_MULTI_MODAL, q_ids, q_atts, image_embeds, NULL);
}

/* Row b of the question batch once per answer: I32 [N] indices. */
static xv_tensor *answer_questions(xv_graph *g, xv_tensor *per_q, int64_t B, int64_t N) {
    if (!per_q) return NULL;
    if (per_q->dtype != XV_I32 || per_q->ndim != 1 || per_q->shape[0] != B)
        return xv_graph_fail(g, XV_ERR_SHAPE, "VQA: answers_per_question must be I32 [%lld]", (long long)B);
    xv_tensor *idx = xv_tensor_new(g, XV_I32, XV_SHAPE(N));
    if (!idx) return NULL;
    int64_t at = 0;
    for (int64_t b = 0; b < B; b++) {
        int32_t n = per_q->idata[b];
        if (n < 0 || at + n > N)
            return xv_graph_fail(g, XV_ERR_INVALID_ARG,
                                 "VQA: answers_per_question[%lld] = %d overruns the %lld answers", (long long)b, n,
                                 (long long)N);
        for (int32_t j = 0; j < n; j++) idx->idata[at++] = (int32_t)b;
    }
    if (at != N)
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "VQA: answers_per_question sums to %lld, but there are %lld answers",
                             (long long)at, (long long)N);
    return idx;
}

/* Decoder pass over answers: hidden, logits and per-answer NLL. */
static xv_tensor *answer_nll(xv_graph *g, const xv_vqa_model *m, xv_tensor *ids, xv_tensor *atts,
                             xv_tensor *q_states, xv_tensor *q_atts, xv_tensor **hidden, xv_tensor **logits) {
    *hidden = xv_bert_lm_hidden(g, &m->decoder, ids, atts, q_states, q_atts);
    *logits = xv_bert_lm_logits(g, &m->decoder, *hidden);
    xv_tensor *labels = xv_bert_lm_labels(g, ids, m->dec_cfg.pad_id, 0);
    return xv_bert_lm_sequence_nll(g, xv_bert_lm_token_loss(g, *logits, labels, 0.0f, NULL));
}

xv_tensor *xv_vqa_train_forward(xv_graph *g, const xv_vqa_model *m, xv_tensor *q_states, xv_tensor *q_atts,
                                xv_tensor *answers_per_question, xv_tensor *ans_ids, xv_tensor *ans_atts,
                                xv_tensor *weights, xv_vqa_train_out *out) {
    memset(out, 0, sizeof *out);
    if (!q_states || !q_atts || !ans_ids || !weights) return NULL;
    const int64_t B = q_states->shape[0], N = ans_ids->shape[0];
    if (weights->dtype != XV_F32 || weights->numel != N)
        return xv_graph_fail(g, XV_ERR_SHAPE, "VQA: answer weights must be F32 [%lld]", (long long)N);
    xv_tensor *idx = answer_questions(g, answers_per_question, B, N);
    xv_tensor *qs = xv_gather_rows(g, q_states, idx), *qa = xv_gather_rows(g, q_atts, idx);
    out->nll = answer_nll(g, m, ans_ids, ans_atts, qs, qa, &out->hidden, &out->logits);
    /* sum_a w_a·nll_a / B with B the number of questions, not answers. */
    out->loss = xv_scale(g, xv_sum(g, xv_mul(g, out->nll, weights)), 1.0f / (float)B, 0.0f);
    return out->loss;
}

/* Indices of the k largest of v[0..n) in descending order; ties keep the
 * lower index first (torch.topk leaves their order unspecified). taken: n
 * bytes of scratch. */
static void top_k(const float *v, int64_t n, int k, int32_t *idx, bool *taken) {
    memset(taken, 0, (size_t)n);
    for (int j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || v[i] > v[best])) best = i;
        taken[best] = true;
        idx[j] = (int32_t)best;
    }
}

/* The decoder on [CLS] alone per question: start logits and each answer's
 * first-piece probability. */
static xv_status first_token_pass(xv_graph *g, const xv_vqa_model *m, xv_tensor *q_states, xv_tensor *q_atts,
                                  xv_tensor *ans_ids, xv_vqa_ranking *out) {
    const int64_t Q = q_states->shape[0], N = ans_ids->shape[0], V = m->dec_cfg.vocab;
    xv_tensor *start = xv_tensor_new(g, XV_I32, XV_SHAPE(Q, 1)), *ones = xv_tensor_new(g, XV_I32, XV_SHAPE(Q, 1));
    if (!start || !ones) return xv_graph_status(g);
    for (int64_t q = 0; q < Q; q++) start->idata[q] = ans_ids->idata[0], ones->idata[q] = 1;
    xv_tensor *h = xv_bert_lm_hidden(g, &m->decoder, start, ones, q_states, q_atts);
    out->start_logits = xv_reshape(g, xv_bert_lm_logits(g, &m->decoder, h), XV_SHAPE(Q, V));
    xv_tensor *p = xv_softmax(g, out->start_logits, NULL);
    out->first_token_probs = xv_tensor_new(g, XV_F32, XV_SHAPE(Q, N));
    if (!p || !out->first_token_probs) return xv_graph_status(g);
    for (int64_t i = 0; i < N; i++) {
        int32_t t = ans_ids->idata[i * ans_ids->shape[1] + 1];
        if (t < 0 || t >= V)
            return xv_error(XV_ERR_INVALID_ARG, "VQA: answer %lld's first piece id %d is outside the vocabulary",
                            (long long)i, t);
        for (int64_t q = 0; q < Q; q++) out->first_token_probs->data[q * N + i] = p->data[q * V + t];
    }
    return XV_OK;
}

/* The candidates' NLL one question at a time in a scratch graph, so memory
 * holds k·La·V logits instead of Q·k·La·V. */
static xv_status candidate_nll_by_question(xv_graph *g, const xv_vqa_model *m, xv_tensor *cand_ids,
                                           xv_tensor *cand_atts, xv_tensor *q_states, xv_tensor *q_atts, int k,
                                           xv_vqa_ranking *out) {
    if (!cand_ids || !cand_atts) return xv_graph_status(g);
    const int64_t Q = q_states->shape[0], La = cand_ids->shape[1];
    out->candidate_nll = xv_tensor_new(g, XV_F32, XV_SHAPE(Q * k));
    xv_graph *sg = xv_graph_new(0);
    if (!out->candidate_nll || !sg) {
        xv_graph_free(sg);
        return xv_graph_status(g) != XV_OK ? xv_graph_status(g) : xv_error(XV_ERR_NOMEM, "VQA: out of memory");
    }
    xv_graph_set_grad(sg, false);
    xv_status st = XV_OK;
    for (int64_t q = 0; st == XV_OK && q < Q; q++) {
        xv_graph_reset(sg);
        xv_tensor *same = xv_tensor_new(sg, XV_I32, XV_SHAPE(k)), *h, *logits;
        for (int j = 0; same && j < k; j++) same->idata[j] = (int32_t)q;
        xv_tensor *nll = answer_nll(sg, m, xv_tensor_wrap_i32(sg, cand_ids->idata + q * k * La, XV_SHAPE(k, La)),
                                    xv_tensor_wrap_i32(sg, cand_atts->idata + q * k * La, XV_SHAPE(k, La)),
                                    xv_gather_rows(sg, q_states, same), xv_gather_rows(sg, q_atts, same), &h, &logits);
        if (!nll) st = xv_graph_status(sg) != XV_OK ? xv_graph_status(sg) : XV_ERR_INTERNAL;
        else memcpy(out->candidate_nll->data + q * k, nll->data, sizeof(float) * (size_t)k);
    }
    xv_graph_free(sg);
    return st;
}

xv_status xv_vqa_rank(xv_graph *g, const xv_vqa_model *m, xv_tensor *q_states, xv_tensor *q_atts, xv_tensor *ans_ids,
                      xv_tensor *ans_atts, int k, bool keep_candidate_logits, xv_vqa_ranking *out) {
    memset(out, 0, sizeof *out);
    if (!q_states || !q_atts || !ans_ids || !ans_atts) return xv_graph_status(g);
    if (ans_ids->dtype != XV_I32 || ans_ids->ndim != 2 || ans_ids->shape[1] < 2 || !xv_same_shape(ans_ids, ans_atts))
        return xv_error(XV_ERR_SHAPE, "VQA: candidate answers must be I32 [N, La >= 2] with a mask alike");
    const int64_t Q = q_states->shape[0], N = ans_ids->shape[0];
    if (k < 1 || k > N)
        return xv_error(XV_ERR_INVALID_ARG, "VQA: k_test %d must be in [1, %lld] (the number of candidate answers)",
                        k, (long long)N);
    XV_TRY(first_token_pass(g, m, q_states, q_atts, ans_ids, out));

    out->topk_ids_first = xv_tensor_new(g, XV_I32, XV_SHAPE(Q, k));
    out->topk_probs_first = xv_tensor_new(g, XV_F32, XV_SHAPE(Q, k));
    xv_tensor *rows = xv_tensor_new(g, XV_I32, XV_SHAPE(Q * k)), *qrows = xv_tensor_new(g, XV_I32, XV_SHAPE(Q * k));
    bool *taken = xv_graph_alloc(g, (size_t)N);
    if (!out->topk_ids_first || !out->topk_probs_first || !rows || !qrows || !taken) return xv_graph_status(g);
    for (int64_t q = 0; q < Q; q++) {
        const float *pf = out->first_token_probs->data + q * N;
        int32_t *ids = out->topk_ids_first->idata + q * k;
        top_k(pf, N, k, ids, taken);
        for (int j = 0; j < k; j++) {
            out->topk_probs_first->data[q * k + j] = pf[ids[j]];
            rows->idata[q * k + j] = ids[j];
            qrows->idata[q * k + j] = (int32_t)q;
        }
    }
    out->candidate_ids = xv_gather_rows(g, ans_ids, rows);
    xv_tensor *cand_atts = xv_gather_rows(g, ans_atts, rows), *h;
    if (keep_candidate_logits)
        out->candidate_nll = answer_nll(g, m, out->candidate_ids, cand_atts, xv_gather_rows(g, q_states, qrows),
                                        xv_gather_rows(g, q_atts, qrows), &h, &out->candidate_logits);
    else
        XV_TRY(candidate_nll_by_question(g, m, out->candidate_ids, cand_atts, q_states, q_atts, k, out));
    out->rerank_log_probs = xv_tensor_new(g, XV_F32, XV_SHAPE(Q, k));
    if (!out->candidate_nll || !out->rerank_log_probs) return xv_graph_status(g);
    for (int64_t i = 0; i < Q * k; i++)
        out->rerank_log_probs->data[i] = logf(out->topk_probs_first->data[i]) - out->candidate_nll->data[i];

    /* Softmax over each question's k candidates, then sorted again. */
    xv_tensor *p = xv_softmax(g, out->rerank_log_probs, NULL);
    out->topk_probs = xv_tensor_new(g, XV_F32, XV_SHAPE(Q, k));
    out->topk_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(Q, k));
    out->pred = xv_tensor_new(g, XV_I32, XV_SHAPE(Q));
    int32_t *order = xv_graph_alloc(g, sizeof(int32_t) * (size_t)k);
    if (!p || !out->topk_probs || !out->topk_ids || !out->pred || !order) return xv_graph_status(g);
    for (int64_t q = 0; q < Q; q++) {
        top_k(p->data + q * k, k, k, order, taken);
        for (int j = 0; j < k; j++) {
            out->topk_probs->data[q * k + j] = p->data[q * k + order[j]];
            out->topk_ids->idata[q * k + j] = out->topk_ids_first->idata[q * k + order[j]];
        }
        out->pred->idata[q] = out->topk_ids->idata[q * k];
    }
    return xv_graph_status(g);
}
