/* Captioning metrics as the COCO caption evaluation (pycocoevalcap, which
 * Captioning.py calls through COCOEvalCap) computes them, corpus-wide:
 *   - BLEU-1..4 (bleu_scorer.py): clipped n-gram matches and guesses summed
 *     over the corpus, each ratio (correct + 1e-15) / (guess + 1e-9), the
 *     geometric mean of the first n, times the brevity penalty exp(1 - r/c)
 *     when the candidates' total length c is below r, the sum over images
 *     of the reference length closest to the candidate's (ties: the shorter);
 *   - ROUGE-L (rouge.py): per image, P and R of the longest common
 *     subsequence against each reference, F = (1 + β²)·maxP·maxR /
 *     (maxR + β²·maxP) with β = 1.2; averaged over images;
 *   - CIDEr-D (cider_scorer.py: tasks/cider.h with document frequencies
 *     from the evaluated references themselves); averaged over images.
 * METEOR and SPICE need Java and are not computed.
 *
 * Texts first go through xv_coco_tokenize, a C restatement of the
 * toolkit's PTB tokenisation step for plain text (see there). */
#ifndef XV_TASKS_CAPTION_METRICS_H
#define XV_TASKS_CAPTION_METRICS_H

#include "core/error.h"

typedef struct {
    double bleu[4]; /* BLEU-1..4 */
    double rouge_l;
    double cider_d;
} xv_caption_scores;

/* PTBTokenizer -preserveLines -lowerCase, then the toolkit's punctuation
 * tokens dropped, for ASCII text: lower case; words split at whitespace and
 * punctuation; clitics split off as PTB does ("don't" -> "do n't", "dog's" ->
 * "dog 's"); '.' and ',' inside numbers and '-' inside words kept; the tokens
 * . , ? ! : ; - -- ... quotes and brackets dropped; other symbols ($ % & ...)
 * kept as tokens. Tokens joined by single spaces (malloc'd). */
char *xv_coco_tokenize(const char *text);

/* cands[i] scored against refs[i][0..n_refs[i]) (n_refs[i] >= 1), raw
 * texts (tokenized here), over n >= 1 images. */
xv_status xv_caption_scores_compute(const char *const *cands, const char *const *const *refs, const int *n_refs,
                                    int n, xv_caption_scores *out);

/* The pieces, on tokenized texts (words split on single spaces). */
xv_status xv_bleu_corpus(const char *const *cands, const char *const *const *refs, const int *n_refs, int n,
                         double bleu[4]);
double xv_rouge_l(const char *cand, const char *const *refs, int n_refs);

#endif
