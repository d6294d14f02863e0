/* safetensors files: read (mmap, read-only, fully validated before use) and
 * write (atomically: temp file, fsync, rename).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"k": "v"}}, then the data section; offsets are relative to it. */
#ifndef XV_IO_SAFETENSORS_H
#define XV_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define XV_ST_MAX_DIMS 8

typedef enum {
    XV_ST_F32, XV_ST_F16, XV_ST_BF16, XV_ST_F64,
    XV_ST_I64, XV_ST_I32, XV_ST_I16, XV_ST_I8, XV_ST_U8, XV_ST_BOOL
} xv_st_dtype;

typedef struct {
    char *name;
    xv_st_dtype dtype;
    int ndim;
    int64_t shape[XV_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* points into the mapping; nbytes = numel · dtype size. May be
                       * unaligned in files from other writers: use xv_st_read_* or memcpy. */
    size_t nbytes;
} xv_st_tensor;

typedef struct xv_st_file xv_st_file;

/* Map and validate `path`: header length cap (100 MB) and bounds, UTF-8 JSON
 * object (only spaces may follow it), known dtypes, shapes of rank <= 8 with
 * integer dims < 2^53 and no overflow, offsets inside the data section,
 * non-overlapping, byte size = numel · dtype size, no duplicate names,
 * __metadata__ string -> string. As strict as the reference reader: the header starts with '{', shapes and
 * offsets are integers written as such, the tensors are contiguous from byte 0
 * of the data section to the end of the file (no gap, overlap or trailing byte).
 * Errors name the file and the entry (XV_ERR_FORMAT; XV_ERR_MISSING when the
 * file does not exist). */
xv_status xv_st_open(const char *path, xv_st_file **out);
/* Same on a caller-owned buffer (not copied; for fuzzing and tests). */
xv_status xv_st_open_memory(const void *buf, size_t len, const char *label, xv_st_file **out);
void xv_st_close(xv_st_file *f);

int xv_st_count(const xv_st_file *f);
const xv_st_tensor *xv_st_at(const xv_st_file *f, int i);   /* in file order of offsets */
const xv_st_tensor *xv_st_find(const xv_st_file *f, const char *name); /* NULL if absent */
const char *xv_st_metadata(const xv_st_file *f, const char *key);      /* NULL if absent */
const char *xv_st_path(const xv_st_file *f);
/* The __metadata__ entries, sorted by key (for listing them). */
int xv_st_metadata_count(const xv_st_file *f);
void xv_st_metadata_at(const xv_st_file *f, int i, const char **key, const char **value);
/* Where a tensor's bytes start in the data section (its data_offsets begin). */
uint64_t xv_st_offset(const xv_st_file *f, const xv_st_tensor *t);
size_t xv_st_dtype_size(xv_st_dtype dt);
const char *xv_st_dtype_name(xv_st_dtype dt);

/* Copy a tensor to F32 (converting F16/BF16 exactly, F64 rounded; a finite F64
 * beyond float's range is refused); `out` holds numel floats. Integer dtypes
 * are refused. `t` must come from `f`. */
xv_status xv_st_read_f32(const xv_st_file *f, const xv_st_tensor *t, float *out);
/* Copy an integer tensor (I64/I32/I16/I8/U8/BOOL) to int32, refusing values
 * outside int32's range and BOOL bytes other than 0/1, naming the tensor. */
xv_status xv_st_read_i32(const xv_st_file *f, const xv_st_tensor *t, int32_t *out);

/* ---- writing ----
 * Deterministic output: header entries sorted by name (metadata first, keys
 * sorted), data ordered by (dtype size descending, name) so every tensor is
 * aligned to its element size with no gaps (as the reference loader requires),
 * header padded with spaces to a multiple of 8. */
typedef struct xv_st_writer xv_st_writer;
xv_status xv_st_writer_new(xv_st_writer **out);
/* Add a tensor (data copied unless `borrow`, then it must stay valid until write).
 * Names must be unique and not "__metadata__"; data may be NULL when empty. */
xv_status xv_st_writer_add(xv_st_writer *w, const char *name, xv_st_dtype dt, const int64_t *shape,
                           int ndim, const void *data, bool borrow);
/* Add a tensor whose bytes are the concatenation of borrowed pieces (each must
 * stay valid until write), e.g. rows gathered from several mapped files without
 * copying them into one buffer. The pieces must add up to the shape's size. */
xv_status xv_st_writer_add_parts(xv_st_writer *w, const char *name, xv_st_dtype dt, const int64_t *shape,
                                 int ndim, const void *const *parts, const size_t *part_bytes, int nparts);
/* Set a __metadata__ entry; a key may be set once. */
xv_status xv_st_writer_meta(xv_st_writer *w, const char *key, const char *value);
/* Write to `path` atomically (path.tmp, fsync, rename, fsync dir). On failure
 * path.tmp is removed and an existing file at `path` is untouched. The writer
 * stays usable (write again, or free). */
xv_status xv_st_writer_write(xv_st_writer *w, const char *path);
/* The same bytes into a malloc'd buffer (*buf, *len; the caller frees it). */
xv_status xv_st_writer_to_memory(xv_st_writer *w, void **buf, size_t *len);
void xv_st_writer_free(xv_st_writer *w);

#endif
