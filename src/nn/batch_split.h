/* Inference batch split: with recording off and eval mode, a batched forward
 * (the Swin encoder, a stack of BERT layers) runs as independent streams, one
 * per thread, each on a contiguous share of the batch in its own worker graph
 * (xv_graph_child), with single-threaded ops and BLAS inside. The streams meet
 * only at the end, where their results are copied into one tensor of the main
 * graph: no fork/join or barrier per op, so a thread that the OS delays holds
 * up only its own share (on a loaded machine a per-op barrier waits for the
 * slowest thread hundreds of times per forward).
 *
 * Where it does not apply (recording, training, one thread, a batch smaller
 * than the thread count, already inside a parallel region) fn runs once on the
 * whole batch in g, and ops thread themselves as usual. Results are
 * deterministic for a given thread count (the shares depend on it only). */
#ifndef XV_NN_BATCH_SPLIT_H
#define XV_NN_BATCH_SPLIT_H

#include "core/tensor.h"

#define XV_BATCH_MAX_INPUTS 8

/* Runs the forward on the batch `in` (entries may be NULL) and returns an F32
 * tensor whose dim 0 is the batch. Must not touch graphs other than g. */
typedef xv_tensor *(*xv_batch_fn)(xv_graph *g, void *user, xv_tensor *const *in);

/* fn over the batch: in[0] (required) and every non-NULL in[i] share dim 0
 * (the batch) and are cut along it without copies. Returns fn's result, as a
 * tensor of g; NULL with g's error set on failure (a worker's error is moved
 * to g). */
xv_tensor *xv_batch_split(xv_graph *g, xv_batch_fn fn, void *user, xv_tensor *const *in, int n_in);

#endif
