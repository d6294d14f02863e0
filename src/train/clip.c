#include "train/clip.h"

#include <math.h>

#include "core/error.h"

/* Fixed block size: the partial sums and their order depend only on the sizes. */
#define CLIP_BLOCK 8192

static double sum_squares(const float *g, int64_t n) {
    int64_t nblocks = (n + CLIP_BLOCK - 1) / CLIP_BLOCK;
    double total = 0.0;
    if (nblocks <= 1) {
        for (int64_t i = 0; i < n; i++) total += (double)g[i] * g[i];
        return total;
    }
    /* Blocks reduced in parallel, then added in block order. Small stack array
     * of partials per round keeps this allocation-free. */
    enum { ROUND = 256 };
    double part[ROUND];
    for (int64_t b0 = 0; b0 < nblocks; b0 += ROUND) {
        int nb = (int)(nblocks - b0 < ROUND ? nblocks - b0 : ROUND);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int64_t lo = (b0 + b) * CLIP_BLOCK, hi = lo + CLIP_BLOCK < n ? lo + CLIP_BLOCK : n;
            double s = 0.0;
            for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
            part[b] = s;
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

xv_status xv_clip_grad_norm(xv_params *params, double max_norm, double *norm_out) {
    double n = xv_grad_norm(params);
    if (norm_out) *norm_out = n;
    if (!isfinite(n)) return xv_error(XV_ERR_NUMERIC, "clip_grad_norm: gradient norm is %g", n);
    double coef = max_norm / (n + 1e-6);
    if (coef >= 1.0) return XV_OK;
    float c = (float)coef;
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
