/* The captioning model: building, loading, LM losses, SCST loss. */
#include "model/captioning.h"

#include <stdlib.h>
#include <string.h>

#include "model/model.h"

xv_status xv_caption_create(const xv_model_config *cfg, xv_caption_model **out) {
    *out = NULL;
    XV_TRY(xv_config_validate(cfg));
    xv_caption_model *m = calloc(1, sizeof *m);
    if (!m) return xv_error(XV_ERR_NOMEM, "out of memory creating the captioning model");
    m->cfg = *cfg;
    m->sep_id = 102;
    xv_params_init(&m->params);
    xv_status st = xv_swin_init(&m->vision, &cfg->vision, &m->params, "vision_encoder");
    if (st == XV_OK) st = xv_bert_lm_init(&m->decoder, &cfg->text, &m->params, "text_decoder");
    if (st != XV_OK) {
        xv_caption_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

void xv_caption_free(xv_caption_model *m) {
    if (!m) return;
    xv_swin_free(&m->vision);
    xv_bert_lm_free(&m->decoder);
    xv_params_free(&m->params);
    if (m->mapped) xv_st_close(m->mapped);
    free(m);
}

xv_status xv_caption_load_dir(const char *dir, bool copy, xv_caption_model **out) {
    *out = NULL;
    char wpath[4096];
    xv_model_config cfg;
    XV_TRY(xv_model_dir_config(dir, &cfg, wpath, sizeof wpath));
    xv_caption_model *m;
    XV_TRY(xv_caption_create(&cfg, &m));
    xv_status st = xv_params_load_file(&m->params, cfg.vision.window, wpath, copy, &m->mapped);
    if (st != XV_OK) {
        xv_caption_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

xv_tensor *xv_caption_lm_loss(xv_graph *g, const xv_caption_model *m, xv_tensor *image_embeds, xv_tensor *ids,
                              xv_tensor *atts, xv_tensor *labels, float smoothing, xv_caption_lm_out *out) {
    memset(out, 0, sizeof *out);
    out->hidden = xv_bert_lm_hidden(g, &m->decoder, ids, atts, image_embeds, NULL);
    out->logits = xv_bert_lm_logits(g, &m->decoder, out->hidden);
    int64_t scored = 0;
    out->token_loss = xv_bert_lm_token_loss(g, out->logits, labels, smoothing, &scored);
    if (!out->token_loss) return NULL;
    /* Mean over the batch's scored targets (0 when there are none). */
    out->loss = xv_scale(g, xv_sum(g, out->token_loss), scored ? 1.0f / (float)scored : 0.0f, 0.0f);
    return out->loss;
}

xv_lm_source xv_caption_source(const xv_caption_model *m, xv_tensor *image_embeds) {
    xv_lm_source s = {
        .lm = &m->decoder, .enc = image_embeds, .enc_atts = NULL, .eos_id = m->sep_id, .pad_id = m->cfg.text.pad_id};
    return s;
}

xv_tensor *xv_caption_scst_loss(xv_graph *g, const xv_caption_model *m, xv_tensor *image_embeds, xv_tensor *sequences,
                                int prompt_len, xv_tensor *chosen, const float *rewards, xv_tensor **mean_logprob) {
    if (!sequences || !chosen) return NULL;
    const int64_t R = chosen->shape[0], n = chosen->ndim == 2 ? chosen->shape[1] : 0, L = prompt_len + n;
    if (chosen->dtype != XV_I32 || n < 1 || sequences->dtype != XV_I32 || sequences->ndim != 2 ||
        sequences->shape[0] != R || sequences->shape[1] < L || prompt_len < 1)
        return xv_graph_fail(g, XV_ERR_SHAPE,
                             "SCST: need sequences I32 [R, >= prompt + steps] and the chosen tokens I32 [R, steps]");
    const int eos = m->sep_id;
    xv_tensor *ids = xv_slice(g, sequences, 1, 0, L);
    xv_tensor *ones = xv_tensor_new(g, XV_I32, XV_SHAPE(R, L)), *labels = xv_tensor_new(g, XV_I32, XV_SHAPE(R, L));
    xv_tensor *w = xv_tensor_new(g, XV_F32, XV_SHAPE(R, L - 1));
    int32_t *count = xv_graph_calloc(g, sizeof(int32_t) * (size_t)R);
    if (!ids || !ones || !labels || !w || !count) return NULL;
    /* Step j's token is the target of position prompt_len + j while the row
     * has not yet produced [SEP]. */
    for (int64_t r = 0; r < R; r++) {
        bool open = true;
        for (int64_t i = 0; i < L; i++) {
            ones->idata[r * L + i] = 1;
            int64_t j = i - prompt_len;
            int32_t tok = j >= 0 ? chosen->idata[r * n + j] : 0;
            labels->idata[r * L + i] = j >= 0 && open ? tok : XV_LM_IGNORE;
            if (j >= 0 && open) count[r]++, open = tok != eos;
        }
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < L - 1; i++) w->data[r * (L - 1) + i] = rewards[r] / (float)(count[r] * R);
    xv_tensor *h = xv_bert_lm_hidden(g, &m->decoder, ids, ones, image_embeds, NULL);
    xv_tensor *tok = xv_bert_lm_token_loss(g, xv_bert_lm_logits(g, &m->decoder, h), labels, 0.0f, NULL);
    if (mean_logprob) {
        xv_tensor *nll = xv_bert_lm_sequence_nll(g, tok);
        *mean_logprob = xv_tensor_new(g, XV_F32, XV_SHAPE(R));
        for (int64_t r = 0; nll && *mean_logprob && r < R; r++)
            (*mean_logprob)->data[r] = -nll->data[r] / (float)count[r];
    }
    /* mean_r(-lp_r·reward_r) with -lp_r = sum_t loss_rt / count_r. */
    return xv_sum(g, xv_mul(g, tok, w));
}
