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
 * Blocks from 1 MiB up are private mappings; smaller ones come from malloc.
 * A freed mapping is kept as a spare and handed out again (zeroed with
 * memset) to a later request of about its size: every step of a training run
 * asks for the same sizes, and a fresh mapping costs two page faults per 4 KiB
 * page on first read and write, which was a quarter of a small model's step.
 * Spares are unmapped whenever a new mapping would take the mapped total
 * (live + spare) above XV_GRAD_SPARE_CAP times the live high-water mark.
 * Not thread-safe, like the arena. */
#ifndef XV_CORE_GRAD_STORE_H
#define XV_CORE_GRAD_STORE_H

#include <stddef.h>

typedef struct xv_grad_block xv_grad_block;

/* The tiny fixture model trained at batch 16 (gradients in a dozen sizes)
 * reuses every mapping from its second step on with 2.6 times its live peak
 * mapped; a cap of 2 left 50,000 page faults a step (a third of its CPU time). */
#define XV_GRAD_SPARE_CAP 3

typedef struct {
    xv_grad_block *head;  /* live blocks, newest first (doubly linked) */
    xv_grad_block *spare; /* freed mappings kept for reuse, newest first (singly linked) */
    size_t live;          /* bytes in live blocks */
    size_t spare_bytes;   /* bytes in spare mappings */
    size_t peak;          /* high-water mark of `live` over the store's life */
} xv_grad_store;

/* `floats` zeroed floats, 64-byte aligned; NULL when out of memory. */
float *xv_grad_store_alloc(xv_grad_store *s, size_t floats);
/* The same, contents undefined: for a first writer that overwrites every
 * element (saves the zeroing pass and the reads of zeros). */
float *xv_grad_store_alloc_uninit(xv_grad_store *s, size_t floats);
/* Free one buffer from xv_grad_store_alloc (NULL: nothing). */
void xv_grad_store_free(xv_grad_store *s, float *p);
/* Free every live buffer (mappings become spares for the next step). */
void xv_grad_store_clear(xv_grad_store *s);
/* Free everything, spares included (the store is empty and reusable after). */
void xv_grad_store_release_all(xv_grad_store *s);

#endif
