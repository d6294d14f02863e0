#include "nn/batch_split.h"

#include <omp.h>
#include <string.h>

#include "core/error.h"
#include "nn/child_graphs.h"

/* Rows [b0, b1) of x's dim 0, sharing x's memory, as a tensor of g. */
static xv_tensor *share_of(xv_graph *g, xv_tensor *x, int64_t b0, int64_t b1) {
    if (!x) return NULL;
    int64_t shape[XV_MAX_DIMS], row = x->shape[0] ? x->numel / x->shape[0] : 0;
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = b1 - b0;
    if (x->dtype == XV_F32) return xv_tensor_wrap_f32(g, x->data + b0 * row, shape, x->ndim);
    return xv_tensor_wrap_i32(g, x->idata + b0 * row, shape, x->ndim);
}

static bool applies(xv_graph *g, int64_t batch, int threads) {
    return !xv_graph_grad_enabled(g) && !xv_graph_training(g) && !omp_in_parallel() && threads > 1 &&
           batch >= threads;
}

/* Copies the workers' results, in batch order, into one tensor of g. */
static xv_tensor *gather_results(xv_graph *g, xv_graph *const *w, xv_tensor *const *out, int nt, int64_t batch) {
    for (int t = 0; t < nt; t++)
        if (xv_graph_status(w[t]) != XV_OK || !out[t]) {
            xv_status st = xv_graph_status(w[t]);
            return xv_graph_fail(g, st != XV_OK ? st : XV_ERR_INTERNAL, "%s",
                                 st != XV_OK ? xv_error_message() : "batch split: a worker returned no result");
        }
    const xv_tensor *o0 = out[0];
    for (int t = 0; t < nt; t++) {
        const xv_tensor *o = out[t];
        bool ok = o->dtype == XV_F32 && o->ndim == o0->ndim && o->ndim >= 1 &&
                  o->shape[0] == batch * (t + 1) / nt - batch * t / nt;
        for (int d = 1; ok && d < o->ndim; d++) ok = o->shape[d] == o0->shape[d];
        if (!ok) return xv_graph_fail(g, XV_ERR_INTERNAL, "batch split: worker %d returned a mismatched shape", t);
    }
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, o0->shape, sizeof shape);
    shape[0] = batch;
    xv_tensor *y = xv_tensor_new(g, XV_F32, shape, o0->ndim);
    if (!y) return NULL;
    int64_t at = 0;
    for (int t = 0; t < nt; t++) {
        memcpy(y->data + at, out[t]->data, sizeof(float) * (size_t)out[t]->numel);
        at += out[t]->numel;
    }
    return y;
}

xv_tensor *xv_batch_split(xv_graph *g, xv_batch_fn fn, void *user, xv_tensor *const *in, int n_in) {
    if (!g) return NULL;
    if (n_in < 1 || n_in > XV_BATCH_MAX_INPUTS || !in[0])
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "batch split: %d inputs (1..%d, the first non-NULL)", n_in,
                             XV_BATCH_MAX_INPUTS);
    const int64_t batch = in[0]->ndim >= 1 ? in[0]->shape[0] : 0;
    for (int i = 1; i < n_in; i++)
        if (in[i] && (in[i]->ndim < 1 || in[i]->shape[0] != batch))
            return xv_graph_fail(g, XV_ERR_SHAPE, "batch split: input %d has a batch other than %lld", i,
                                 (long long)batch);
    int nt = omp_get_max_threads();
    if (nt > XV_MAX_WORKERS) nt = XV_MAX_WORKERS;
    if (!applies(g, batch, nt)) return fn(g, user, in);

    xv_graph *w[XV_MAX_WORKERS];
    xv_tensor *out[XV_MAX_WORKERS];
    for (int t = 0; t < nt; t++) {
        w[t] = xv_graph_child(g, XV_CHILD_WORKER0 + t);
        if (!w[t]) return xv_graph_fail(g, XV_ERR_NOMEM, "out of memory creating batch worker graphs");
        xv_graph_reset(w[t]);
        out[t] = NULL;
    }
#pragma omp parallel num_threads(nt)
    {
        /* Ops inside see one thread (their scratch, their loops, BLAS). This
         * ICV belongs to this implicit task only. */
        omp_set_num_threads(1);
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        /* A smaller team than asked (thread limits): thread t runs shares t, t + n, ... */
        for (int s = t; s < nt; s += n) {
            int64_t b0 = batch * s / nt, b1 = batch * (s + 1) / nt;
            xv_tensor *part[XV_BATCH_MAX_INPUTS];
            for (int i = 0; i < n_in; i++) part[i] = share_of(w[s], in[i], b0, b1);
            out[s] = fn(w[s], user, part);
        }
    }
    return gather_results(g, w, out, nt, batch);
}
