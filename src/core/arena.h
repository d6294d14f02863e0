/* Bump-pointer memory arena for activations and their gradients.
 * Allocation is O(1); everything is released at once by xv_arena_reset(),
 * which keeps the memory for the next step (no malloc churn in training). */
#ifndef XV_CORE_ARENA_H
#define XV_CORE_ARENA_H

#include <stddef.h>

typedef struct xv_arena_chunk xv_arena_chunk;

typedef struct {
    xv_arena_chunk *head;   /* chunk being filled (newest first) */
    xv_arena_chunk *spare;  /* chunks emptied by xv_arena_release, reused before new ones */
    size_t chunk_bytes;     /* default size of a new chunk */
    size_t used;            /* bytes handed out since the last reset */
    size_t peak;            /* high-water mark of `used` over the arena's life */
    size_t limit;           /* 0 = unlimited; otherwise refuse to grow beyond this */
} xv_arena;

void xv_arena_init(xv_arena *a, size_t chunk_bytes);
/* 64-byte aligned, uninitialised. NULL when out of memory (or over limit). */
void *xv_arena_alloc(xv_arena *a, size_t bytes);
/* Same, zero-filled. */
void *xv_arena_calloc(xv_arena *a, size_t bytes);
/* A position to come back to: xv_arena_release(a, m) forgets everything
 * allocated after xv_arena_mark returned m (scratch of one backward step) and
 * keeps the memory for the next allocations. */
typedef struct {
    xv_arena_chunk *chunk;
    size_t off, used;
} xv_arena_mark_t;
xv_arena_mark_t xv_arena_mark(const xv_arena *a);
void xv_arena_release(xv_arena *a, xv_arena_mark_t m);
/* Forget all allocations; chunks are coalesced into one for the next step. */
void xv_arena_reset(xv_arena *a);
void xv_arena_free(xv_arena *a);
/* Bytes currently reserved from the system. */
size_t xv_arena_reserved(const xv_arena *a);

#endif
