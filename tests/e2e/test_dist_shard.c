/* Evaluation splits over the ranks (dist.h, dist_shard.c), against
 * DistributedSampler(shuffle=False): rank r of w takes positions r, r + w,
 * ... of the list padded from its start to ceil(n / w)·w, and the gathered
 * results come back in sample order with the padding dropped.
 *
 * In one process it checks the world of one (every sample, in order), then
 * starts itself under `mpirun --oversubscribe -np 2` and `-np 3` (skipped
 * without MPI or mpirun): every rank checks its share for n = 1 .. 11 (n
 * below, equal to and above the world, divisible or not) and that both
 * gathers give every rank each sample's result from the rank that made it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "testutil.h"

typedef struct {
    int32_t sample, rank; /* what the sample's result says: which sample, made where */
} result;

static void check_n(int64_t n) {
    const int w = xv_dist_world(), me = xv_dist_rank();
    const int64_t m = xv_dist_shard_size(n);
    CHECK(m == (n + w - 1) / w, "n %lld: shard of %lld, expected ceil(n / %d)", (long long)n, (long long)m, w);
    /* DistributedSampler: indices = range(n) + range(n)[:pad]; indices[rank::w] */
    const int64_t total = m * w;
    int64_t *padded = malloc(sizeof *padded * (size_t)total);
    for (int64_t p = 0; p < total; p++) padded[p] = p % n;
    result *mine = calloc((size_t)m, sizeof *mine), *all = calloc((size_t)n, sizeof *all);
    char **strs = calloc((size_t)m, sizeof *strs), **all_strs = calloc((size_t)n, sizeof *all_strs);
    for (int64_t k = 0; k < m; k++) {
        const int64_t s = xv_dist_shard_sample(n, k);
        CHECK(s == padded[me + k * w], "n %lld, rank %d: position %lld is sample %lld, expected %lld", (long long)n, me,
              (long long)k, (long long)s, (long long)padded[me + k * w]);
        mine[k] = (result){.sample = (int32_t)s, .rank = me};
        char text[64];
        snprintf(text, sizeof text, "sample %lld%.*s", (long long)s, (int)(s % 7), "+++++++"); /* lengths differ */
        strs[k] = strdup(text);
    }
    free(padded);
    CHECK_OK(xv_dist_gather_shards(mine, sizeof *mine, n, all));
    CHECK_OK(xv_dist_gather_shard_strings(strs, n, all_strs));
    for (int64_t i = 0; i < n; i++) {
        /* sample i is position i of the padded list: rank i mod w made it */
        CHECK(all[i].sample == i && all[i].rank == i % w, "n %lld: result %lld says sample %d from rank %d", (long long)n,
              (long long)i, all[i].sample, all[i].rank);
        char text[64];
        snprintf(text, sizeof text, "sample %lld%.*s", (long long)i, (int)(i % 7), "+++++++");
        CHECK(all_strs[i] && !strcmp(all_strs[i], text), "n %lld: string %lld is '%s'", (long long)n, (long long)i,
              all_strs[i] ? all_strs[i] : "(null)");
        free(all_strs[i]);
    }
    for (int64_t k = 0; k < m; k++) free(strs[k]);
    free(mine), free(all), free(strs), free(all_strs);
}

static int checks(const char *name) {
    CHECK(xv_dist_shard_size(0) == 0, "an empty split has no shard");
    for (int64_t n = 1; n <= 11; n++) check_n(n);
    return xv_test_finish(name);
}

int main(int argc, char **argv) {
    if (xv_dist_init(&argc, &argv) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    if (xv_dist_world() > 1) {
        const int rc = checks("test_dist_shard (rank)");
        if (rc != 0) xv_dist_abort(rc, "test_dist_shard failed");
        xv_dist_finalize();
        return rc;
    }
    if (checks("test_dist_shard (one process)")) return 1;
    const char *mpirun2 = xv_test_mpirun(2);
    if (!xv_dist_has_mpi() || !mpirun2) return xv_test_skip("no MPI in this build, or mpirun absent");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s'%s'", mpirun2, argv[0]);
    CHECK(xv_test_run(cmd) == 0, "the 2-rank shard check failed");
    snprintf(cmd, sizeof cmd, "%s'%s'", xv_test_mpirun(3), argv[0]);
    CHECK(xv_test_run(cmd) == 0, "the 3-rank shard check failed");
    return xv_test_finish("test_dist_shard");
}
