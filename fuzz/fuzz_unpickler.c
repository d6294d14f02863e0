/* Fuzz target: arbitrary bytes as a checkpoint's data.pkl through the
 * restricted unpickler. Storages "0".."9" exist (64·(k+1) bytes), others do
 * not. Besides sanitizer findings it traps when an accepted pickle breaks the
 * unpickler's promises: an acyclic value graph whose recorded depths decrease
 * towards the leaves, and tensors that lie inside their storage. */
#include <stdlib.h>
#include <string.h>

#include "io/unpickle.h"

static xv_status resolve(void *ctx, const char *key, uint64_t *nbytes) {
    (void)ctx;
    if (key[0] >= '0' && key[0] <= '9' && key[1] == '\0') {
        *nbytes = 64u * (uint64_t)(key[0] - '0' + 1);
        return XV_OK;
    }
    return XV_ERR_MISSING;
}

static void check_tensor(const xv_ptensor *t) {
    __int128 elems = (__int128)(t->storage->nbytes / (uint64_t)t->type->elem_size), last = t->offset, numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || t->stride[i] < 0) __builtin_trap();
        numel *= t->shape[i];
        if (t->shape[i] > 0) last += (__int128)(t->shape[i] - 1) * t->stride[i];
    }
    if (numel != t->numel) __builtin_trap();
    if (numel > 0 && last >= elems) __builtin_trap();
}

/* Visit with a budget: shared children (memo) could make a full walk exponential. */
static void walk(const xv_pvalue *v, long *budget) {
    if (--*budget < 0) return;
    size_t n = 0;
    xv_pvalue *const *kids = NULL;
    if (v->kind == XV_PV_TUPLE || v->kind == XV_PV_LIST) n = v->u.seq.n, kids = v->u.seq.items;
    else if (v->kind == XV_PV_DICT) n = 2 * v->u.dict.n, kids = v->u.dict.kv;
    else if (v->kind == XV_PV_TENSOR) check_tensor(v->u.tensor);
    else if (v->kind == XV_PV_STR && strlen(v->u.str.s) != v->u.str.len) __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        if (kids[i]->depth >= v->depth) __builtin_trap(); /* would allow a cycle */
        walk(kids[i], budget);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xv_unpickle_limits lim = xv_unpickle_default_limits();
    lim.max_values = 1u << 18; /* keep each run small; the caps themselves are unit-tested */
    lim.max_stack = 1u << 16;
    lim.max_memo = 1u << 16;
    /* both modes: tensor checkpoints and plain data (REFER's refs(unc).p) */
    for (int plain = 0; plain < 2; plain++) {
        xv_unpickled *u = NULL;
        xv_status st = plain ? xv_unpickle_plain(data, size, "fuzz", &lim, &u)
                             : xv_unpickle(data, size, "fuzz", &lim, resolve, NULL, &u);
        if (st != XV_OK) continue;
        long budget = 1 << 20;
        walk(xv_unpickled_root(u), &budget);
        (void)xv_pdict_get(xv_unpickled_root(u), "model");
        xv_unpickled_free(u);
    }
    return 0;
}
