#include "model/precision.h"

#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "ops/gemm.h"

const char *xv_precision_name(xv_precision p) { return p == XV_PRECISION_BF16 ? "bf16" : "fp32"; }

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Embedding tables (word, position, token type) are read by row, never
 * multiplied; Swin's patch projection is a 4-D convolution weight. */
static bool is_linear_weight(const xv_tensor *t) {
    return t->ndim == 2 && ends_with(t->name, ".weight") && !strstr(t->name, "embeddings.");
}

static void drop_bf16(xv_params *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->items[i]->bf16);
        p->items[i]->bf16 = NULL;
    }
}

xv_status xv_params_set_precision(xv_params *p, xv_precision prec) {
    if (prec == XV_PRECISION_FP32) {
        drop_bf16(p);
        return XV_OK;
    }
    XV_TRY(xv_gemm_bf16_ready());
    for (int i = 0; i < p->n; i++) {
        xv_tensor *t = p->items[i];
        if (!is_linear_weight(t) || t->bf16) continue;
        t->bf16 = malloc(sizeof(uint16_t) * (size_t)t->numel);
        if (!t->bf16) {
            drop_bf16(p);
            return xv_error(XV_ERR_NOMEM, "out of memory for the bf16 copy of '%s' (%lld values)", t->name,
                            (long long)t->numel);
        }
        xv_f32_to_bf16_n(t->data, t->bf16, (size_t)t->numel);
    }
    return XV_OK;
}

int xv_params_bf16_count(const xv_params *p) {
    int n = 0;
    for (int i = 0; i < p->n; i++) n += p->items[i]->bf16 != NULL;
    return n;
}
