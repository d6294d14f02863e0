/* Fuzz target: parse arbitrary bytes as a safetensors file, then read every
 * tensor out. Besides sanitizer findings, it traps when an accepted file breaks
 * the reader's promises (tensor bytes inside the buffer, names findable). */
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xv_st_file *f = NULL;
    if (xv_st_open_memory(data, size, "fuzz", &f) != XV_OK) return 0;
    for (int i = 0; i < xv_st_count(f); i++) {
        const xv_st_tensor *t = xv_st_at(f, i);
        const uint8_t *p = t->data;
        if (t->nbytes > size || p < data || p + t->nbytes > data + size ||
            t->nbytes != (size_t)t->numel * xv_st_dtype_size(t->dtype) || xv_st_find(f, t->name) != t)
            __builtin_trap();
        if (i > 0 && (const uint8_t *)xv_st_at(f, i - 1)->data + xv_st_at(f, i - 1)->nbytes > p)
            __builtin_trap(); /* accepted overlapping tensors */
        /* numel <= nbytes <= size, so this allocation is bounded by the input */
        void *out = malloc((size_t)t->numel * 4 + 1);
        if (!out) break;
        bool is_float = t->dtype == XV_ST_F32 || t->dtype == XV_ST_F16 || t->dtype == XV_ST_BF16 ||
                        t->dtype == XV_ST_F64;
        xv_status st = is_float ? xv_st_read_f32(f, t, out) : xv_st_read_i32(f, t, out);
        (void)st; /* out-of-range values are refused, which is fine */
        free(out);
    }
    (void)xv_st_metadata(f, "format");
    xv_st_close(f);
    return 0;
}
