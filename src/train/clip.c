#include "train/clip.h"

#include <math.h>

#include "core/error.h"

/* Fixed block size: the partial sums and their order depend only on the sizes. */
#define CLIP_BLOCK 8192
#define CLIP_LANES 8

/* Σ g² over one block with CLIP_LANES independent accumulators (a fixed
 * association that lets the compiler use vector adds), then the lanes in order. */
static double block_sum(const float *g, int64_t n) {
    double lane[CLIP_LANES] = {0};
    int64_t i = 0;
    for (; i + CLIP_LANES <= n; i += CLIP_LANES)
        for (int l = 0; l < CLIP_LANES; l++) lane[l] += (double)g[i + l] * g[i + l];
    for (; i < n; i++) lane[0] += (double)g[i] * g[i];
    double s = 0.0;
    for (int l = 0; l < CLIP_LANES; l++) s += lane[l];
    return s;
}

static double sum_squares(const float *g, int64_t n) {
    int64_t nblocks = (n + CLIP_BLOCK - 1) / CLIP_BLOCK;
    double total = 0.0;
    if (nblocks <= 1) return block_sum(g, n);
    /* Blocks reduced in parallel, then added in block order. Small stack array
     * of partials per round keeps this allocation-free. */
    enum { ROUND = 256 };
    double part[ROUND];
    for (int64_t b0 = 0; b0 < nblocks; b0 += ROUND) {
        int nb = (int)(nblocks - b0 < ROUND ? nblocks - b0 : ROUND);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int64_t lo = (b0 + b) * CLIP_BLOCK, hi = lo + CLIP_BLOCK < n ? lo + CLIP_BLOCK : n;
            part[b] = block_sum(g + lo, hi - lo);
        }
        for (int b = 0; b < nb; b++) total += part[b];
    }
    return total;
}

double xv_grad_norm(const xv_params *params) {
    double total = 0.0;
    for (int i = 0; i < params->n; i++) {
        const xv_tensor *t = params->items[i];
        if (t->grad) total += sum_squares(t->grad, t->numel);
    }
    return sqrt(total);
}

xv_status xv_clip_scale(const xv_params *params, double max_norm, double *norm_out, float *scale_out) {
    double n = xv_grad_norm(params);
    if (norm_out) *norm_out = n;
    *scale_out = 1.0f;
    if (!isfinite(n)) return xv_error(XV_ERR_NUMERIC, "clip_grad_norm: gradient norm is %g", n);
    double coef = max_norm / (n + 1e-6);
    if (coef < 1.0) *scale_out = (float)coef;
    return XV_OK;
}

xv_status xv_clip_grad_norm(xv_params *params, double max_norm, double *norm_out) {
    float c;
    XV_TRY(xv_clip_scale(params, max_norm, norm_out, &c));
    if (c == 1.0f) return XV_OK;
    for (int i = 0; i < params->n; i++) {
        xv_tensor *t = params->items[i];
        if (!t->grad) continue;
        float *g = t->grad;
        int64_t len = t->numel;
#pragma omp parallel for schedule(static) if (len > 32768)
        for (int64_t k = 0; k < len; k++) g[k] *= c;
    }
    return XV_OK;
}
