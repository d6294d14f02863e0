/* Row normalisations over the last dim: LayerNorm and L2 normalisation.
 * Row statistics are accumulated in double (the rows are 128..4096 wide). */
#include <math.h>

#include "ops/dense_internal.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------- layernorm */

typedef struct {
    float *mean, *rstd; /* per row */
} ln_saved;

#define LN_BLOCK 256 /* columns reduced per pass in the parameter gradients */

/* Element j of a row of dx, given the row's mean(ĝ) = a and mean(ĝ·x̂) = b. */
static inline float ln_dx(const float *dyr, const float *gd, const float *xr, int64_t j, float mu, float rs, float a,
                          float b) {
    float gh = gd ? dyr[j] * gd[j] : dyr[j];
    return rs * (gh - a - (xr[j] - mu) * rs * b);
}

static void layernorm_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    const ln_saved *sv = n->saved;
    const float *dy = n->out->grad, *xd = x->data, *gd = gamma ? gamma->data : NULL;
    int64_t C = xv_last_dim(x), rows = xv_dense_rows(x);
    bool dx_fresh = false; /* first writer of dx: rows are stored, not added */
    float *dx = x->requires_grad ? xv_grad_for_write(g, x, &dx_fresh) : NULL;
    float *dgamma = gamma && gamma->requires_grad ? xv_grad(g, gamma) : NULL;
    float *dbeta = beta && beta->requires_grad ? xv_grad(g, beta) : NULL;
    if (xv_graph_status(g) != XV_OK) return;
#pragma omp parallel if (rows * C > XV_DENSE_PAR_MIN)
    {
        /* dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with ĝ = dy·γ: rows split over threads. */
        if (dx) {
#pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = xd + r * C, *dyr = dy + r * C;
                float *dxr = dx + r * C;
                float mu = sv->mean[r], rs = sv->rstd[r];
                double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
                for (int64_t j = 0; j < C; j++) {
                    float gh = gd ? dyr[j] * gd[j] : dyr[j];
                    sg += gh;
                    sgx += (double)gh * ((xr[j] - mu) * rs);
                }
                float a = (float)(sg / (double)C), b = (float)(sgx / (double)C);
                if (dx_fresh) {
#pragma omp simd
                    for (int64_t j = 0; j < C; j++) dxr[j] = ln_dx(dyr, gd, xr, j, mu, rs, a, b);
                } else {
#pragma omp simd
                    for (int64_t j = 0; j < C; j++) dxr[j] += ln_dx(dyr, gd, xr, j, mu, rs, a, b);
                }
            }
        }
        /* dγ = Σ_rows dy·x̂, dβ = Σ_rows dy: columns split over threads, rows summed in order. */
        if (dgamma || dbeta) {
            int64_t j0, j1;
            xv_dense_column_slice(C, &j0, &j1);
            double ag[LN_BLOCK], ab[LN_BLOCK];
            for (int64_t jb = j0; jb < j1; jb += LN_BLOCK) {
                int64_t w = j1 - jb < LN_BLOCK ? j1 - jb : LN_BLOCK;
                for (int64_t j = 0; j < w; j++) ag[j] = ab[j] = 0.0;
                for (int64_t r = 0; r < rows; r++) {
                    const float *xr = xd + r * C + jb, *dyr = dy + r * C + jb;
                    float mu = sv->mean[r], rs = sv->rstd[r];
#pragma omp simd
                    for (int64_t j = 0; j < w; j++) {
                        ag[j] += (double)dyr[j] * ((xr[j] - mu) * rs);
                        ab[j] += dyr[j];
                    }
                }
                for (int64_t j = 0; j < w; j++) {
                    if (dgamma) dgamma[jb + j] += (float)ag[j];
                    if (dbeta) dbeta[jb + j] += (float)ab[j];
                }
            }
        }
    }
}

xv_tensor *xv_layernorm(xv_graph *g, xv_tensor *x, xv_tensor *gamma, xv_tensor *beta, float eps) {
    static const char op[] = "xv_layernorm";
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    if (gamma && !xv_dense_f32_arg(g, op, "gamma", gamma)) return NULL;
    if (beta && !xv_dense_f32_arg(g, op, "beta", beta)) return NULL;
    int64_t C = xv_last_dim(x), rows = xv_dense_rows(x);
    char sx[96], sp[96];
    if ((gamma && (gamma->ndim != 1 || gamma->shape[0] != C)) ||
        (beta && (beta->ndim != 1 || beta->shape[0] != C)))
        return xv_graph_fail(g, XV_ERR_SHAPE, "%s: gamma/beta %s must be [%lld] for input %s", op,
                             xv_shape_str(gamma ? gamma : beta, sp, sizeof sp), (long long)C,
                             xv_shape_str(x, sx, sizeof sx));
    if (C == 0) return xv_graph_fail(g, XV_ERR_SHAPE, "%s: empty last dim", op);
    if (!(eps >= 0)) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: eps %g must be >= 0", op, eps);
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
    xv_tensor *ins[3] = {x, gamma, beta};
    bool rec = xv_needs_grad(g, ins, 3);
    ln_saved *sv = NULL;
    if (rec) {
        sv = xv_graph_alloc(g, sizeof *sv);
        float *stats = xv_graph_alloc(g, sizeof(float) * (size_t)rows * 2);
        if (!sv || !stats) return NULL;
        sv->mean = stats;
        sv->rstd = stats + rows;
    }
    const float *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
#pragma omp parallel for schedule(static) if (rows * C > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * C;
        float *yr = y->data + r * C;
        double s = 0, ss = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < C; j++) s += xr[j];
        double mu = s / (double)C;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < C; j++) ss += (xr[j] - mu) * (xr[j] - mu);
        float muf = (float)mu, rs = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            float v = (xr[j] - muf) * rs;
            if (gd) v *= gd[j];
            if (bd) v += bd[j];
            yr[j] = v;
        }
        if (sv) {
            sv->mean[r] = muf;
            sv->rstd[r] = rs;
        }
    }
    xv_node *n = xv_record(g, op, y, layernorm_backward, ins, 3);
    if (n) n->saved = sv;
    return y;
}

/* ---------------------------------------------------------------- l2 normalize */

/* ||row||₂ in double. */
static double row_norm(const float *xr, int64_t C) {
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < C; j++) ss += (double)xr[j] * xr[j];
    return sqrt(ss);
}

static void l2_normalize_backward(xv_graph *g, xv_node *n) {
    xv_tensor *x = n->in[0];
    float *dx = xv_grad(g, x);
    if (!dx) return;
    const float *dy = n->out->grad, *yd = n->out->data;
    int64_t C = xv_last_dim(x), rows = xv_dense_rows(x);
    double eps = n->farg[0];
#pragma omp parallel for schedule(static) if (rows * C > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * C, *yr = yd + r * C;
        float *dxr = dx + r * C;
        double nrm = row_norm(x->data + r * C, C);
        float inv = (float)(1.0 / (nrm > eps ? nrm : eps));
        /* Above eps: d(x/|x|) = (dy - y·<y,dy>)/|x|; at the clamp the divisor is a constant. */
        double dot = 0;
        if (nrm > eps) {
#pragma omp simd reduction(+ : dot)
            for (int64_t j = 0; j < C; j++) dot += (double)yr[j] * dyr[j];
        }
        float d = (float)dot;
#pragma omp simd
        for (int64_t j = 0; j < C; j++) dxr[j] += (dyr[j] - yr[j] * d) * inv;
    }
}

xv_tensor *xv_l2_normalize(xv_graph *g, xv_tensor *x, float eps) {
    static const char op[] = "xv_l2_normalize";
    if (!g || !xv_dense_f32_arg(g, op, "x", x)) return NULL;
    if (!(eps > 0)) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "%s: eps %g must be > 0", op, eps);
    int64_t C = xv_last_dim(x), rows = xv_dense_rows(x);
    xv_tensor *y = xv_dense_new_like(g, x);
    if (!y) return NULL;
#pragma omp parallel for schedule(static) if (rows * C > XV_DENSE_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * C;
        float *yr = y->data + r * C;
        double nrm = row_norm(xr, C);
        float den = (float)(nrm > eps ? nrm : eps);
#pragma omp simd
        for (int64_t j = 0; j < C; j++) yr[j] = xr[j] / den;
    }
    xv_node *n = xv_record(g, op, y, l2_normalize_backward, &x, 1);
    if (n) n->farg[0] = eps;
    return y;
}
