/* CIDEr-D as the official SCST reward computes it
 * (utils/cider/pyciderevalcap/ciderD, utils/__init__.py ScstRewardCriterion;
 * vqa-captioning sheet §3.6): n-grams 1..4 of whitespace-split words, tf-idf
 * vectors count·(log(ref_len) - log(max(1, df))), the clipped cosine
 * Σ min(v_c, v_r)·v_r / (‖v_c‖‖v_r‖) per n, times exp(-δ²/2σ²) (σ 6, δ the
 * difference of the sentences' bigram counts), averaged over n and over the
 * references, ×10. Document frequencies and ref_len come from a fixed corpus
 * (the official cached training-set file), not from the scored batch. */
#ifndef XV_TASKS_CIDER_H
#define XV_TASKS_CIDER_H

#include "core/error.h"

typedef struct xv_cider xv_cider;

/* Document frequencies of a corpus: refs[i][0..n_refs[i]) are image i's
 * reference sentences as the scorer sees them (wrapped, see xv_cider_wrap).
 * df(g) = images whose references contain n-gram g; ref_len = the number of
 * images. */
xv_status xv_cider_new(const char *const *const *refs, const int *n_refs, int n_images, xv_cider **out);
void xv_cider_free(xv_cider *c);

/* CIDEr-D of one candidate against its references (all wrapped). */
double xv_cider_d(const xv_cider *c, const char *cand, const char *const *refs, int n_refs);

/* What ScstRewardCriterion does to every sentence before scoring: strip
 * surrounding whitespace, drop one trailing '.', append " <eos>" (malloc'd). */
char *xv_cider_wrap(const char *sentence);

#endif
