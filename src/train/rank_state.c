/* Every rank's counters and streams in rank 0's checkpoint (rank_state.h). */
#include "train/rank_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static char *prefixed(int rank, const char *name) {
    const size_t len = strlen(name) + 32;
    char *s = malloc(len);
    if (s) snprintf(s, len, "rank%d.%s", rank, name);
    return s;
}

xv_status xv_rank_state_init(xv_rank_state *s, const xv_ckpt_counter *mine, int n_counters,
                             const xv_ckpt_rng *mine_rngs, int n_rngs) {
    memset(s, 0, sizeof *s);
    const int world = xv_dist_world();
    const size_t nc = (size_t)n_counters, nr = (size_t)n_rngs, w = (size_t)world;
    s->n_counters = n_counters, s->n_rngs = n_rngs;
    s->mine = calloc(nc + 1, sizeof *s->mine);
    s->mine_rngs = calloc(nr + 1, sizeof *s->mine_rngs);
    s->counters = calloc(w * nc + 1, sizeof *s->counters);
    s->rngs = calloc(w * nr + 1, sizeof *s->rngs);
    if (!s->mine || !s->mine_rngs || !s->counters || !s->rngs) return xv_error(XV_ERR_NOMEM, "out of memory");
    memcpy(s->mine, mine, nc * sizeof *mine);
    memcpy(s->mine_rngs, mine_rngs, nr * sizeof *mine_rngs);
    if (world == 1) { /* the live values themselves, under their own names */
        memcpy(s->counters, mine, nc * sizeof *mine);
        memcpy(s->rngs, mine_rngs, nr * sizeof *mine_rngs);
        return XV_OK;
    }
    s->all_values = calloc(w * nc + 1, sizeof *s->all_values);
    s->all_rngs = calloc(w * nr + 1, sizeof *s->all_rngs);
    s->names = calloc(w * (nc + nr) + 1, sizeof *s->names);
    if (!s->all_values || !s->all_rngs || !s->names) return xv_error(XV_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (int r = 0; r < world; r++) {
        for (size_t i = 0; i < nc; i++, k++) {
            const size_t at = (size_t)r * nc + i;
            if (!(s->names[k] = prefixed(r, mine[i].name))) return xv_error(XV_ERR_NOMEM, "out of memory");
            s->counters[at] = (xv_ckpt_counter){s->names[k], &s->all_values[at]};
        }
        for (size_t i = 0; i < nr; i++, k++) {
            const size_t at = (size_t)r * nr + i;
            if (!(s->names[k] = prefixed(r, mine_rngs[i].name))) return xv_error(XV_ERR_NOMEM, "out of memory");
            s->rngs[at] = (xv_ckpt_rng){s->names[k], &s->all_rngs[at]};
        }
    }
    return XV_OK;
}

xv_status xv_rank_state_gather(xv_rank_state *s) {
    if (!s->all_values) return XV_OK;
    const size_t n = (size_t)s->n_counters + 2 * (size_t)s->n_rngs; /* the values, then (key, counter) of each stream */
    const int world = xv_dist_world();
    int64_t *mine = malloc(sizeof *mine * (n + 1)), *all = malloc(sizeof *all * (n * (size_t)world + 1));
    xv_status st = mine && all ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        size_t j = 0;
        for (int i = 0; i < s->n_counters; i++) mine[j++] = *s->mine[i].value;
        for (int i = 0; i < s->n_rngs; i++)
            mine[j++] = (int64_t)s->mine_rngs[i].rng->key, mine[j++] = (int64_t)s->mine_rngs[i].rng->counter;
        st = xv_dist_allgather(mine, all, sizeof *mine * n);
    }
    for (int r = 0; st == XV_OK && r < world; r++) {
        const int64_t *v = all + (size_t)r * n;
        memcpy(s->all_values + (size_t)r * (size_t)s->n_counters, v, sizeof *v * (size_t)s->n_counters);
        v += s->n_counters;
        for (int i = 0; i < s->n_rngs; i++, v += 2)
            s->all_rngs[(size_t)r * (size_t)s->n_rngs + (size_t)i] = (xv_rng){(uint64_t)v[0], (uint64_t)v[1]};
    }
    free(mine), free(all);
    return st;
}

void xv_rank_state_pick(xv_rank_state *s) {
    if (!s->all_values) return;
    const size_t r = (size_t)xv_dist_rank();
    for (int i = 0; i < s->n_counters; i++) *s->mine[i].value = s->all_values[r * (size_t)s->n_counters + (size_t)i];
    for (int i = 0; i < s->n_rngs; i++) *s->mine_rngs[i].rng = s->all_rngs[r * (size_t)s->n_rngs + (size_t)i];
}

void xv_rank_state_free(xv_rank_state *s) {
    if (s->names) {
        const size_t n = (size_t)xv_dist_world() * (size_t)(s->n_counters + s->n_rngs);
        for (size_t i = 0; i < n; i++) free(s->names[i]);
    }
    free(s->names);
    free(s->mine), free(s->mine_rngs), free(s->counters), free(s->rngs), free(s->all_values), free(s->all_rngs);
    memset(s, 0, sizeof *s);
}
