/* Encoding texts: pre_caption, WordPiece ([CLS] + tokens, no [SEP]), the text
 * encoder (mode 'text'), the ITC features; each text's states are kept for
 * the fusion encoder (ITM, grounding). */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "data/caption.h"

/* Texts per text-encoder pass (Retrieval.py uses 64 to 256). */
#define TEXT_BATCH 64

xvlm_text_params xvlm_text_params_default(void) { return (xvlm_text_params){.max_words = 30, .max_tokens = 40}; }

void xvlm_texts_free(xvlm_texts *tx) {
    if (!tx) return;
    if (tx->clean)
        for (int64_t i = 0; i < tx->n; i++) free(tx->clean[i]);
    free(tx->clean);
    free(tx->feat);
    free(tx->states);
    free(tx->off);
    free(tx->ids);
    free(tx);
}

int64_t xvlm_texts_count(const xvlm_texts *tx) { return tx ? tx->n : 0; }
const float *xvlm_texts_features(const xvlm_texts *tx) { return tx ? tx->feat : NULL; }
const char *xvlm_texts_text(const xvlm_texts *tx, int64_t i) {
    return tx && i >= 0 && i < tx->n ? tx->clean[i] : NULL;
}

const int32_t *xvlm_texts_tokens(const xvlm_texts *tx, int64_t i, int64_t *len) {
    if (!tx || i < 0 || i >= tx->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tx->off[i + 1] - tx->off[i];
    return tx->ids + tx->off[i];
}

const char *xvlm_model_token(const xvlm_model *m, int32_t id) {
    return m ? xv_tokenizer_id_to_token(m->tok, id) : NULL;
}

/* Tokenize and encode texts [first, first+b): states appended after row
 * `rows` (grown as needed), features into tx->feat. */
static xv_status encode_batch(xvlm_ctx *ctx, xvlm_texts *tx, int first, int b, const xv_encode_opts *opts,
                              int64_t *rows, int64_t *cap) {
    const xvlm_model *mm = ctx->model;
    const xv_model *m = mm->m;
    xv_text_batch tb;
    XV_TRY(xv_encode_batch(mm->tok, (const char *const *)tx->clean + first, b, opts, &tb));
    xv_graph *g = ctx->g;
    xv_graph_reset(g);
    xv_tensor *ids = xv_tensor_wrap_i32(g, tb.ids, XV_SHAPE(b, tb.len));
    xv_tensor *atts = xv_tensor_wrap_i32(g, tb.atts, XV_SHAPE(b, tb.len));
    xv_tensor *states = xv_model_text(g, m, ids, atts, NULL);
    xv_tensor *feat = m->parts.itc ? xv_model_text_feat(g, m, states) : NULL;
    xv_status st = xv_graph_status(g);
    if (st != XV_OK) {
        xv_text_batch_free(&tb);
        return xv_error_wrap(st, "text encoder (texts %d..%d)", first, first + b - 1);
    }
    if (feat) memcpy(tx->feat + (size_t)first * (size_t)tx->E, feat->data, sizeof(float) * (size_t)feat->numel);
    const int H = tx->H;
    for (int i = 0; i < b && st == XV_OK; i++) {
        int len = 0;
        while (len < tb.len && tb.atts[(size_t)i * (size_t)tb.len + (size_t)len]) len++;
        if (*rows + len > *cap) {
            int64_t nc = *cap ? *cap * 2 : 256;
            while (nc < *rows + len) nc *= 2;
            float *s = realloc(tx->states, sizeof(float) * (size_t)nc * (size_t)H);
            if (s) tx->states = s;
            int32_t *grown = s ? realloc(tx->ids, sizeof(int32_t) * (size_t)nc) : NULL;
            if (!grown) {
                st = xv_error(XV_ERR_NOMEM, "out of memory for text states");
                break;
            }
            tx->ids = grown;
            *cap = nc;
        }
        /* Real tokens come first ([CLS] + tokens), padding after them. */
        memcpy(tx->states + (size_t)*rows * (size_t)H, states->data + (size_t)i * (size_t)tb.len * (size_t)H,
               sizeof(float) * (size_t)len * (size_t)H);
        memcpy(tx->ids + *rows, tb.ids + (size_t)i * (size_t)tb.len, sizeof(int32_t) * (size_t)len);
        tx->off[first + i] = *rows;
        *rows += len;
        tx->off[first + i + 1] = *rows;
    }
    xv_text_batch_free(&tb);
    return st;
}

xv_status xv_api_encode_texts(xvlm_ctx *ctx, const char *const *texts, int n, const xvlm_text_params *params,
                              xvlm_texts **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "encode texts: out is NULL");
    *out = NULL;
    if (!ctx || n < 0 || (n > 0 && !texts)) return xv_error(XV_ERR_INVALID_ARG, "encode texts: bad arguments");
    xvlm_text_params p = params ? *params : xvlm_text_params_default();
    const xv_model *m = ctx->model->m;
    if (p.max_words < 1 || p.max_tokens < 0 || p.max_tokens == 1)
        return xv_error(XV_ERR_INVALID_ARG, "encode texts: max_words %d (>= 1) and max_tokens %d (0 or >= 2)",
                        p.max_words, p.max_tokens);
    /* The encoder has max_positions position embeddings: longer rows are cut. */
    int cap_tokens = p.max_tokens > 0 && p.max_tokens < m->cfg.text.max_positions ? p.max_tokens
                                                                                    : m->cfg.text.max_positions;
    xv_encode_opts opts = xv_encode_finetune(cap_tokens);

    xvlm_texts *tx = calloc(1, sizeof *tx);
    if (!tx) return xv_error(XV_ERR_NOMEM, "out of memory");
    tx->model_id = ctx->model->id;
    tx->n = n;
    tx->E = m->parts.itc ? m->cfg.embed_dim : 0;
    tx->H = m->cfg.text.hidden;
    size_t rows1 = (size_t)(n > 0 ? n : 1);
    tx->clean = calloc(rows1, sizeof *tx->clean);
    tx->off = calloc(rows1 + 1, sizeof *tx->off);
    tx->feat = tx->E ? calloc(rows1 * (size_t)tx->E, sizeof *tx->feat) : NULL;
    xv_status st = XV_OK;
    if (!tx->clean || !tx->off || (tx->E && !tx->feat)) st = xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == XV_OK && i < n; i++) {
        if (!texts[i]) {
            st = xv_error(XV_ERR_INVALID_ARG, "text %d is NULL", i);
            break;
        }
        size_t len;
        st = xv_pre_caption(texts[i], strlen(texts[i]), p.max_words, &tx->clean[i], &len);
        if (st == XV_ERR_INVALID_ARG)
            st = xv_error(st, "text %d (\"%.80s\") is empty after cleaning (pre_caption removes , . ' ! ? \" ( ) * # : ; ~ "
                              "and turns - / into spaces)", i, texts[i]);
        else if (st != XV_OK)
            st = xv_error_wrap(st, "text %d", i);
    }
    int64_t rows = 0, cap = 0;
    for (int first = 0; st == XV_OK && first < n; first += TEXT_BATCH) {
        int b = n - first < TEXT_BATCH ? n - first : TEXT_BATCH;
        st = encode_batch(ctx, tx, first, b, &opts, &rows, &cap);
    }
    xv_graph_reset(ctx->g);
    if (st != XV_OK) {
        xvlm_texts_free(tx);
        return st;
    }
    *out = tx;
    return XV_OK;
}
