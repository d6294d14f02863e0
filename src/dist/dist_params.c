/* Parameters across ranks: the same initial values everywhere, and DDP's
 * averaged gradients. */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

/* Floats per all-reduce call: 8 Mi (32 MiB) unless XV_DIST_BUCKET_FLOATS
 * says otherwise, torch DDP's bucket order of size, so the call count stays
 * small without doubling the gradients' memory. */
int64_t xv_dist_bucket_floats(void) {
    static int64_t n;
    if (!n) {
        const char *e = getenv("XV_DIST_BUCKET_FLOATS");
        const long long v = e ? atoll(e) : 0;
        n = v > 0 ? v : (int64_t)8 << 20;
    }
    return n;
}

float *xv_dist_bucket_buffer(int64_t n) {
    static float *kept;
    static int64_t kept_n;
    if (n + 1 > kept_n) {
        free(kept);
        kept_n = (kept = malloc(sizeof *kept * (size_t)(n + 1))) ? n + 1 : 0;
        if (!kept) xv_error(XV_ERR_NOMEM, "out of memory (a gradient buffer of %lld floats)", (long long)n);
    }
    return kept;
}

bool xv_dist_overlap_enabled(void) {
    const char *e = getenv("XV_DIST_OVERLAP");
    return !e || strcmp(e, "0") != 0;
}

xv_status xv_dist_broadcast_params(xv_params *p) {
    if (xv_dist_world() == 1) return XV_OK;
    for (int i = 0; i < p->n; i++) {
        xv_tensor *t = p->items[i];
        xv_status st = xv_dist_broadcast(t->data, sizeof(float) * (size_t)t->numel, 0);
        if (st != XV_OK) return xv_error_wrap(st, "broadcasting parameter %s", t->name);
    }
    return XV_OK;
}

/* Every rank allocates the gradient buffers any rank has. */
static xv_status agree_on_grads(xv_graph *g, xv_params *p) {
    int32_t *has = malloc(sizeof *has * (size_t)(p->n ? p->n : 1));
    if (!has) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n; i++) has[i] = p->items[i]->grad != NULL;
    xv_status st = xv_dist_allreduce_max_i32(has, p->n);
    for (int i = 0; st == XV_OK && i < p->n; i++)
        if (has[i] && !xv_grad(g, p->items[i])) st = xv_graph_status(g);
    free(has);
    return st;
}

/* All-reduce items [from, to) packed in buf, then unpack × 1/world. */
static xv_status reduce_bucket(xv_params *p, int from, int to, float *buf, float scale) {
    int64_t n = 0;
    for (int i = from; i < to; i++)
        if (p->items[i]->grad) {
            memcpy(buf + n, p->items[i]->grad, sizeof(float) * (size_t)p->items[i]->numel);
            n += p->items[i]->numel;
        }
    XV_TRY(xv_dist_allreduce_sum_f32(buf, n));
    n = 0;
    for (int i = from; i < to; i++) {
        xv_tensor *t = p->items[i];
        if (!t->grad) continue;
        for (int64_t k = 0; k < t->numel; k++) t->grad[k] = buf[n + k] * scale;
        n += t->numel;
    }
    return XV_OK;
}

xv_status xv_dist_average_grads(xv_graph *g, xv_params *p) {
    const int world = xv_dist_world();
    if (world == 1) return XV_OK;
    XV_TRY(agree_on_grads(g, p));
    int64_t biggest = 0;
    for (int i = 0; i < p->n; i++)
        if (p->items[i]->numel > biggest) biggest = p->items[i]->numel;
    const int64_t bucket = xv_dist_bucket_floats(), cap = biggest > bucket ? biggest : bucket;
    float *buf = xv_dist_bucket_buffer(cap);
    if (!buf) return XV_ERR_NOMEM;
    /* Sum, then × 1/world, as apex's DDP does (for two ranks the same bits
     * as halving first). */
    const float scale = 1.0f / (float)world;
    xv_status st = XV_OK;
    int from = 0;
    int64_t filled = 0;
    for (int i = 0; st == XV_OK && i <= p->n; i++) {
        const int64_t k = i < p->n && p->items[i]->grad ? p->items[i]->numel : 0;
        if (i == p->n || filled + k > cap) {
            st = reduce_bucket(p, from, i, buf, scale);
            from = i;
            filled = 0;
        }
        filled += k;
    }
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "averaging gradients over %d ranks", world);
}
