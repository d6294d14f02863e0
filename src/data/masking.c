#include "data/masking.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Texts are at most a few hundred tokens; this only bounds allocations. */
#define MASKING_MAX_LEN (1 << 20)
#define MASKING_PAD_ID (-100) /* ignored by the MLM loss */

xv_masking_config xv_masking_default(void) {
    xv_masking_config c;
    memset(&c, 0, sizeof c);
    c.mask_prob = 0.25;
    c.max_masks = 8;
    c.skipgram_prb = 0.2;
    c.skipgram_size = 3;
    c.whole_word = true;
    c.mask_id = -1; /* must be set by the caller */
    return c;
}

xv_status xv_masking_flags_from_tokens(const char *const *tokens, int32_t vocab_size, bool *is_continuation) {
    for (int32_t i = 0; i < vocab_size; i++) {
        if (!tokens[i]) return xv_error(XV_ERR_INVALID_ARG, "masking: vocabulary token %d is NULL", (int)i);
        is_continuation[i] = strncmp(tokens[i], "##", 2) == 0;
    }
    return XV_OK;
}

int xv_masking_n_pred(const xv_masking_config *cfg, int len) {
    /* Python's round() on the double product: ties to even, which is rint() in
     * the default rounding mode (len 10 -> 2, len 18 -> 4). */
    double r = rint((double)len * cfg->mask_prob);
    int n = r < 1.0 ? 1 : (int)r;
    return n < cfg->max_masks ? n : cfg->max_masks;
}

static xv_status check_config(const xv_masking_config *c) {
    if (!(c->mask_prob >= 0.0 && c->mask_prob <= 1.0))
        return xv_error(XV_ERR_INVALID_ARG, "masking: mask_prob %g outside [0, 1]", c->mask_prob);
    if (c->max_masks < 0) return xv_error(XV_ERR_INVALID_ARG, "masking: max_masks %d < 0", c->max_masks);
    if (!(c->skipgram_prb >= 0.0 && c->skipgram_prb <= 1.0))
        return xv_error(XV_ERR_INVALID_ARG, "masking: skipgram_prb %g outside [0, 1]", c->skipgram_prb);
    if (c->skipgram_size < 0 || c->skipgram_size > 64)
        return xv_error(XV_ERR_INVALID_ARG, "masking: skipgram_size %d outside [0, 64]", c->skipgram_size);
    if (c->vocab_size <= 0) return xv_error(XV_ERR_INVALID_ARG, "masking: vocab_size %d <= 0", (int)c->vocab_size);
    if (c->mask_id < 0 || c->mask_id >= c->vocab_size)
        return xv_error(XV_ERR_INVALID_ARG, "masking: mask_id %d outside the vocabulary [0, %d)", (int)c->mask_id,
                        (int)c->vocab_size);
    if (c->whole_word && !c->is_continuation)
        return xv_error(XV_ERR_INVALID_ARG, "masking: whole-word masking needs the is_continuation flags");
    return XV_OK;
}

/* Python's random.random(): 53 random bits. */
static double draw(xv_rng *rng) { return xv_rng_uniform_double(rng); }

xv_status xv_mask_text(const xv_masking_config *cfg, xv_rng *rng, const int32_t *ids, int len,
                       int32_t *ids_masked, int32_t *masked_pos, int32_t *masked_ids, xv_masking_info *info) {
    XV_TRY(check_config(cfg));
    if (len < 1 || len > MASKING_MAX_LEN)
        return xv_error(XV_ERR_INVALID_ARG, "masking: text length %d outside [1, %d] (position 0 is [CLS])", len,
                        MASKING_MAX_LEN);
    for (int i = 0; i < len; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return xv_error(XV_ERR_INVALID_ARG, "masking: token id %d at position %d outside the vocabulary [0, %d)",
                            (int)ids[i], i, (int)cfg->vocab_size);

    int n_pred = xv_masking_n_pred(cfg, len);
    int32_t *cand = malloc(sizeof *cand * (size_t)len);
    bool *taken = calloc((size_t)len, sizeof *taken);
    if (!cand || !taken) {
        free(cand);
        free(taken);
        return xv_error(XV_ERR_NOMEM, "masking: out of memory for %d tokens", len);
    }

    /* Step 2: candidates in random order, spans extended to whole words. */
    int n_cand = len - 1;
    for (int i = 0; i < n_cand; i++) cand[i] = i + 1;
    xv_rng_shuffle_i32(rng, cand, n_cand);
    const bool *cont = cfg->is_continuation;
    int collected = 0;
    for (int c = 0; c < n_cand && collected < n_pred; c++) {
        int pos = cand[c];
        if (taken[pos]) continue;
        int span = 1;
        if (cfg->skipgram_prb > 0.0 && cfg->skipgram_size >= 2 && draw(rng) < cfg->skipgram_prb)
            span = 2 + (int)xv_rng_below(rng, (uint64_t)cfg->skipgram_size - 1); /* randint(2, size) */
        int st = pos, end = pos + span;
        if (cfg->whole_word) {
            while (st >= 0 && cont[ids[st]]) st--;
            while (end < len && cont[ids[end]]) end++;
        }
        for (int mp = st; mp < end; mp++) {
            if (mp < 1 || mp > len - 1) break;
            if (!taken[mp]) {
                taken[mp] = true;
                collected++;
            }
        }
    }

    /* Step 3: the collected positions (ascending); over n_pred -> random subset. */
    int n = 0;
    for (int p = 1; p < len; p++)
        if (taken[p]) cand[n++] = p;
    if (n > n_pred) {
        xv_rng_shuffle_i32(rng, cand, n);
        n = n_pred;
    }

    /* Steps 4-5: 80/10/10 replacement and padding. */
    memcpy(ids_masked, ids, sizeof *ids * (size_t)len);
    for (int k = 0; k < n; k++) {
        int p = cand[k];
        masked_pos[k] = p;
        masked_ids[k] = ids[p];
        if (draw(rng) < 0.8)
            ids_masked[p] = cfg->mask_id;
        else if (draw(rng) < 0.5)
            ids_masked[p] = (int32_t)xv_rng_below(rng, (uint64_t)cfg->vocab_size);
    }
    for (int k = n; k < cfg->max_masks; k++) {
        masked_pos[k] = 0;
        masked_ids[k] = MASKING_PAD_ID;
    }
    if (info) {
        info->n_masked = n;
        info->n_collected = collected;
    }
    free(cand);
    free(taken);
    return XV_OK;
}
