/* The official VQA model (models/model_vqa.py; vqa-captioning sheet §2): the
 * X-VLM vision encoder and text/fusion stack as the question encoder
 * (`vision_encoder.*`, `text_encoder.*` in the BertModel layout), and an answer
 * decoder (`text_decoder.*`, nn/bert_lm.h) whose every layer cross-attends to
 * the question encoder's last hidden states. No ITC/ITM/box parts.
 *
 * The decoder config is the text config with encoder_width = hidden_size,
 * fusion_layer = 0 and num_hidden_layers = num_dec_layers, which the official
 * constructor requires to be num_hidden_layers - fusion_layer. */
#ifndef XV_MODEL_VQA_H
#define XV_MODEL_VQA_H

#include "io/safetensors.h"
#include "model/config.h"
#include "nn/bert_lm.h"
#include "nn/swin.h"

typedef struct xv_vqa_model {
    xv_model_config cfg;    /* vision + question encoder */
    xv_bert_config dec_cfg; /* answer decoder */
    xv_params params;
    xv_swin vision;
    xv_bert encoder; /* text_encoder.* */
    xv_bert_lm decoder;  /* text_decoder.bert.*, text_decoder.cls.predictions.* */
    xv_st_file *mapped;  /* weights borrowed from this mapping (NULL if all owned) */
} xv_vqa_model;

/* The answer decoder's config for a question-encoder text config. */
xv_bert_config xv_vqa_decoder_config(const xv_bert_config *text);

xv_status xv_vqa_create(const xv_model_config *cfg, xv_vqa_model **out);
/* DIR/config.json + DIR/weights.safetensors, strict (xv_params_load_st). */
xv_status xv_vqa_load_dir(const char *dir, bool copy, xv_vqa_model **out);
void xv_vqa_free(xv_vqa_model *m);

/* The tensor of a pretraining checkpoint (pretraining layout) that the
 * official load_pretrained (is_eval=False, §2.2) copies into VQA parameter
 * `name`, written to buf: encoder text_encoder.X <- text_encoder.bert.X;
 * decoder layer j <- pretrained layer fusion_layer + j; decoder embeddings
 * and LM head <- the pretrained embeddings and MLM head; vision unchanged.
 * false (buf "") for the decoder's cross-attention key/value, which start
 * from a fresh init (their input width changes), and for names outside
 * the model's layout. */
bool xv_vqa_pretrain_source(const xv_vqa_model *m, const char *name, char *buf, size_t n);

/* Question states [B, Lq, H]: q_ids/q_atts I32 [B, Lq] through every encoder
 * layer, layers >= fusion_layer cross-attending to image_embeds [B, T, Cv]. */
xv_tensor *xv_vqa_question_states(xv_graph *g, const xv_vqa_model *m, xv_tensor *image_embeds, xv_tensor *q_ids,
                                  xv_tensor *q_atts);

/* Training forward (§2.4). */
typedef struct {
    xv_tensor *hidden; /* [N, La, H] decoder last layer */
    xv_tensor *logits; /* [N, La, V] */
    xv_tensor *nll;    /* [N] summed cross-entropy of answer pieces and [SEP] */
    xv_tensor *loss;   /* [1] sum_a w_a·nll_a / B */
} xv_vqa_train_out;

/* Answers ans_ids/ans_atts I32 [N, La] ([CLS] answer [SEP], padded) with
 * weights F32 [N]; answers_per_question I32 [B] (question b's answers are
 * consecutive rows, sum = N). Returns out->loss (NULL on error, in g). */
xv_tensor *xv_vqa_train_forward(xv_graph *g, const xv_vqa_model *m, xv_tensor *q_states, xv_tensor *q_atts,
                                xv_tensor *answers_per_question, xv_tensor *ans_ids, xv_tensor *ans_atts,
                                xv_tensor *weights, xv_vqa_train_out *out);

/* Answer ranking (§2.5, rank_answer), every tensor but the inputs new. */
typedef struct {
    xv_tensor *start_logits;     /* [Q, V] decoder on [CLS] alone */
    xv_tensor *first_token_probs;/* [Q, N] softmax over the vocabulary at each answer's first piece */
    xv_tensor *topk_probs_first; /* [Q, k] descending (ties: lower answer index first) */
    xv_tensor *topk_ids_first;   /* I32 [Q, k] answer-list indices */
    xv_tensor *candidate_ids;    /* I32 [Q·k, La] question-major */
    xv_tensor *candidate_logits; /* [Q·k, La, V] when kept, else NULL */
    xv_tensor *candidate_nll;    /* [Q·k] */
    xv_tensor *rerank_log_probs; /* [Q, k] log(first-token prob) - nll (first piece counted twice) */
    xv_tensor *topk_probs;       /* [Q, k] softmax of the previous, re-sorted */
    xv_tensor *topk_ids;         /* I32 [Q, k] answer-list indices in that order */
    xv_tensor *pred;             /* I32 [Q] best answer index */
} xv_vqa_ranking;

/* All candidates ans_ids/ans_atts I32 [N, La]; 1 <= k <= N. Without
 * keep_candidate_logits the candidates run question by question and only
 * their NLL is kept (at base size Q·k·La·V logits are gigabytes). */
xv_status xv_vqa_rank(xv_graph *g, const xv_vqa_model *m, xv_tensor *q_states, xv_tensor *q_atts, xv_tensor *ans_ids,
                      xv_tensor *ans_atts, int k, bool keep_candidate_logits, xv_vqa_ranking *out);

#endif
