/* A string -> int map (open addressing, FNV-1a) for name lookups in parsers
 * that must stay linear-time on hostile input. Keys are not copied: they must
 * outlive the index. */
#ifndef XV_IO_STRINDEX_H
#define XV_IO_STRINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char **keys;
    int32_t *vals;
    size_t cap, n; /* cap is a power of two (or 0), kept above 2n */
} xv_strindex;

/* Value for `key`, or -1. */
int32_t xv_strindex_get(const xv_strindex *ix, const char *key);
/* Insert or overwrite; false when out of memory. */
bool xv_strindex_put(xv_strindex *ix, const char *key, int32_t val);
void xv_strindex_free(xv_strindex *ix);

#endif
