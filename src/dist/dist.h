/* Data-parallel processes: world size, rank and the few collectives that
 * data-parallel training needs (docs/distributed.md).
 *
 * Built with Open MPI (dist_mpi.c) when CMake finds it, else as one process
 * (dist_local.c); started without mpirun, the MPI build is one process too.
 * Only this folder calls MPI. Every collective must be called by every rank in
 * the same order; a failure returns a status (the message names the call and
 * this rank) and the caller ends the job with xv_dist_abort, so that no rank
 * waits for ever on one that is gone. A collective that waits longer than
 * XV_DIST_TIMEOUT seconds (default 600; 0 = no limit) for the other ranks
 * ends the job itself: one of them hangs. */
#ifndef XV_DIST_DIST_H
#define XV_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/params.h"
#include "core/tensor.h"

/* Join the job when started by mpirun (MPI_Init); otherwise a world of one.
 * Call once, first thing in main. Errors come back as statuses, not aborts. */
xv_status xv_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize after a barrier); nothing in a world of one. */
void xv_dist_finalize(void);
/* End every rank of the job now, with exit code `code` and the message on
 * stderr prefixed by this rank. Returns only in a world of one (never in MPI). */
void xv_dist_abort(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int xv_dist_world(void); /* 1 without mpirun */
int xv_dist_rank(void);  /* 0 .. world-1 */
/* Whether this build can run several processes (compiled with MPI). */
int xv_dist_has_mpi(void);

/* Collectives (every rank calls them with the same sizes). */
xv_status xv_dist_barrier(void);
/* bytes from root to every rank. */
xv_status xv_dist_broadcast(void *buf, size_t bytes, int root);
/* recv[r·bytes ..] = rank r's send (recv holds world·bytes). */
xv_status xv_dist_allgather(const void *send, void *recv, size_t bytes);
/* In place: v = Σ over ranks. */
xv_status xv_dist_allreduce_sum_f32(float *v, int64_t n);
xv_status xv_dist_allreduce_sum_f64(double *v, int64_t n);
/* In place: v = max over ranks. */
xv_status xv_dist_allreduce_max_i32(int32_t *v, int64_t n);
/* Non-blocking in-place sum of floats (at most 2^28 of them): started now,
 * moved along by xv_dist_progress, finished by xv_dist_wait (which frees the
 * request and applies the XV_DIST_TIMEOUT watchdog). v must stay untouched
 * until then. Every rank starts its non-blocking reductions in the same
 * order. *req is NULL in a world of one. */
typedef struct xv_dist_request xv_dist_request;
xv_status xv_dist_iallreduce_sum_f32(float *v, int64_t n, xv_dist_request **req);
/* Let MPI move a started reduction on (MPI progresses inside its calls);
 * *done (may be NULL) tells whether it has finished. */
xv_status xv_dist_progress(xv_dist_request *req, int *done);
xv_status xv_dist_wait(xv_dist_request *req);
/* Rank 0 receives every rank's byte string (lengths may differ): *out gets a
 * malloc'd concatenation in rank order, lens[r] (world entries) each length.
 * Other ranks get *out = NULL. */
xv_status xv_dist_gather_bytes(const void *send, size_t len, void **out, size_t *lens);

/* ---- what data-parallel training builds from them (dist_params.c) ---- */

/* Every rank gets rank 0's parameter values (the same initial weights). */
xv_status xv_dist_broadcast_params(xv_params *p);
/* DDP's gradient averaging: every gradient becomes (Σ_r g_r) / world. A
 * parameter whose gradient buffer exists on some rank gets one on every rank
 * (zeros where the rank's step did not reach it), so the optimizer updates the
 * same set everywhere. Buckets of parameters are packed into one buffer per
 * call. Nothing in a world of one. */
xv_status xv_dist_average_grads(xv_graph *g, xv_params *p);

/* xv_backward of `loss` with the same averaging overlapped (dist_overlap.c,
 * as torch DDP's reducer): buckets of gradients in the order the walk
 * finishes them, each all-reduced while the walk computes the rest; the
 * averaged gradients are in place when it returns. A collective: every rank
 * calls it, so a rank that skips a step must agree with the others first. For
 * two ranks the same bits as xv_backward + xv_dist_average_grads (each
 * element is a + b either way); for more, the sum's order is MPI's for each
 * bucket size. In a world of one, xv_backward. */
xv_status xv_dist_backward_averaged(xv_graph *g, xv_tensor *loss, xv_params *p);
/* The buffer the gradients are packed into for their all-reduce, at least n
 * floats (NULL, error set, when out of memory). One buffer, kept from step to
 * step and grown when needed: fresh pages at every step cost their
 * first-touch faults, measured as more than the all-reduce itself. */
float *xv_dist_bucket_buffer(int64_t n);
/* Floats per gradient bucket: XV_DIST_BUCKET_FLOATS, else 8 Mi (32 MiB). */
int64_t xv_dist_bucket_floats(void);
/* false when XV_DIST_OVERLAP=0: xv_dist_backward_averaged then reduces after
 * the backward (xv_dist_average_grads), to measure or rule out the overlap. */
bool xv_dist_overlap_enabled(void);

/* ---- evaluation splits over the ranks (dist_shard.c) ---- */

/* torch's DistributedSampler with shuffle off, as the official scripts deal
 * out an evaluation split of n samples: the list padded from its start to a
 * multiple of the world, every world-th position from the rank's index. This
 * rank gets xv_dist_shard_size(n) = ceil(n / world) positions; its k-th is
 * sample xv_dist_shard_sample(n, k) = (rank + k·world) mod n. In a world of
 * one: every sample in order. */
int64_t xv_dist_shard_size(int64_t n);
int64_t xv_dist_shard_sample(int64_t n, int64_t k);
/* The ranks' results back in sample order, on every rank: `mine` holds this
 * rank's xv_dist_shard_size(n) records of rec_bytes each, in shard order;
 * all[i] (n records) gets sample i's. The padding's repeats are dropped, so
 * every number computed from `all` is one process's (the official scripts
 * keep them: docs/distributed.md). A collective. */
xv_status xv_dist_gather_shards(const void *mine, size_t rec_bytes, int64_t n, void *all);
/* The same for one string per sample: all[i] (n entries) gets a malloc'd copy
 * of sample i's string (every entry NULL on failure). */
xv_status xv_dist_gather_shard_strings(char *const *mine, int64_t n, char **all);

/* ---- the all-gather as a graph op (dist_gather.c) ---- */

/* [world·B, ...] = every rank's x [B, ...] stacked in rank order (same shape on
 * every rank). Backward: this rank's rows of the output gradient only, with no
 * reduction across ranks (the official AllGather's backward), so a loss over
 * the gathered batch sends each rank the gradient of its own items. In a world
 * of one, x itself. */
xv_tensor *xv_dist_all_gather_rows(xv_graph *g, xv_tensor *x);

#endif
