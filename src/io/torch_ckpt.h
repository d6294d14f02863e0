/* PyTorch checkpoints (torch.save, torch >= 1.6) as a list of named tensors,
 * without Python and without running anything from the file.
 *
 * The tensors are checkpoint['model'] when the top-level object is a dict with a
 * 'model' entry (how the official X-VLM scripts save), otherwise the top-level
 * dict itself (a bare state_dict). checkpoint['config'], when it is a dict, is
 * offered as JSON (plain values only). Tensor data is read lazily, each storage
 * once: a contiguous tensor points into its storage, a non-contiguous one
 * (a transposed view saved as is, an expanded one) is copied out row-major. */
#ifndef XV_IO_TORCH_CKPT_H
#define XV_IO_TORCH_CKPT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h" /* xv_st_dtype, XV_ST_MAX_DIMS */
#include "core/error.h"

typedef struct {
    const char *name;
    xv_st_dtype dtype; /* F32, F16, BF16 or I64 */
    int ndim;
    int64_t shape[XV_ST_MAX_DIMS];
    int64_t stride[XV_ST_MAX_DIMS]; /* elements, as saved */
    int64_t storage_offset;         /* elements */
    int64_t numel;
    size_t nbytes;                  /* numel * element size */
    bool contiguous;                /* row-major: no copy needed */
    const char *storage_key;        /* archive entry data/<key> */
} xv_tc_tensor;

typedef struct xv_tc_file xv_tc_file;

xv_status xv_tc_open(const char *path, xv_tc_file **out);
/* On a caller-owned buffer that must outlive the handle (tests, fuzzing). */
xv_status xv_tc_open_memory(const void *buf, size_t len, const char *label, xv_tc_file **out);
void xv_tc_close(xv_tc_file *f);

int xv_tc_count(const xv_tc_file *f);
const xv_tc_tensor *xv_tc_at(const xv_tc_file *f, int i); /* in file order */
const xv_tc_tensor *xv_tc_find(const xv_tc_file *f, const char *name);
/* checkpoint['config'] as a JSON object, or NULL when there is none. Entries
 * that are not plain values (str, int, float, bool, None, list, tuple, dict)
 * are left out. Owned by `f`. */
const cJSON *xv_tc_config(const xv_tc_file *f);

/* Row-major data of `t` (nbytes bytes, native little-endian), valid until
 * xv_tc_close. Storages are read on first use and kept; non-contiguous tensors
 * are copied once. */
xv_status xv_tc_data(xv_tc_file *f, const xv_tc_tensor *t, const void **data);

#endif
