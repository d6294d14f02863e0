/* Gradient buffers of activations, one block each, outside the graph arena.
 *
 * The arena can only release everything at once; a backward pass needs each
 * activation gradient from its first accumulation until the op that produced
 * the activation has passed it on, which is a short span of the tape. Keeping
 * these buffers apart lets the graph free each one when it is used up (see
 * xv_graph_set_free_used_grads) and lets it reuse the arena space a backward
 * step allocated for scratch (graph.c), so a training step's peak holds the
 * forward activations plus only the gradients in flight.
 *
 * Blocks from 1 MiB up are private mappings (zero pages from the kernel,
 * returned to the system when freed: the peak resident memory follows the
 * live bytes); smaller ones come from malloc. Not thread-safe, like the arena. */
#ifndef XV_CORE_GRAD_STORE_H
#define XV_CORE_GRAD_STORE_H

#include <stddef.h>

typedef struct xv_grad_block xv_grad_block;

typedef struct {
    xv_grad_block *head; /* live blocks, newest first (doubly linked) */
    size_t live;         /* bytes in live blocks */
    size_t peak;         /* high-water mark of `live` over the store's life */
} xv_grad_store;

/* `floats` zeroed floats, 64-byte aligned; NULL when out of memory. */
float *xv_grad_store_alloc(xv_grad_store *s, size_t floats);
/* Free one buffer from xv_grad_store_alloc (NULL: nothing). */
void xv_grad_store_free(xv_grad_store *s, float *p);
/* Free every live buffer. */
void xv_grad_store_clear(xv_grad_store *s);

#endif
