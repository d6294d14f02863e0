#include "train/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

xv_adamw_config xv_adamw_default(void) {
    xv_adamw_config c;
    c.lr = 1e-4;
    c.weight_decay = 0.01;
    c.lr_mult = 2.0;
    c.beta1 = 0.9;
    c.beta2 = 0.98;
    c.eps = 1e-8;
    c.correct_bias = true;
    return c;
}

static xv_status check_config(const xv_adamw_config *c) {
    if (!(c->lr >= 0) || !(c->weight_decay >= 0) || !(c->lr_mult >= 0) || !isfinite(c->lr) ||
        !isfinite(c->weight_decay) || !isfinite(c->lr_mult))
        return xv_error(XV_ERR_INVALID_ARG, "adamw: lr %g, weight_decay %g, lr_mult %g must be finite and >= 0",
                        c->lr, c->weight_decay, c->lr_mult);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return xv_error(XV_ERR_INVALID_ARG, "adamw: betas (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps >= 0) || !isfinite(c->eps)) return xv_error(XV_ERR_INVALID_ARG, "adamw: eps %g must be >= 0", c->eps);
    return XV_OK;
}

xv_status xv_adamw_init(xv_adamw *opt, xv_params *params, const xv_adamw_config *cfg,
                        const xv_init_params *large_lr) {
    memset(opt, 0, sizeof *opt);
    XV_TRY(check_config(cfg));
    opt->cfg = *cfg;
    /* LambdaLR multiplies each group's initial lr; optim.py sets lr and lr·lr_mult. */
    opt->group_lr[0] = opt->group_lr[1] = cfg->lr;
    opt->group_lr[2] = opt->group_lr[3] = cfg->lr * cfg->lr_mult;
    opt->group_wd[0] = opt->group_wd[2] = cfg->weight_decay;
    opt->group_wd[1] = opt->group_wd[3] = 0.0;

    opt->slots = calloc((size_t)(params->n ? params->n : 1), sizeof *opt->slots);
    if (!opt->slots) return xv_error(XV_ERR_NOMEM, "adamw: out of memory");
    for (int i = 0; i < params->n; i++) {
        xv_tensor *t = params->items[i];
        if (!t->requires_grad) continue; /* frozen weights are not optimised */
        xv_adamw_slot *s = &opt->slots[opt->n];
        s->param = t;
        bool large = large_lr && xv_init_params_contains(large_lr, t->name);
        s->group = (xv_param_no_decay(t->name) ? 1 : 0) + (large ? 2 : 0);
        size_t bytes = sizeof(float) * (size_t)(t->numel ? t->numel : 1);
        s->m = calloc(1, bytes);
        s->v = calloc(1, bytes);
        opt->n++;
        if (!s->m || !s->v) {
            xv_adamw_free(opt);
            return xv_error(XV_ERR_NOMEM, "adamw: out of memory for the state of %s", t->name);
        }
    }
    return XV_OK;
}

void xv_adamw_free(xv_adamw *opt) {
    for (int i = 0; i < opt->n; i++) {
        free(opt->slots[i].m);
        free(opt->slots[i].v);
    }
    free(opt->slots);
    memset(opt, 0, sizeof *opt);
}

double xv_adamw_group_lr(const xv_adamw *opt, int group, double lr_factor) {
    return opt->group_lr[group] * lr_factor;
}

xv_adamw_slot *xv_adamw_find(xv_adamw *opt, const char *name) {
    for (int i = 0; i < opt->n; i++)
        if (strcmp(opt->slots[i].param->name, name) == 0) return &opt->slots[i];
    return NULL;
}

/* Per-parameter coefficients of one update, fixed before the element pass. */
typedef struct {
    float b1, omb1, b2, omb2, eps, neg_step, neg_lr_wd;
    bool decay;
} adam_coefs;

/* Elements [lo, hi) of one parameter. Each element depends only on itself, so
 * the result is the same for any split over threads. The gradient is scaled
 * first (the clip: g·scale is what clip_grad_norm_ leaves in p.grad, and it
 * is written back when scale is not 1); x·1 is exact, so an unclipped update
 * is bitwise the plain one. The decay test sits outside the loops so both
 * vectorise (`simd`, and -fno-math-errno for sqrtf: CMakeLists.txt). */
static void update_range(float *restrict p, float *restrict g, float *restrict m, float *restrict v, int64_t lo,
                         int64_t hi, const adam_coefs *c, float scale) {
    /* Scalars in locals: the vectoriser does not see through the struct. */
    const float b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, eps = c->eps;
    const float neg_step = c->neg_step, neg_lr_wd = c->neg_lr_wd;
    if (scale != 1.0f) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) g[i] *= scale;
    }
    if (c->decay) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float mi = m[i] * b1 + omb1 * g[i];
            float vi = v[i] * b2 + omb2 * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            float pi = p[i] + neg_step * (mi / (sqrtf(vi) + eps));
            p[i] = pi + neg_lr_wd * pi;
        }
    } else {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float mi = m[i] * b1 + omb1 * g[i];
            float vi = v[i] * b2 + omb2 * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] + neg_step * (mi / (sqrtf(vi) + eps));
        }
    }
}

/* Below this many elements in all, one thread does the whole pass. */
#define ADAMW_PAR_MIN 32768
/* Elements per piece of the pass: a piece's p, g, m and v (1 MiB together)
 * stay in L2 while the scale and the update run over them. */
#define ADAMW_PIECE 65536

xv_status xv_adamw_step(xv_adamw *opt, double lr_factor) { return xv_adamw_step_scaled(opt, lr_factor, 1.0f); }

xv_status xv_adamw_step_scaled(xv_adamw *opt, double lr_factor, float grad_scale) {
    if (!isfinite(lr_factor)) return xv_error(XV_ERR_NUMERIC, "adamw: learning-rate factor is %g", lr_factor);
    if (!(grad_scale > 0.0f) || !isfinite(grad_scale))
        return xv_error(XV_ERR_NUMERIC, "adamw: gradient scale is %g", (double)grad_scale);
    const xv_adamw_config *c = &opt->cfg;
    adam_coefs *k = malloc(sizeof *k * (size_t)(opt->n ? opt->n : 1));
    int64_t *first = malloc(sizeof *first * (size_t)(opt->n + 1)); /* element offset of each slot in the pass */
    if (!k || !first) {
        free(k), free(first);
        return xv_error(XV_ERR_NOMEM, "adamw: out of memory for %d parameters' coefficients", opt->n);
    }
    first[0] = 0;
    for (int i = 0; i < opt->n; i++) {
        xv_adamw_slot *s = &opt->slots[i];
        first[i + 1] = first[i] + (s->param->grad ? s->param->numel : 0); /* PyTorch: p.grad is None -> no update */
        if (!s->param->grad) continue;
        double lr = xv_adamw_group_lr(opt, s->group, lr_factor);
        double wd = opt->group_wd[s->group];
        s->step++;
        double step_size = lr;
        if (c->correct_bias) {
            double bc1 = 1.0 - pow(c->beta1, (double)s->step);
            double bc2 = 1.0 - pow(c->beta2, (double)s->step);
            step_size = step_size * sqrt(bc2) / bc1;
        }
        k[i] = (adam_coefs){(float)c->beta1, (float)(1.0 - c->beta1), (float)c->beta2, (float)(1.0 - c->beta2),
                            (float)c->eps, (float)-step_size, (float)(-lr * wd), wd > 0.0};
    }
    /* One pass over all parameters as one range of elements, cut into pieces
     * that threads take in turn: one parallel region per update, whatever the
     * number of tensors, and small tensors cost no region of their own. */
    const int64_t total = first[opt->n], pieces = (total + ADAMW_PIECE - 1) / ADAMW_PIECE;
#pragma omp parallel for schedule(dynamic, 1) if (total >= ADAMW_PAR_MIN && pieces > 1)
    for (int64_t piece = 0; piece < pieces; piece++) {
        const int64_t lo = piece * ADAMW_PIECE, hi = lo + ADAMW_PIECE < total ? lo + ADAMW_PIECE : total;
        int a = 0, b = opt->n; /* the slot holding element lo: the last with first[slot] <= lo */
        while (b - a > 1) {
            const int mid = (a + b) / 2;
            if (first[mid] <= lo) a = mid;
            else b = mid;
        }
        for (int i = a; i < opt->n && first[i] < hi; i++) {
            if (first[i + 1] == first[i]) continue; /* no gradient */
            const int64_t from = lo > first[i] ? lo - first[i] : 0, to = (hi < first[i + 1] ? hi : first[i + 1]) - first[i];
            const xv_adamw_slot *s = &opt->slots[i];
            update_range(s->param->data, s->param->grad, s->m, s->v, from, to, &k[i], grad_scale);
        }
    }
    free(k), free(first);
    return XV_OK;
}
