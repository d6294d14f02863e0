/* Fuzz target: arbitrary bytes as a PyTorch checkpoint (zip archive + pickle)
 * through xv_tc_open_memory, then every tensor's data read out. Traps when an
 * accepted checkpoint breaks the reader's promises (byte sizes consistent,
 * names findable); out-of-bounds reads are the sanitizers' to catch. */
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/torch_ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xv_tc_file *f = NULL;
    if (xv_tc_open_memory(data, size, "fuzz", &f) != XV_OK) return 0;
    for (int i = 0; i < xv_tc_count(f); i++) {
        const xv_tc_tensor *t = xv_tc_at(f, i);
        if (xv_tc_find(f, t->name) != t || t->nbytes != (size_t)t->numel * xv_st_dtype_size(t->dtype))
            __builtin_trap();
        const void *d;
        if (xv_tc_data(f, t, &d) != XV_OK) continue; /* e.g. a damaged storage entry */
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const uint8_t *)d)[k];
        (void)sink;
    }
    char *cfg = xv_tc_config(f) ? cJSON_PrintUnformatted(xv_tc_config(f)) : NULL;
    cJSON_free(cfg);
    xv_tc_close(f);
    return 0;
}
