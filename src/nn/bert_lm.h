/* The official BertLMHeadModel (models/xbert.py; vqa-captioning sheet §1): a
 * BERT without pooler run as a causal decoder (`prefix.bert.*`) and the MLM
 * head as its LM head (`prefix.cls.predictions.*`), whose output matrix is the
 * decoder's own word embeddings (tied, aliased names). VQA's answer decoder
 * and the captioning model are both this module. */
#ifndef XV_NN_BERT_LM_H
#define XV_NN_BERT_LM_H

#include "nn/bert.h"
#include "nn/heads.h"

typedef struct {
    xv_bert bert;
    xv_mlm_head head;
} xv_bert_lm;

/* cfg.encoder_width is the width of the states the layers >= cfg.fusion_layer
 * cross-attend to. */
xv_status xv_bert_lm_init(xv_bert_lm *lm, const xv_bert_config *cfg, xv_params *p, const char *prefix);
void xv_bert_lm_free(xv_bert_lm *lm);

/* Last hidden states [B, L, H] of ids I32 [B, L] with padding mask atts I32
 * [B, L], cross-attending to enc [B, T, encoder_width] (mask enc_atts I32
 * [B, T], NULL = all visible). */
xv_tensor *xv_bert_lm_hidden(xv_graph *g, const xv_bert_lm *lm, xv_tensor *ids, xv_tensor *atts, xv_tensor *enc,
                             xv_tensor *enc_atts);
/* Logits [..., vocab] of hidden states [..., H]. */
xv_tensor *xv_bert_lm_logits(xv_graph *g, const xv_bert_lm *lm, xv_tensor *hidden);

/* Shifted per-token losses [B, L-1]: entry (b, t) scores logits[b, t] against
 * labels[b, t+1] (labels I32 [B, L], -100 = ignored -> 0), label-smoothed with
 * `smoothing` (0 = plain cross-entropy). *scored (optional) gets the number of
 * targets that are not ignored. */
xv_tensor *xv_bert_lm_token_loss(xv_graph *g, xv_tensor *logits, xv_tensor *labels, float smoothing,
                                 int64_t *scored);

/* Per-sequence sums [B] of token losses [B, T] (the official reduction='none':
 * a sequence's NLL), differentiable. */
xv_tensor *xv_bert_lm_sequence_nll(xv_graph *g, xv_tensor *token_loss);

/* Labels for ids I32 [B, L] as the official code makes them: [PAD] ids ->
 * -100, and the first `masked_prefix` positions of every row -> -100
 * (captioning's prompt). */
xv_tensor *xv_bert_lm_labels(xv_graph *g, xv_tensor *ids, int pad_id, int masked_prefix);

#define XV_LM_IGNORE (-100)

#endif
