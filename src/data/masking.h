/* MLM masking as the official TextMaskingGenerator (dataset/pretrain_dataset.py)
 * on one unpadded token-id list whose position 0 is [CLS]:
 *
 * 1. n_pred = min(max_masks, max(1, round(mask_prob·len))), Python round (ties to even).
 * 2. Candidates 1..len−1 in shuffled order. For each (until n_pred positions are
 *    collected; skipping already collected ones): with prob skipgram_prb a span of
 *    randint(2, skipgram_size) tokens starting there, else one token; with
 *    whole-word masking the span start moves back to its word start and the end
 *    forward over following "##" pieces; positions are added left to right,
 *    stopping at the first one outside 1..len−1.
 * 3. More than n_pred collected: shuffle them and keep the first n_pred (this
 *    can split a word).
 * 4. Each kept position: r < 0.8 → [MASK]; else r' < 0.5 → a uniformly random id
 *    of the whole vocabulary (special tokens included); else unchanged.
 * 5. masked_ids = the original ids at those positions; masked_pos is padded with
 *    0 and masked_ids with −100 up to max_masks.
 *
 * Every draw comes from the caller's xv_rng, so a sample is reproducible from the
 * stream state. The draws cannot equal Python's `random` module's. Without
 * truncation the kept positions are listed in ascending order (Python lists its
 * set of small ints in an order of its own; only the order of the loss terms
 * depends on it). */
#ifndef XV_DATA_MASKING_H
#define XV_DATA_MASKING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/error.h"

typedef struct {
    double mask_prob;      /* 0.25 */
    int max_masks;         /* 8 (4M), 6 (16M) */
    double skipgram_prb;   /* 0.2 */
    int skipgram_size;     /* 3 */
    bool whole_word;       /* true */
    int32_t mask_id;       /* [MASK] (103 in bert-base-uncased) */
    int32_t vocab_size;    /* 30522 */
    /* [vocab_size]: true where the token string starts with "##". */
    const bool *is_continuation;
} xv_masking_config;

/* The pretraining values (configs/Pretrain_XVLM_base_4m.yaml: mask_prob 0.25,
 * max_masks 8, skipgram_prb 0.2, skipgram_size 3, mask_whole_word true); the
 * one place they are written. The caller sets mask_id, vocab_size and
 * is_continuation. */
xv_masking_config xv_masking_default(void);

/* Fill is_continuation[vocab_size] from the vocabulary's token strings. */
xv_status xv_masking_flags_from_tokens(const char *const *tokens, int32_t vocab_size, bool *is_continuation);

typedef struct {
    int n_masked;    /* positions kept (the n_pred of step 1, or fewer for len 1) */
    int n_collected; /* positions collected in step 2, before the truncation */
} xv_masking_info;

/* Mask ids[0..len) (len ≥ 1; len 1 has no candidates and masks nothing).
 * Outputs: ids_masked[len]; masked_pos[max_masks]; masked_ids[max_masks];
 * info may be NULL. Errors on ids outside the vocabulary or a bad config. */
xv_status xv_mask_text(const xv_masking_config *cfg, xv_rng *rng, const int32_t *ids, int len,
                       int32_t *ids_masked, int32_t *masked_pos, int32_t *masked_ids, xv_masking_info *info);

/* Step 1 alone (for tests and for sizing). */
int xv_masking_n_pred(const xv_masking_config *cfg, int len);

#endif
