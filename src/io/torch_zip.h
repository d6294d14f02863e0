/* The archive side of PyTorch (>= 1.6) checkpoints: a zip file holding
 * <prefix>/data.pkl (the pickle), <prefix>/data/<key> (raw little-endian
 * storages, normally STORED, i.e. uncompressed), <prefix>/version and maybe
 * <prefix>/byteorder. Read with libzip.
 *
 * Opening validates the whole directory before anything is read: libzip's
 * consistency check (local headers vs central directory), then per entry: no
 * encryption, STORED or DEFLATE only, compressed size within the file, a STORED
 * entry's size equal to its compressed size, a DEFLATE entry at most 1032x
 * (deflate's maximum ratio) its compressed size, and absolute caps on one entry
 * and on the sum of all (zip bombs). Reads check that an entry yields exactly
 * its declared size and a correct CRC (truncation, lies). Legacy (torch < 1.6)
 * files are recognised and refused with a hint to re-save them. */
#ifndef XV_IO_TORCH_ZIP_H
#define XV_IO_TORCH_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint64_t max_entry;   /* one entry's uncompressed size */
    uint64_t max_total;   /* sum of all declared uncompressed sizes */
    uint64_t max_pickle;  /* data.pkl */
    uint64_t max_ratio;   /* uncompressed / compressed for DEFLATE entries */
    uint64_t max_entries; /* number of entries */
} xv_tzip_limits;

/* 16 GiB per entry, 64 GiB in total, 256 MiB of pickle, ratio 1032, 1M entries. */
xv_tzip_limits xv_tzip_default_limits(void);

typedef struct xv_tzip xv_tzip;

/* `limits` may be NULL for the defaults. */
xv_status xv_tzip_open(const char *path, const xv_tzip_limits *limits, xv_tzip **out);
/* The same on a caller-owned buffer that must outlive the handle (tests, fuzzing). */
xv_status xv_tzip_open_memory(const void *buf, size_t len, const char *label,
                              const xv_tzip_limits *limits, xv_tzip **out);
void xv_tzip_close(xv_tzip *z);

/* <prefix>/data.pkl in a new buffer (caller frees). */
xv_status xv_tzip_read_pickle(xv_tzip *z, uint8_t **data, size_t *len);

/* Size of <prefix>/data/<key>; XV_ERR_MISSING (message naming the key) if absent. */
xv_status xv_tzip_storage_size(xv_tzip *z, const char *key, uint64_t *nbytes);
/* Read all of <prefix>/data/<key> into `dst` (nbytes must equal its size). */
xv_status xv_tzip_read_storage(xv_tzip *z, const char *key, void *dst, uint64_t nbytes);

#endif
