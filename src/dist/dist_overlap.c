/* DDP's gradient averaging overlapped with the backward: the gradients go in
 * buckets, and a bucket's all-reduce starts as soon as the backward walk has
 * passed every node that adds into its gradients, while the walk goes on
 * computing the others (torch DDP's reducer, here on the tape's walk through
 * xv_graph_set_backward_hook).
 *
 * A parameter's gradient is final once the walk has run the oldest node that
 * reads it (the tape lists each node's inputs). The ranks agree before the
 * walk on which gradients are reduced and in what order the buckets go (the
 * earliest position at which any rank finishes each gradient): non-blocking
 * collectives must start in the same order everywhere, and the buckets are
 * then the same on every rank even where their tapes differ. Each bucket
 * starts when it and every bucket before it are final on this rank. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

#define NOT_REACHED INT32_MAX

typedef struct {
    xv_params *p;
    int32_t *final_at; /* [n] walk position after which parameter i's gradient is final; NOT_REACHED: not reduced */
    int32_t *agreed;   /* [n] the earliest final_at over the ranks (NOT_REACHED: no rank has a gradient) */
    int32_t *order;    /* the reduced parameters in bucket order (by agreed, then index) */
    int32_t *by_final; /* the same, by this rank's final_at */
    int n_reduced, next_final;
    int *bucket_of;            /* [n] */
    int n_buckets, next_start; /* buckets started: [0, next_start) */
    int next_done;             /* buckets known to be reduced: [0, next_done) */
    int *first, *pending;      /* [n_buckets]: first member in order, members not final yet */
    int64_t *offset;           /* [n_buckets + 1]: floats before each bucket in buf */
    float *buf; /* the kept buffer (plan) */
    xv_dist_request **req;
    int32_t walked; /* nodes the walk has run */
    xv_status status;
} overlap;

static const xv_params *sort_params; /* qsort's context (one walk at a time: the main thread) */
static const int32_t *sort_key;
static int by_key(const void *a, const void *b) {
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_key[i] != sort_key[j]) return sort_key[i] < sort_key[j] ? -1 : 1;
    return (i > j) - (i < j);
}
static int by_address(const void *a, const void *b) {
    const xv_tensor *x = sort_params->items[*(const int32_t *)a], *y = sort_params->items[*(const int32_t *)b];
    return (x > y) - (x < y);
}

/* The index of parameter t in p (by_addr: indices sorted by address), -1 when t is none. */
static int find_param(const xv_params *p, const int32_t *by_addr, const xv_tensor *t) {
    int lo = 0, hi = p->n - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        const xv_tensor *m = p->items[by_addr[mid]];
        if (m == t) return by_addr[mid];
        if (m < t) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* final_at from the tape (newest node first): the oldest reader of each
 * parameter sets it last. Gradients outside the walk are final at once. */
static xv_status local_positions(const xv_graph *g, overlap *o) {
    const xv_params *p = o->p;
    int32_t *by_addr = malloc(sizeof *by_addr * (size_t)(p->n + 1));
    if (!by_addr) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n; i++) {
        by_addr[i] = i;
        o->final_at[i] = p->items[i]->grad ? 0 : NOT_REACHED;
    }
    sort_params = p;
    qsort(by_addr, (size_t)p->n, sizeof *by_addr, by_address);
    int32_t k = 0;
    for (const xv_node *n = xv_graph_tape(g); n; n = n->prev, k++)
        for (int j = 0; j < XV_NODE_MAX_INPUTS; j++) {
            const xv_tensor *t = n->in[j];
            if (!t || !t->persistent) continue;
            const int i = find_param(p, by_addr, t);
            if (i >= 0) o->final_at[i] = k + 1;
        }
    free(by_addr);
    return XV_OK;
}

/* The agreed set and order, the buckets, and their buffer. */
static xv_status plan(xv_graph *g, overlap *o) {
    const xv_params *p = o->p;
    /* the earliest position over the ranks: max of the negated (NOT_REACHED -> INT32_MIN) */
    for (int i = 0; i < p->n; i++) o->agreed[i] = o->final_at[i] == NOT_REACHED ? INT32_MIN : -o->final_at[i];
    XV_TRY(xv_dist_allreduce_max_i32(o->agreed, p->n));
    for (int i = 0; i < p->n; i++) {
        o->agreed[i] = o->agreed[i] == INT32_MIN ? NOT_REACHED : -o->agreed[i];
        if (o->agreed[i] == NOT_REACHED) continue;
        if (!xv_grad(g, p->items[i])) return xv_graph_status(g); /* zeros where this rank's step did not reach it */
        if (o->final_at[i] == NOT_REACHED) o->final_at[i] = 0;
        o->order[o->n_reduced++] = i;
    }
    memcpy(o->by_final, o->order, sizeof *o->order * (size_t)o->n_reduced);
    sort_key = o->agreed;
    qsort(o->order, (size_t)o->n_reduced, sizeof *o->order, by_key);
    sort_key = o->final_at;
    qsort(o->by_final, (size_t)o->n_reduced, sizeof *o->by_final, by_key);
    const int64_t bucket = xv_dist_bucket_floats();
    int64_t filled = 0;
    o->offset[0] = 0;
    for (int k = 0; k < o->n_reduced; k++) {
        const int i = o->order[k];
        const int64_t n = p->items[i]->numel;
        if (o->n_buckets == 0 || (filled > 0 && filled + n > bucket)) {
            o->first[o->n_buckets] = k;
            o->offset[o->n_buckets + 1] = o->offset[o->n_buckets];
            o->n_buckets++;
            filled = 0;
        }
        o->bucket_of[i] = o->n_buckets - 1;
        o->pending[o->n_buckets - 1]++;
        o->offset[o->n_buckets] += n;
        filled += n;
    }
    return (o->buf = xv_dist_bucket_buffer(o->offset[o->n_buckets])) ? XV_OK : XV_ERR_NOMEM;
}

/* Pack and start every bucket, in order, whose gradients are all final. */
static void start_ready(overlap *o) {
    while (o->status == XV_OK && o->next_start < o->n_buckets && o->pending[o->next_start] == 0) {
        const int b = o->next_start++;
        float *dst = o->buf + o->offset[b];
        for (int k = o->first[b]; k < o->n_reduced && o->bucket_of[o->order[k]] == b; k++) {
            const xv_tensor *t = o->p->items[o->order[k]];
            memcpy(dst, t->grad, sizeof(float) * (size_t)t->numel);
            dst += t->numel;
        }
        o->status = xv_dist_iallreduce_sum_f32(o->buf + o->offset[b], o->offset[b + 1] - o->offset[b], &o->req[b]);
    }
}

/* The gradients final once the walk has run `walked` nodes. */
static void mark_final(overlap *o) {
    while (o->next_final < o->n_reduced && o->final_at[o->by_final[o->next_final]] <= o->walked)
        o->pending[o->bucket_of[o->by_final[o->next_final++]]]--;
}

static void on_node(void *user, const xv_node *node) {
    (void)node;
    overlap *o = user;
    mark_final(o);
    start_ready(o);
    /* MPI moves a non-blocking collective on only inside its calls: one
     * test per node, of the oldest bucket not known to be done (a test may
     * yield the core where processes outnumber cores) */
    while (o->status == XV_OK && o->next_done < o->next_start) {
        int done = 0;
        o->status = xv_dist_progress(o->req[o->next_done], &done);
        if (!done) break;
        o->next_done++;
    }
    o->walked++;
}

static void overlap_free(overlap *o) {
    for (int b = 0; o->req && b < o->n_buckets; b++) free(o->req[b]); /* only after a failure (wait frees) */
    free(o->final_at), free(o->agreed), free(o->order), free(o->by_final), free(o->bucket_of);
    free(o->first), free(o->pending), free(o->offset), free(o->req);
}

xv_status xv_dist_backward_averaged(xv_graph *g, xv_tensor *loss, xv_params *p) {
    const int world = xv_dist_world();
    if (world == 1) return xv_backward(g, loss);
    if (!xv_dist_overlap_enabled()) {
        XV_TRY(xv_backward(g, loss));
        return xv_dist_average_grads(g, p);
    }
    overlap o = {.p = p, .status = XV_OK};
    const size_t n = (size_t)p->n + 1;
    o.final_at = malloc(sizeof *o.final_at * n), o.agreed = malloc(sizeof *o.agreed * n);
    o.order = malloc(sizeof *o.order * n), o.by_final = malloc(sizeof *o.by_final * n);
    o.bucket_of = malloc(sizeof *o.bucket_of * n), o.first = calloc(n, sizeof *o.first);
    o.pending = calloc(n, sizeof *o.pending), o.offset = calloc(n + 1, sizeof *o.offset);
    o.req = calloc(n, sizeof *o.req);
    xv_status st = o.final_at && o.agreed && o.order && o.by_final && o.bucket_of && o.first && o.pending &&
                           o.offset && o.req
                       ? XV_OK
                       : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = local_positions(g, &o);
    if (st == XV_OK) st = plan(g, &o);
    if (st == XV_OK) {
        xv_graph_set_backward_hook(g, on_node, &o);
        st = xv_backward(g, loss);
        xv_graph_set_backward_hook(g, NULL, NULL);
    }
    /* the walk is over: every gradient is final */
    if (st == XV_OK) {
        o.walked = NOT_REACHED;
        mark_final(&o);
        start_ready(&o);
        st = o.status;
    }
    /* Sum, then × 1/world, as apex's DDP does. */
    const float scale = 1.0f / (float)world;
    for (int b = 0; st == XV_OK && b < o.n_buckets; b++) {
        st = xv_dist_wait(o.req[b]);
        o.req[b] = NULL;
        const float *src = o.buf + o.offset[b];
        for (int k = o.first[b]; st == XV_OK && k < o.n_reduced && o.bucket_of[o.order[k]] == b; k++) {
            xv_tensor *t = p->items[o.order[k]];
            for (int64_t e = 0; e < t->numel; e++) t->grad[e] = src[e] * scale;
            src += t->numel;
        }
    }
    overlap_free(&o);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "averaging gradients over %d ranks", world);
}
