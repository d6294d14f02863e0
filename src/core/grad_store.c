#include "core/grad_store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The header sits in the 64 bytes before the data, which keeps the data
 * aligned as the arena's is (kernels may use aligned vector loads). */
#define HEADER 64
#define MAP_FROM ((size_t)1 << 20)
#define PAGE ((size_t)4096)

struct xv_grad_block {
    xv_grad_block *prev, *next;
    size_t bytes; /* whole block, header included (mappings: whole pages) */
    bool mapped;
};
_Static_assert(sizeof(xv_grad_block) <= HEADER, "grad block header must fit its slot");

/* The smallest spare of at least `bytes` and at most 1/8 larger (a larger
 * one would hold memory the request does not use), unlinked; NULL if none. */
static xv_grad_block *take_spare(xv_grad_store *s, size_t bytes) {
    xv_grad_block **best = NULL;
    for (xv_grad_block **p = &s->spare; *p; p = &(*p)->next) {
        const size_t have = (*p)->bytes;
        if (have >= bytes && have - bytes <= bytes / 8 && (!best || have < (*best)->bytes)) best = p;
    }
    if (!best) return NULL;
    xv_grad_block *b = *best;
    *best = b->next;
    s->spare_bytes -= b->bytes;
    return b;
}

/* Unmap spares (all unused, so which ones matters little: newest first) until
 * `need` more mapped bytes keep live + spare within `cap`. */
static void trim_spares(xv_grad_store *s, size_t need, size_t cap) {
    while (s->spare && s->live + s->spare_bytes + need > cap) {
        xv_grad_block *b = s->spare;
        s->spare = b->next;
        s->spare_bytes -= b->bytes;
        munmap(b, b->bytes);
    }
}

/* A block of `bytes` (header included) with its size and kind set, its data
 * zeroed when `zero`. */
static xv_grad_block *new_block(xv_grad_store *s, size_t bytes, bool zero) {
    if (bytes < MAP_FROM) {
        xv_grad_block *b = aligned_alloc(HEADER, (bytes + HEADER - 1) / HEADER * HEADER);
        if (!b) return NULL;
        memset(b, 0, zero ? bytes : HEADER);
        b->bytes = bytes, b->mapped = false;
        return b;
    }
    const size_t pages = (bytes + PAGE - 1) / PAGE * PAGE;
    xv_grad_block *b = take_spare(s, pages);
    if (b) {
        if (zero) memset((unsigned char *)b + HEADER, 0, bytes - HEADER); /* what the request reads */
        return b; /* bytes and mapped as when it was mapped */
    }
    trim_spares(s, pages, XV_GRAD_SPARE_CAP * s->peak);
    void *p = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    b = p; /* anonymous pages are zero */
    b->bytes = pages, b->mapped = true;
    return b;
}

static float *alloc_block(xv_grad_store *s, size_t floats, bool zero) {
    if (floats > (SIZE_MAX - HEADER - PAGE) / sizeof(float)) return NULL;
    xv_grad_block *b = new_block(s, HEADER + floats * sizeof(float), zero);
    if (!b) return NULL;
    b->prev = NULL, b->next = s->head;
    if (s->head) s->head->prev = b;
    s->head = b;
    s->live += b->bytes;
    if (s->live > s->peak) s->peak = s->live;
    return (float *)((unsigned char *)b + HEADER);
}

float *xv_grad_store_alloc(xv_grad_store *s, size_t floats) { return alloc_block(s, floats, true); }
float *xv_grad_store_alloc_uninit(xv_grad_store *s, size_t floats) { return alloc_block(s, floats, false); }

static void release(xv_grad_store *s, xv_grad_block *b) {
    if (b->prev) b->prev->next = b->next;
    else s->head = b->next;
    if (b->next) b->next->prev = b->prev;
    s->live -= b->bytes;
    if (b->mapped) {
        b->next = s->spare;
        s->spare = b;
        s->spare_bytes += b->bytes;
    } else {
        free(b);
    }
}

void xv_grad_store_free(xv_grad_store *s, float *p) {
    if (p) release(s, (xv_grad_block *)((unsigned char *)p - HEADER));
}

void xv_grad_store_clear(xv_grad_store *s) {
    while (s->head) release(s, s->head);
}

void xv_grad_store_release_all(xv_grad_store *s) {
    xv_grad_store_clear(s);
    trim_spares(s, 0, 0);
}
