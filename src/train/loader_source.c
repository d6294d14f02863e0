#include "train/loader_source.h"

#include <stdlib.h>
#include <string.h>

#include "data/pretrain_data.h"
#include "dist/dist.h"
#include "train/stop_signal.h"

typedef struct {
    xv_pretrain_loader *l;
} source;

static xv_status next(void *ctx, xv_pretrain_batch *out) {
    source *s = ctx;
    XV_TRY(xv_pretrain_next(s->l, out));
    if (out->n_images == 0) return xv_error(XV_ERR_MISSING, "the pretraining data ended (no repeat)");
    return XV_OK;
}

static int state_len(void *ctx) { return xv_pretrain_state_len(((source *)ctx)->l); }
static const char *state_name(void *ctx, int i) { return xv_pretrain_state_name(((source *)ctx)->l, i); }
static xv_status state_save(void *ctx, int64_t *v, int n) { return xv_pretrain_state_save(((source *)ctx)->l, v, n); }
static xv_status state_restore(void *ctx, const int64_t *v, int n) {
    return xv_pretrain_state_restore(((source *)ctx)->l, v, n);
}
static int n_counters(void *ctx) { return XV_PRETRAIN_N_COUNTERS; }
static const char *counter_name(void *ctx, int i) { return xv_pretrain_counter_name(i); }
static int64_t counter_value(void *ctx, int i) {
    xv_pretrain_counters c = xv_pretrain_get_counters(((source *)ctx)->l);
    int64_t v[XV_PRETRAIN_N_COUNTERS];
    _Static_assert(sizeof c == sizeof v, "the counters are int64 fields in name order");
    memcpy(v, &c, sizeof v);
    return i >= 0 && i < XV_PRETRAIN_N_COUNTERS ? v[i] : 0;
}

xv_status xv_loader_source_open(const xv_pretrain_run_config *rc, bool regions, uint64_t seed,
                                xv_batch_source *out) {
    memset(out, 0, sizeof *out);
    xv_pretrain_config c = regions ? rc->regions : rc->images;
    /* A signal ends the wait for a batch (train/stop_signal.h). One process
     * only: ranks leaving a step at different points would leave the others
     * waiting in its collectives, so there every rank stops between steps. */
    if (xv_dist_world() == 1) c.interrupted = xv_stop_requested;
    source *s = calloc(1, sizeof *s);
    if (!s) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_pretrain_open(&c, xv_dist_rank(), xv_dist_world(), seed, &s->l); /* this rank's shard */
    if (st != XV_OK) {
        free(s);
        return xv_error_wrap(st, "%s loader", regions ? "region" : "image-text");
    }
    *out = (xv_batch_source){.ctx = s, .next = next, .state_len = state_len, .state_name = state_name,
                             .state_save = state_save, .state_restore = state_restore, .n_counters = n_counters,
                             .counter_name = counter_name, .counter_value = counter_value};
    return XV_OK;
}

void xv_loader_source_close(xv_batch_source *s) {
    if (!s || !s->ctx) return;
    source *src = s->ctx;
    xv_pretrain_close(src->l);
    free(src);
    memset(s, 0, sizeof *s);
}
