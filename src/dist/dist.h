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

/* ---- the all-gather as a graph op (dist_gather.c) ---- */

/* [world·B, ...] = every rank's x [B, ...] stacked in rank order (same shape on
 * every rank). Backward: this rank's rows of the output gradient only, with no
 * reduction across ranks (the official AllGather's backward), so a loss over
 * the gathered batch sends each rank the gradient of its own items. In a world
 * of one, x itself. */
xv_tensor *xv_dist_all_gather_rows(xv_graph *g, xv_tensor *x);

#endif
