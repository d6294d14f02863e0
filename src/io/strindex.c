#include "io/strindex.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Slot holding `key`, or the empty slot where it would go. */
static size_t slot_of(const xv_strindex *ix, const char *key) {
    size_t mask = ix->cap - 1, i = fnv1a(key) & mask;
    while (ix->keys[i] && strcmp(ix->keys[i], key)) i = (i + 1) & mask;
    return i;
}

int32_t xv_strindex_get(const xv_strindex *ix, const char *key) {
    if (!ix->cap) return -1;
    size_t i = slot_of(ix, key);
    return ix->keys[i] ? ix->vals[i] : -1;
}

static bool rehash(xv_strindex *ix, size_t cap) {
    xv_strindex nx = {calloc(cap, sizeof *nx.keys), malloc(cap * sizeof *nx.vals), cap, ix->n};
    if (!nx.keys || !nx.vals) {
        free(nx.keys);
        free(nx.vals);
        return false;
    }
    for (size_t i = 0; i < ix->cap; i++) {
        if (!ix->keys[i]) continue;
        size_t j = slot_of(&nx, ix->keys[i]);
        nx.keys[j] = ix->keys[i];
        nx.vals[j] = ix->vals[i];
    }
    xv_strindex_free(ix);
    *ix = nx;
    return true;
}

bool xv_strindex_put(xv_strindex *ix, const char *key, int32_t val) {
    if (2 * (ix->n + 1) > ix->cap && !rehash(ix, ix->cap ? 2 * ix->cap : 64)) return false;
    size_t i = slot_of(ix, key);
    if (!ix->keys[i]) {
        ix->keys[i] = key;
        ix->n++;
    }
    ix->vals[i] = val;
    return true;
}

void xv_strindex_free(xv_strindex *ix) {
    free(ix->keys);
    free(ix->vals);
    ix->keys = NULL;
    ix->vals = NULL;
    ix->cap = ix->n = 0;
}
