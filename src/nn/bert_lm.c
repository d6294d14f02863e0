#include "nn/bert_lm.h"

#include <string.h>

xv_status xv_bert_lm_init(xv_bert_lm *lm, const xv_bert_config *cfg, xv_params *p, const char *prefix) {
    memset(lm, 0, sizeof *lm);
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.bert", prefix));
    XV_TRY(xv_bert_init(&lm->bert, cfg, p, name));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.cls.predictions", prefix));
    return xv_mlm_head_init(&lm->head, p, name, cfg->hidden, cfg->ln_eps, lm->bert.word);
}

void xv_bert_lm_free(xv_bert_lm *lm) { xv_bert_free(&lm->bert); }

xv_tensor *xv_bert_lm_hidden(xv_graph *g, const xv_bert_lm *lm, xv_tensor *ids, xv_tensor *atts, xv_tensor *enc,
                             xv_tensor *enc_atts) {
    return xv_bert_decode(g, &lm->bert, ids, atts, enc, enc_atts);
}

xv_tensor *xv_bert_lm_logits(xv_graph *g, const xv_bert_lm *lm, xv_tensor *hidden) {
    return xv_mlm_head_forward(g, &lm->head, hidden);
}

xv_tensor *xv_bert_lm_token_loss(xv_graph *g, xv_tensor *logits, xv_tensor *labels, float smoothing,
                                 int64_t *scored) {
    if (!logits || !labels) return NULL;
    if (logits->ndim != 3 || labels->dtype != XV_I32 || labels->ndim != 2 || labels->shape[0] != logits->shape[0] ||
        labels->shape[1] != logits->shape[1] || logits->shape[1] < 2)
        return xv_graph_fail(g, XV_ERR_SHAPE, "LM loss: need logits [B, L, V] and I32 labels [B, L] with L >= 2");
    const int64_t B = logits->shape[0], L = logits->shape[1], V = logits->shape[2];
    xv_tensor *pred = xv_reshape(g, xv_slice(g, logits, 1, 0, L - 1), XV_SHAPE(B * (L - 1), V));
    xv_tensor *target = xv_reshape(g, xv_slice(g, labels, 1, 1, L - 1), XV_SHAPE(B * (L - 1)));
    if (!target) return NULL;
    if (scored) {
        *scored = 0;
        for (int64_t i = 0; i < target->numel; i++) *scored += target->idata[i] != XV_LM_IGNORE;
    }
    return xv_reshape(g, xv_token_cross_entropy(g, pred, target, XV_LM_IGNORE, smoothing), XV_SHAPE(B, L - 1));
}

xv_tensor *xv_bert_lm_labels(xv_graph *g, xv_tensor *ids, int pad_id, int masked_prefix) {
    if (!ids) return NULL;
    if (ids->dtype != XV_I32 || ids->ndim != 2)
        return xv_graph_fail(g, XV_ERR_SHAPE, "LM labels: ids must be I32 [B, L]");
    xv_tensor *lab = xv_tensor_new(g, XV_I32, ids->shape, 2);
    if (!lab) return NULL;
    const int64_t L = ids->shape[1];
    for (int64_t i = 0; i < ids->numel; i++)
        lab->idata[i] = ids->idata[i] != pad_id && i % L >= masked_prefix ? ids->idata[i] : XV_LM_IGNORE;
    return lab;
}

xv_tensor *xv_bert_lm_sequence_nll(xv_graph *g, xv_tensor *token_loss) {
    if (!token_loss) return NULL;
    if (token_loss->ndim != 2 || token_loss->dtype != XV_F32)
        return xv_graph_fail(g, XV_ERR_SHAPE, "LM sequence NLL: token losses must be F32 [B, T]");
    const int64_t B = token_loss->shape[0], T = token_loss->shape[1];
    xv_tensor *ones = xv_tensor_new(g, XV_F32, XV_SHAPE(B, T, 1));
    if (!ones) return NULL;
    for (int64_t i = 0; i < ones->numel; i++) ones->data[i] = 1.0f;
    /* [B, 1, T]·[B, T, 1]: a row sum that backward spreads to every token. */
    xv_tensor *s = xv_bmm(g, xv_reshape(g, token_loss, XV_SHAPE(B, 1, T)), ones, false, false, 1.0f);
    return xv_reshape(g, s, XV_SHAPE(B));
}
