/* An evaluation split dealt out over the ranks as torch's DistributedSampler
 * (shuffle off) deals it, and the ranks' results put back in sample order
 * (dist.h). Built on dist.h's collectives only, so it is the same code with
 * and without MPI. */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

int64_t xv_dist_shard_size(int64_t n) {
    const int64_t w = xv_dist_world();
    return n > 0 ? (n + w - 1) / w : 0;
}

int64_t xv_dist_shard_sample(int64_t n, int64_t k) { return ((int64_t)xv_dist_rank() + k * xv_dist_world()) % n; }

/* Position p < n of the padded list is sample p, held by rank p mod world as
 * its (p div world)-th result; positions from n on are the padding's repeats. */
xv_status xv_dist_gather_shards(const void *mine, size_t rec_bytes, int64_t n, void *all) {
    const int64_t w = xv_dist_world(), m = xv_dist_shard_size(n);
    if (n <= 0) return XV_OK;
    if (w == 1) {
        memmove(all, mine, rec_bytes * (size_t)n);
        return XV_OK;
    }
    char *every = malloc(rec_bytes * (size_t)(m * w)); /* [rank][k] records */
    if (!every) return xv_error(XV_ERR_NOMEM, "out of memory (the results of %lld samples)", (long long)(m * w));
    xv_status st = xv_dist_allgather(mine, every, rec_bytes * (size_t)m);
    for (int64_t p = 0; st == XV_OK && p < n; p++)
        memcpy((char *)all + rec_bytes * (size_t)p, every + rec_bytes * (size_t)((p % w) * m + p / w), rec_bytes);
    free(every);
    return st;
}

/* Each rank's strings, NUL-terminated and concatenated, gathered to rank 0
 * and broadcast from there (two collectives every rank makes in any case). */
xv_status xv_dist_gather_shard_strings(char *const *mine, int64_t n, char **all) {
    const int w = xv_dist_world();
    const int64_t m = xv_dist_shard_size(n);
    memset(all, 0, sizeof *all * (size_t)(n > 0 ? n : 0));
    if (n <= 0) return XV_OK;
    size_t len = 0;
    for (int64_t k = 0; k < m; k++) len += strlen(mine[k]) + 1;
    char *send = malloc(len), *every = NULL;
    size_t *lens = calloc((size_t)w, sizeof *lens);
    uint64_t total = 0;
    xv_status st = send && lens ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t k = 0, off = 0; st == XV_OK && k < m; k++) {
        const size_t l = strlen(mine[k]) + 1;
        memcpy(send + off, mine[k], l);
        off += (int64_t)l;
    }
    if (st == XV_OK) st = xv_dist_gather_bytes(send, len, (void **)&every, lens);
    if (st == XV_OK && xv_dist_rank() == 0)
        for (int r = 0; r < w; r++) total += lens[r];
    if (st == XV_OK) st = xv_dist_broadcast(&total, sizeof total, 0);
    if (st == XV_OK && xv_dist_rank() != 0 && !(every = malloc(total ? total : 1)))
        st = xv_error(XV_ERR_NOMEM, "out of memory (%llu bytes of results)", (unsigned long long)total);
    if (st == XV_OK) st = xv_dist_broadcast(every, total, 0);
    /* every holds rank 0's m strings, then rank 1's, ...: the k-th string of
     * rank r is position r + k·world of the padded list */
    const char *s = every;
    for (int r = 0; st == XV_OK && r < w; r++)
        for (int64_t k = 0; st == XV_OK && k < m; k++) {
            const size_t l = strlen(s) + 1;
            const int64_t p = r + k * w;
            if (p < n && !(all[p] = malloc(l))) st = xv_error(XV_ERR_NOMEM, "out of memory");
            if (p < n && all[p]) memcpy(all[p], s, l);
            s += l;
        }
    if (st != XV_OK)
        for (int64_t i = 0; i < n; i++) free(all[i]), all[i] = NULL;
    free(send), free(every), free(lens);
    return st;
}
