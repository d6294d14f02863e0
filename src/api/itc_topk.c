#include "api/itc_topk.h"

#include <cblas.h>
#include <math.h>

void xv_itc_scores(const float *feats, int64_t n, int dim, const float *query, float *out) {
    if (n <= 0) return;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, dim, 1.0f, feats, dim, query, 1, 0.0f, out, 1);
}

/* Is entry a ranked before entry b? NaN below every number; the lower index
 * wins ties (and among NaNs). */
static inline int better(const float *s, int64_t a, int64_t b) {
    int na = isnan(s[a]), nb = isnan(s[b]);
    if (na || nb) return na == nb ? a < b : nb;
    return s[a] > s[b] || (s[a] == s[b] && a < b);
}

/* Min-heap on "better": the root is the worst of the kept entries. */
static void sift_down(const float *s, int64_t *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(s, h[w], h[l])) w = l;
        if (r < n && better(s, h[w], h[r])) w = r;
        if (w == i) return;
        int64_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

int64_t xv_topk(const float *scores, int64_t n, int64_t k, int64_t *idx) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    for (int64_t i = 0; i < k; i++) idx[i] = i;
    for (int64_t i = k / 2 - 1; i >= 0; i--) sift_down(scores, idx, k, i);
    for (int64_t i = k; i < n; i++) {
        if (!better(scores, i, idx[0])) continue;
        idx[0] = i;
        sift_down(scores, idx, k, 0);
    }
    /* Pop the worst to the end: idx ends best first. */
    for (int64_t end = k - 1; end > 0; end--) {
        int64_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(scores, idx, end, 0);
    }
    return k;
}
