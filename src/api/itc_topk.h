/* The ITC stage of retrieval: cosine similarities of one query feature with a
 * gallery of normalised features (one sgemv), and the k best of them. */
#ifndef XV_API_ITC_TOPK_H
#define XV_API_ITC_TOPK_H

#include <stdint.h>

/* out[i] = feats[i, :] · query for i < n (feats row-major [n, dim]). Each out[i]
 * is one dot product, so it does not depend on the thread count. */
void xv_itc_scores(const float *feats, int64_t n, int dim, const float *query, float *out);

/* Indices of the k largest scores, best first; equal scores keep the lower index
 * first, NaN ranks below every number. k is clamped to [0, n]; returns the count
 * written to idx. O(n log k) with a bounded heap. */
int64_t xv_topk(const float *scores, int64_t n, int64_t k, int64_t *idx);

#endif
