#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define XV_ALIGN 64

struct xv_arena_chunk {
    xv_arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t off;
    unsigned char *data;
};

static size_t round_up(size_t n) { return (n + XV_ALIGN - 1) & ~(size_t)(XV_ALIGN - 1); }

static xv_arena_chunk *chunk_new(size_t size) {
    xv_arena_chunk *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->data = aligned_alloc(XV_ALIGN, round_up(size));
    if (!c->data) {
        free(c);
        return NULL;
    }
    c->size = round_up(size);
    c->off = 0;
    c->next = NULL;
    return c;
}

/* First spare chunk with room for `need` bytes, unlinked and emptied. */
static xv_arena_chunk *take_spare(xv_arena *a, size_t need) {
    for (xv_arena_chunk **p = &a->spare; *p; p = &(*p)->next)
        if ((*p)->size >= need) {
            xv_arena_chunk *c = *p;
            *p = c->next;
            c->off = 0;
            return c;
        }
    return NULL;
}

void xv_arena_init(xv_arena *a, size_t chunk_bytes) {
    memset(a, 0, sizeof *a);
    a->chunk_bytes = chunk_bytes ? chunk_bytes : ((size_t)64 << 20);
}

void *xv_arena_alloc(xv_arena *a, size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes > SIZE_MAX / 2) return NULL;
    size_t need = round_up(bytes);
    if (a->limit && a->used + need > a->limit) return NULL;
    xv_arena_chunk *c = a->head;
    if (!c || c->size - c->off < need) {
        xv_arena_chunk *n = take_spare(a, need);
        if (!n) n = chunk_new(need > a->chunk_bytes ? need : a->chunk_bytes);
        if (!n) return NULL;
        n->next = c;
        a->head = c = n;
    }
    void *p = c->data + c->off;
    c->off += need;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *xv_arena_calloc(xv_arena *a, size_t bytes) {
    void *p = xv_arena_alloc(a, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

size_t xv_arena_reserved(const xv_arena *a) {
    size_t s = 0;
    for (const xv_arena_chunk *c = a->head; c; c = c->next) s += c->size;
    for (const xv_arena_chunk *c = a->spare; c; c = c->next) s += c->size;
    return s;
}

xv_arena_mark_t xv_arena_mark(const xv_arena *a) {
    return (xv_arena_mark_t){.chunk = a->head, .off = a->head ? a->head->off : 0, .used = a->used};
}

void xv_arena_release(xv_arena *a, xv_arena_mark_t m) {
    while (a->head && a->head != m.chunk) { /* chunks started after the mark become spares */
        xv_arena_chunk *c = a->head;
        a->head = c->next;
        c->next = a->spare;
        a->spare = c;
    }
    if (a->head) a->head->off = m.off;
    a->used = m.used;
}

void xv_arena_reset(xv_arena *a) {
    /* Coalesce: if the last step needed several chunks, replace them by one
     * chunk large enough for all of it, so steady-state steps never malloc. */
    if ((a->head && a->head->next) || a->spare) {
        size_t total = xv_arena_reserved(a);
        xv_arena_free(a);
        size_t keep_chunk = a->chunk_bytes;
        xv_arena_chunk *c = chunk_new(total);
        a->chunk_bytes = keep_chunk;
        a->head = c; /* NULL on failure: the next alloc retries with a small chunk */
    } else if (a->head) {
        a->head->off = 0;
    }
    a->used = 0;
}

static void free_chunks(xv_arena_chunk *c) {
    while (c) {
        xv_arena_chunk *n = c->next;
        free(c->data);
        free(c);
        c = n;
    }
}

void xv_arena_free(xv_arena *a) {
    free_chunks(a->head);
    free_chunks(a->spare);
    a->head = a->spare = NULL;
    a->used = 0;
}
