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

struct xv_grad_block {
    xv_grad_block *prev, *next;
    size_t bytes; /* whole block, header included */
    bool mapped;
};
_Static_assert(sizeof(xv_grad_block) <= HEADER, "grad block header must fit its slot");

float *xv_grad_store_alloc(xv_grad_store *s, size_t floats) {
    if (floats > (SIZE_MAX - HEADER) / sizeof(float)) return NULL;
    const size_t bytes = HEADER + floats * sizeof(float);
    xv_grad_block *b;
    const bool mapped = bytes >= MAP_FROM;
    if (mapped) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        b = p; /* anonymous pages are zero */
    } else {
        b = aligned_alloc(HEADER, (bytes + HEADER - 1) / HEADER * HEADER);
        if (!b) return NULL;
        memset(b, 0, bytes);
    }
    *b = (xv_grad_block){.prev = NULL, .next = s->head, .bytes = bytes, .mapped = mapped};
    if (s->head) s->head->prev = b;
    s->head = b;
    s->live += bytes;
    if (s->live > s->peak) s->peak = s->live;
    return (float *)((unsigned char *)b + HEADER);
}

static void release(xv_grad_store *s, xv_grad_block *b) {
    if (b->prev) b->prev->next = b->next;
    else s->head = b->next;
    if (b->next) b->next->prev = b->prev;
    s->live -= b->bytes;
    if (b->mapped) munmap(b, b->bytes);
    else free(b);
}

void xv_grad_store_free(xv_grad_store *s, float *p) {
    if (p) release(s, (xv_grad_block *)((unsigned char *)p - HEADER));
}

void xv_grad_store_clear(xv_grad_store *s) {
    while (s->head) release(s, s->head);
}
