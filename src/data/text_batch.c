/* Model inputs from texts: [CLS] + tokens (+ [SEP]), cut, padded, with masks,
 * in the forms of the official datasets and training scripts (tokenizer.h). */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

xv_encode_opts xv_encode_pretrain(int max_tokens) {
    return (xv_encode_opts){.max_tokens = max_tokens, .pad_to = max_tokens, .add_sep = false};
}
xv_encode_opts xv_encode_finetune(int max_tokens) {
    return (xv_encode_opts){.max_tokens = max_tokens, .pad_to = 0, .add_sep = false};
}
xv_encode_opts xv_encode_vqa_answer(void) { return (xv_encode_opts){.max_tokens = 0, .pad_to = 0, .add_sep = true}; }
xv_encode_opts xv_encode_caption(int max_tokens) {
    return (xv_encode_opts){.max_tokens = max_tokens, .pad_to = 0, .add_sep = true};
}

void xv_text_batch_free(xv_text_batch *b) {
    free(b->ids);
    free(b->atts);
    *b = (xv_text_batch){0};
}

/* Tokenizes every row (prompt + text when prompt is given) into rows[i]. */
static xv_status tokenize_rows(const xv_tokenizer *t, const char *prompt, const char *const *texts, int n,
                               xv_ids *rows) {
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return xv_error(XV_ERR_INVALID_ARG, "encode: text %d is NULL", i);
        size_t len = strlen(texts[i]);
        const char *text = texts[i];
        char *joined = NULL;
        if (prompt_len) {
            joined = malloc(prompt_len + len + 1);
            if (!joined) return xv_error(XV_ERR_NOMEM, "encode: no memory for text %d", i);
            memcpy(joined, prompt, prompt_len);
            memcpy(joined + prompt_len, texts[i], len + 1);
            text = joined;
            len += prompt_len;
        }
        xv_status s = xv_tokenize(t, text, len, &rows[i]);
        free(joined);
        if (s != XV_OK) return xv_error_wrap(s, "encode: text %d", i);
    }
    return XV_OK;
}

static xv_status encode(const xv_tokenizer *t, const char *prompt, const char *const *texts, int n,
                        const xv_encode_opts *o, xv_text_batch *out) {
    *out = (xv_text_batch){0};
    int specials = 1 + (o->add_sep ? 1 : 0);
    if (n < 0 || (n > 0 && !texts) || o->max_tokens < 0 || o->pad_to < 0)
        return xv_error(XV_ERR_INVALID_ARG, "encode: bad arguments (n %d, max_tokens %d, pad_to %d)", n,
                        o->max_tokens, o->pad_to);
    if (o->max_tokens > 0 && o->max_tokens < specials)
        return xv_error(XV_ERR_INVALID_ARG, "encode: max_tokens %d leaves no room for the %d special token(s)",
                        o->max_tokens, specials);
    xv_ids *rows = calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
    if (!rows) return xv_error(XV_ERR_NOMEM, "encode: no memory for %d rows", n);
    xv_status s = tokenize_rows(t, prompt, texts, n, rows);
    /* Row i: [CLS] + body + ([SEP]); body cut to max_tokens - specials. */
    size_t longest = 0;
    for (int i = 0; s == XV_OK && i < n; i++) {
        if (o->max_tokens > 0 && rows[i].n > (size_t)(o->max_tokens - specials))
            rows[i].n = (size_t)(o->max_tokens - specials);
        size_t row_len = rows[i].n + (size_t)specials;
        if (o->pad_to > 0 && row_len > (size_t)o->pad_to)
            s = xv_error(XV_ERR_INVALID_ARG, "encode: text %d has %zu tokens, more than pad_to %d (set max_tokens "
                         "to cut it)", i, row_len, o->pad_to);
        if (row_len > longest) longest = row_len;
    }
    if (s == XV_OK && longest > (size_t)INT32_MAX / (n > 0 ? (size_t)n : 1))
        s = xv_error(XV_ERR_NOMEM, "encode: batch too large");
    size_t L = o->pad_to > 0 ? (size_t)o->pad_to : longest;
    if (s == XV_OK && n > 0) {
        out->ids = malloc((size_t)n * L * sizeof *out->ids);
        out->atts = calloc((size_t)n * L, sizeof *out->atts);
        if (!out->ids || !out->atts) s = xv_error(XV_ERR_NOMEM, "encode: no memory for a %d x %zu batch", n, L);
    }
    if (s == XV_OK) {
        xv_special_ids sp = xv_tokenizer_special_ids(t);
        for (int i = 0; i < n; i++) {
            int32_t *ids = out->ids + (size_t)i * L;
            int32_t *atts = out->atts + (size_t)i * L;
            size_t k = 0;
            ids[k++] = sp.cls;
            if (rows[i].n) memcpy(ids + k, rows[i].v, rows[i].n * sizeof *ids); /* v is NULL when empty */
            k += rows[i].n;
            if (o->add_sep) ids[k++] = sp.sep;
            for (size_t j = 0; j < k; j++) atts[j] = 1;
            for (; k < L; k++) ids[k] = sp.pad;
        }
        out->batch = n;
        out->len = (int)L;
    } else {
        xv_text_batch_free(out);
    }
    for (int i = 0; i < n; i++) xv_ids_free(&rows[i]);
    free(rows);
    return s;
}

xv_status xv_encode_batch(const xv_tokenizer *t, const char *const *texts, int n, const xv_encode_opts *opts,
                          xv_text_batch *out) {
    return encode(t, NULL, texts, n, opts, out);
}

xv_status xv_encode_caption_batch(const xv_tokenizer *t, const char *prompt, const char *const *captions,
                                  int n, const xv_encode_opts *opts, xv_text_batch *out) {
    return encode(t, prompt ? prompt : "", captions, n, opts, out);
}
