/* Text generation with a causal BERT LM (nn/bert_lm.h) conditioned on
 * encoder states, as the official captioning model runs it (vqa-captioning
 * sheet §3.4-3.5): transformers 4.12.5 beam search and greedy search, and the
 * OSCAR loop the official code uses for the SCST baseline and sampling.
 *
 * Every row of a batch cross-attends to its own encoder states; the caller
 * repeats them per beam / per sample (image-major, as repeat_interleave).
 * Lengths count the whole sequence, prompt included. Each step runs the
 * decoder on the new token only, with the keys and values of the earlier
 * ones cached (nn/bert.h xv_bert_cache, as the official past_key_values;
 * beam search reorders the cache with the beams) and the cross-attention
 * keys and values of the encoder states computed once per generation. */
#ifndef XV_MODEL_GENERATE_H
#define XV_MODEL_GENERATE_H

#include "core/rng.h"
#include "nn/bert_lm.h"

typedef struct {
    const xv_bert_lm *lm;
    xv_tensor *enc;      /* [R, T, encoder_width] per row */
    xv_tensor *enc_atts; /* I32 [R, T], or NULL = all visible */
    int eos_id, pad_id;  /* [SEP], [PAD] */
} xv_lm_source;

/* Every row of x repeated n times in place (torch repeat_interleave on dim
 * 0): the per-beam / per-sample encoder states. NULL x gives NULL. */
xv_tensor *xv_repeat_rows(xv_graph *g, xv_tensor *x, int n);

/* Decoder logits at the last position of ids I32 [R, t] (attention all ones),
 * the whole prefix in one pass without a cache: F32 [R, V], a tensor of g. */
xv_tensor *xv_lm_next_logits(xv_graph *g, const xv_lm_source *src, xv_tensor *ids);

/* ---- beam search (transformers BeamSearchScorer, length_penalty 1, no early stopping) ---- */
typedef struct {
    int num_beams, max_length, min_length;
    float length_penalty;
} xv_beam_opts;

typedef struct {
    xv_tensor *sequences;       /* I32 [B, S]: prompt + best hypothesis, [SEP] after it when shorter
                                   than max_length, [PAD] up to S = min(longest + 1, max_length) */
    xv_tensor *sequence_scores; /* [B] sum of log-probs / length^length_penalty */
    /* the bookkeeping of every step (steps = rows of each) */
    xv_tensor *cand_scores;     /* [steps, B, 2K] best running score + log-prob candidates */
    xv_tensor *cand_tokens, *cand_beam; /* I32 [steps, B, 2K]: token, beam within the image */
    xv_tensor *beam_scores;     /* [steps, B·K] next running scores */
    xv_tensor *beam_tokens, *beam_rows; /* I32 [steps, B·K]: token, source row (done images: [PAD], 0) */
} xv_beam_result;

/* src rows = B·K (image b's beams are rows b·K .. b·K+K-1); prompt I32 [P]
 * (or [1, P]) shared by every row. Results are tensors of g. */
xv_status xv_beam_search(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, const xv_beam_opts *o,
                         xv_beam_result *out);

/* ---- greedy ---- */
/* transformers greedy search: [SEP] forbidden while the length is below
 * min_length, finished rows continue with [PAD], stops when every row has
 * finished or at max_length; I32 [R, len] (not padded further). */
xv_tensor *xv_greedy_search(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length,
                            int min_length);

/* The official (OSCAR) loop: no min_length; tokens are the argmax of the raw
 * logits, or forced[r, step] when forced (I32 [R, >= steps]: drawn samples
 * given from outside); finished rows get [PAD]; rows still unfinished at
 * max_length get [SEP] over their last token; padded to max_length.
 * *mean_logprob (optional, F32 [R]) = mean over a row's unfinished steps
 * (its [SEP] step included) of the chosen token's log-softmax; *chosen
 * (optional, I32 [R, steps]) = the token chosen at every step, before [PAD]
 * replacement and the final [SEP]. */
xv_tensor *xv_oscar_generate(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length,
                             xv_tensor *forced, xv_tensor **mean_logprob, xv_tensor **chosen);
/* The same loop sampling each token from softmax(logits) with `rng`
 * (generate(sample=True) of the SCST step: temperature 1, no top-k / top-p). */
xv_tensor *xv_oscar_sample(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length, xv_rng *rng,
                           xv_tensor **mean_logprob, xv_tensor **chosen);

#endif
