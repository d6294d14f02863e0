/* Restricted unpickler: see unpickle.h for what it accepts and why. */
#include "io/unpickle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/strindex.h"

/* Element types of torch.<Name>Storage. Only the first four load; the others
 * are known so that the error can say which dtype a tensor has. */
static const xv_storage_type k_storage_types[] = {
    {"FloatStorage", "float32", 4, true, XV_ST_F32},
    {"HalfStorage", "float16", 2, true, XV_ST_F16},
    {"BFloat16Storage", "bfloat16", 2, true, XV_ST_BF16},
    {"LongStorage", "int64", 8, true, XV_ST_I64},
    {"DoubleStorage", "float64", 8, false, XV_ST_F64},
    {"IntStorage", "int32", 4, false, XV_ST_I32},
    {"ShortStorage", "int16", 2, false, XV_ST_I16},
    {"CharStorage", "int8", 1, false, XV_ST_I8},
    {"ByteStorage", "uint8", 1, false, XV_ST_U8},
    {"BoolStorage", "bool", 1, false, XV_ST_BOOL},
    {"ComplexFloatStorage", "complex64", 8, false, XV_ST_F32},
    {"ComplexDoubleStorage", "complex128", 16, false, XV_ST_F64},
};

#define MAX_GLOBAL_LINE 256 /* "module\n" or "name\n" of GLOBAL */
#define MAX_STORAGE_KEY 64

xv_unpickle_limits xv_unpickle_default_limits(void) {
    xv_unpickle_limits l = {
        .max_stack = 1u << 20,
        .max_memo = 1u << 22,
        .max_marks = 1024,
        .max_depth = 64,
        .max_string = 1u << 20,
        .max_values = 1u << 22,
    };
    return l;
}

struct xv_unpickled {
    const uint8_t *data;
    size_t len, pos, op_pos; /* op_pos: offset of the opcode being executed */
    const char *label;
    xv_unpickle_limits lim;
    xv_storage_resolver resolve;
    void *resolve_user;
    bool plain; /* xv_unpickle_plain: no globals, no persistent ids */

    xv_pvalue **all; /* every value created, for freeing */
    size_t n_all, cap_all;
    xv_pvalue **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    xv_pvalue **memo;
    size_t cap_memo, n_memo_set;

    xv_pstorage **storages;
    size_t n_storages, cap_storages;
    xv_strindex storage_index; /* key -> index into storages */

    xv_pvalue *root;
};

/* ---- errors ---- */

static xv_status fail(xv_unpickled *u, xv_status code, const char *what) {
    return xv_error(code, "%s: pickle offset %zu: %s", u->label, u->op_pos, what);
}

#define FAILF(u, code, ...)                                                            \
    do {                                                                               \
        char msg_[1024];                                                               \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                      \
        return fail((u), (code), msg_);                                                \
    } while (0)

/* Printable copy of untrusted bytes for messages. */
static void printable(char *dst, size_t cap, const char *src, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 32 && c < 127) dst[j++] = (char)c;
        else j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
    }
    if (cap) dst[j < cap ? j : cap - 1] = '\0';
}

/* ---- growable arrays ---- */

static bool grow(void **arr, size_t *cap, size_t need, size_t elem, size_t limit) {
    if (need <= *cap) return true;
    if (need > limit) return false;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc = nc > limit / 2 ? limit : nc * 2;
    void *p = realloc(*arr, nc * elem);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

/* ---- values ---- */

static xv_status new_value(xv_unpickled *u, xv_pv_kind kind, xv_pvalue **out) {
    if (u->n_all >= u->lim.max_values)
        FAILF(u, XV_ERR_NOMEM, "more than %zu values: refusing to go on", u->lim.max_values);
    if (!grow((void **)&u->all, &u->cap_all, u->n_all + 1, sizeof *u->all, u->lim.max_values))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    xv_pvalue *v = calloc(1, sizeof *v);
    if (!v) return fail(u, XV_ERR_NOMEM, "out of memory");
    v->kind = kind;
    v->depth = 1;
    u->all[u->n_all++] = v;
    *out = v;
    return XV_OK;
}

static void free_value(xv_pvalue *v) {
    switch (v->kind) {
    case XV_PV_STR: free(v->u.str.s); break;
    case XV_PV_TUPLE:
    case XV_PV_LIST: free(v->u.seq.items); break;
    case XV_PV_DICT: free(v->u.dict.kv); break;
    case XV_PV_TENSOR: free((void *)v->u.tensor); break;
    default: break;
    }
    free(v);
}

const char *xv_pv_kind_name(xv_pv_kind k) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "tuple",
                                  "list", "dict", "global", "storage", "tensor"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* Record that `child` now lives inside `parent`: refuses changes to a sealed
 * container (which is what keeps the graph acyclic) and excessive depth. */
static xv_status adopt(xv_unpickled *u, xv_pvalue *parent, xv_pvalue *child) {
    if (parent->sealed)
        return fail(u, XV_ERR_FORMAT,
                    "a container is modified after it was stored in another one "
                    "(not produced by torch.save; refused to keep the value graph acyclic)");
    if (child == parent) return fail(u, XV_ERR_FORMAT, "a container is inserted into itself");
    if (child->depth + 1 > u->lim.max_depth)
        FAILF(u, XV_ERR_FORMAT, "values nested deeper than %d levels", u->lim.max_depth);
    child->sealed = true;
    if (child->depth + 1 > parent->depth) parent->depth = (uint16_t)(child->depth + 1);
    return XV_OK;
}

/* ---- stack ---- */

static xv_status push(xv_unpickled *u, xv_pvalue *v) {
    if (u->sp >= u->lim.max_stack)
        FAILF(u, XV_ERR_FORMAT, "pickle stack deeper than %zu", u->lim.max_stack);
    if (!grow((void **)&u->stack, &u->cap_stack, u->sp + 1, sizeof *u->stack, u->lim.max_stack))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    u->stack[u->sp++] = v;
    return XV_OK;
}

/* Index of the first item above the innermost MARK (which must lie above any
 * value another opcode consumed). */
static xv_status pop_mark(xv_unpickled *u, size_t *first) {
    if (u->n_marks == 0) return fail(u, XV_ERR_FORMAT, "opcode needs a MARK but none is open");
    *first = u->marks[--u->n_marks];
    return XV_OK;
}

/* As in Python, a MARK starts a fresh stack: values below the innermost open
 * MARK are out of reach until it is closed. */
static size_t stack_floor(const xv_unpickled *u) { return u->n_marks ? u->marks[u->n_marks - 1] : 0; }

/* The stack must hold `n` values above the innermost MARK (or the bottom). */
static xv_status need_stack(xv_unpickled *u, size_t n) {
    if (u->sp < stack_floor(u) + n) FAILF(u, XV_ERR_FORMAT, "stack underflow (needs %zu values)", n);
    return XV_OK;
}

/* ---- input ---- */

static xv_status need(xv_unpickled *u, size_t n) {
    if (n > u->len - u->pos)
        FAILF(u, XV_ERR_FORMAT, "truncated: opcode 0x%02x needs %zu more bytes, %zu left",
              u->data[u->op_pos], n, u->len - u->pos);
    return XV_OK;
}

static uint64_t read_le(xv_unpickled *u, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | u->data[u->pos + (size_t)i];
    u->pos += (size_t)n;
    return v;
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return false; /* names become C strings */
        if (c < 0x80) { i++; continue; }
        int extra;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) { extra = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { extra = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { extra = 3; cp = c & 0x07; }
        else return false;
        if ((size_t)extra > n - i - 1) return false;
        for (int k = 1; k <= extra; k++) {
            if ((s[i + (size_t)k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + (size_t)k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)extra + 1;
    }
    return true;
}

static xv_status push_string(xv_unpickled *u, size_t n) {
    if (n > u->lim.max_string)
        FAILF(u, XV_ERR_FORMAT, "string of %zu bytes exceeds the %zu-byte limit", n, u->lim.max_string);
    XV_TRY(need(u, n));
    if (!valid_utf8(u->data + u->pos, n)) return fail(u, XV_ERR_FORMAT, "string is not valid UTF-8 (or holds NUL)");
    xv_pvalue *v;
    XV_TRY(new_value(u, XV_PV_STR, &v));
    v->u.str.s = malloc(n + 1);
    if (!v->u.str.s) return fail(u, XV_ERR_NOMEM, "out of memory");
    memcpy(v->u.str.s, u->data + u->pos, n);
    v->u.str.s[n] = '\0';
    v->u.str.len = n;
    u->pos += n;
    return push(u, v);
}

static xv_status push_int(xv_unpickled *u, int64_t i) {
    xv_pvalue *v;
    XV_TRY(new_value(u, XV_PV_INT, &v));
    v->u.i = i;
    return push(u, v);
}

/* ---- globals ---- */

static xv_status resolve_global(xv_unpickled *u, const char *mod, size_t nm, const char *name,
                                size_t nn) {
    xv_pvalue *v;
    if (u->plain) {
        char pm[128], pn[128];
        printable(pm, sizeof pm, mod, nm);
        printable(pn, sizeof pn, name, nn);
        FAILF(u, XV_ERR_FORMAT,
              "global '%s.%s' is not allowed: a plain-data pickle may only hold dicts, lists, tuples, str, int, "
              "float, bool and None (refusing to load, nothing was executed)",
              pm, pn);
    }
#define IS(s, n, lit) ((n) == sizeof(lit) - 1 && memcmp((s), (lit), (n)) == 0)
    int which = -1;
    const xv_storage_type *st = NULL;
    if (IS(mod, nm, "collections") && IS(name, nn, "OrderedDict")) which = XV_PG_ORDERED_DICT;
    else if (IS(mod, nm, "torch._utils") && IS(name, nn, "_rebuild_tensor_v2")) which = XV_PG_REBUILD_TENSOR_V2;
    else if (IS(mod, nm, "torch._utils") && IS(name, nn, "_rebuild_parameter")) which = XV_PG_REBUILD_PARAMETER;
    else if (IS(mod, nm, "torch._utils") && IS(name, nn, "_rebuild_parameter_with_state"))
        which = XV_PG_REBUILD_PARAMETER_WITH_STATE;
    else if (IS(mod, nm, "torch")) {
        for (size_t i = 0; i < sizeof k_storage_types / sizeof *k_storage_types; i++) {
            size_t len = strlen(k_storage_types[i].torch_name);
            if (nn == len && memcmp(name, k_storage_types[i].torch_name, len) == 0) {
                which = XV_PG_STORAGE_TYPE;
                st = &k_storage_types[i];
            }
        }
    }
#undef IS
    if (which < 0) {
        /* Protocol 2 pickles name Python 3 modules by their Python 2 names. */
        static const char *py2[][2] = {{"__builtin__", "builtins"}, {"commands", "subprocess"}, {"copy_reg", "copyreg"}};
        char pm[128], pn[128], alias[160] = "";
        printable(pm, sizeof pm, mod, nm);
        printable(pn, sizeof pn, name, nn);
        for (size_t i = 0; i < sizeof py2 / sizeof *py2; i++)
            if (!strcmp(pm, py2[i][0])) snprintf(alias, sizeof alias, " (Python 3: %s.%s)", py2[i][1], pn);
        FAILF(u, XV_ERR_FORMAT,
              "global '%s.%s'%s is not allowed: a checkpoint may only reference "
              "collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and "
              "torch.*Storage (refusing to load, nothing was executed)",
              pm, pn, alias);
    }
    XV_TRY(new_value(u, XV_PV_GLOBAL, &v));
    v->u.global.which = (xv_pglobal)which;
    v->u.global.storage_type = st;
    return push(u, v);
}

/* GLOBAL: "module\nname\n" */
static xv_status op_global(xv_unpickled *u) {
    const char *parts[2];
    size_t lens[2];
    for (int k = 0; k < 2; k++) {
        const uint8_t *start = u->data + u->pos;
        size_t room = u->len - u->pos;
        size_t lim = room < MAX_GLOBAL_LINE ? room : MAX_GLOBAL_LINE;
        const uint8_t *nl = memchr(start, '\n', lim);
        if (!nl) FAILF(u, XV_ERR_FORMAT, "GLOBAL: no newline within %d bytes", MAX_GLOBAL_LINE);
        parts[k] = (const char *)start;
        lens[k] = (size_t)(nl - start);
        u->pos += lens[k] + 1;
    }
    return resolve_global(u, parts[0], lens[0], parts[1], lens[1]);
}

static xv_status op_stack_global(xv_unpickled *u) {
    XV_TRY(need_stack(u, 2));
    xv_pvalue *name = u->stack[u->sp - 1], *mod = u->stack[u->sp - 2];
    if (mod->kind != XV_PV_STR || name->kind != XV_PV_STR)
        return fail(u, XV_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    u->sp -= 2;
    return resolve_global(u, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
}

/* ---- storages (persistent ids) ---- */

static xv_status add_storage(xv_unpickled *u, xv_pstorage *s) {
    if (u->n_storages >= INT32_MAX ||
        !grow((void **)&u->storages, &u->cap_storages, u->n_storages + 1, sizeof *u->storages, INT32_MAX) ||
        !xv_strindex_put(&u->storage_index, s->key, (int32_t)u->n_storages))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    u->storages[u->n_storages++] = s;
    return XV_OK;
}

static bool valid_key(const char *k, size_t n) {
    if (n == 0 || n > MAX_STORAGE_KEY) return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return false;
    }
    return true;
}

/* BINPERSID with pid = ('storage', torch.<T>Storage, key, location, numel). */
static xv_status op_binpersid(xv_unpickled *u) {
    XV_TRY(need_stack(u, 1));
    xv_pvalue *pid = u->stack[--u->sp];
    if (pid->kind != XV_PV_TUPLE || pid->u.seq.n != 5)
        FAILF(u, XV_ERR_FORMAT, "persistent id is a %s, expected the tuple ('storage', type, key, location, numel)",
              xv_pv_kind_name(pid->kind));
    xv_pvalue **a = pid->u.seq.items;
    if (a[0]->kind != XV_PV_STR || strcmp(a[0]->u.str.s, "storage"))
        return fail(u, XV_ERR_FORMAT, "persistent id does not start with 'storage'");
    if (a[1]->kind != XV_PV_GLOBAL || a[1]->u.global.which != XV_PG_STORAGE_TYPE)
        return fail(u, XV_ERR_FORMAT, "persistent id: element 1 is not a torch.*Storage type");
    if (a[2]->kind != XV_PV_STR || !valid_key(a[2]->u.str.s, a[2]->u.str.len)) {
        char pk[96] = "?";
        if (a[2]->kind == XV_PV_STR) printable(pk, sizeof pk, a[2]->u.str.s, a[2]->u.str.len);
        FAILF(u, XV_ERR_FORMAT, "persistent id: storage key '%s' is not 1-%d letters/digits/_", pk,
              MAX_STORAGE_KEY);
    }
    if (a[3]->kind != XV_PV_STR) return fail(u, XV_ERR_FORMAT, "persistent id: location is not a string");
    if (a[4]->kind != XV_PV_INT || a[4]->u.i < 0)
        return fail(u, XV_ERR_FORMAT, "persistent id: element count is not a non-negative int");
    const xv_storage_type *type = a[1]->u.global.storage_type;
    const char *key = a[2]->u.str.s;

    int32_t found = xv_strindex_get(&u->storage_index, key);
    xv_pstorage *s = found >= 0 ? u->storages[found] : NULL;
    if (!s) {
        uint64_t nbytes = 0;
        xv_status st = u->resolve ? u->resolve(u->resolve_user, key, &nbytes)
                                  : xv_error(XV_ERR_MISSING, "no storage resolver");
        if (st != XV_OK) return xv_error_wrap(st, "%s: pickle offset %zu", u->label, u->op_pos);
        s = calloc(1, sizeof *s);
        char *k = s ? strdup(key) : NULL;
        if (!k) {
            free(s);
            return fail(u, XV_ERR_NOMEM, "out of memory");
        }
        s->key = k;
        s->nbytes = nbytes;
        xv_status as = add_storage(u, s);
        if (as != XV_OK) {
            free(k);
            free(s);
            return as;
        }
    }
    uint64_t want;
    if (__builtin_mul_overflow((uint64_t)a[4]->u.i, (uint64_t)type->elem_size, &want) || want != s->nbytes)
        FAILF(u, XV_ERR_FORMAT, "storage '%s' is declared as %" PRId64 " x %s (%d bytes each) but its archive entry has %" PRIu64 " bytes",
              key, a[4]->u.i, type->dtype_name, type->elem_size, s->nbytes);
    xv_pvalue *v;
    XV_TRY(new_value(u, XV_PV_STORAGE, &v));
    v->u.storage.s = s;
    v->u.storage.type = type;
    return push(u, v);
}

/* ---- REDUCE: the allowlisted callables ---- */

static xv_status int_tuple(xv_unpickled *u, const xv_pvalue *t, const char *what, int64_t *out, int *n) {
    if (t->kind != XV_PV_TUPLE) FAILF(u, XV_ERR_FORMAT, "tensor %s is a %s, expected a tuple", what, xv_pv_kind_name(t->kind));
    if (t->u.seq.n > XV_ST_MAX_DIMS)
        FAILF(u, XV_ERR_UNSUPPORTED, "tensor has %zu dimensions, at most %d are supported", t->u.seq.n, XV_ST_MAX_DIMS);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const xv_pvalue *e = t->u.seq.items[i];
        if (e->kind != XV_PV_INT || e->u.i < 0)
            FAILF(u, XV_ERR_FORMAT, "tensor %s[%zu] is not a non-negative int", what, i);
        out[i] = e->u.i;
    }
    *n = (int)t->u.seq.n;
    return XV_OK;
}

static void fmt_dims(char *buf, size_t cap, const int64_t *d, int n) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%" PRId64, i ? "," : "", d[i]);
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static xv_status rebuild_tensor(xv_unpickled *u, const xv_pvalue *args, xv_pvalue **out) {
    size_t n = args->u.seq.n;
    xv_pvalue **a = args->u.seq.items;
    if (n != 6 && n != 7) FAILF(u, XV_ERR_FORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n);
    if (a[0]->kind != XV_PV_STORAGE) return fail(u, XV_ERR_FORMAT, "_rebuild_tensor_v2: argument 0 is not a storage");
    if (a[1]->kind != XV_PV_INT || a[1]->u.i < 0)
        return fail(u, XV_ERR_FORMAT, "_rebuild_tensor_v2: storage offset is not a non-negative int");
    if (a[4]->kind != XV_PV_BOOL) return fail(u, XV_ERR_FORMAT, "_rebuild_tensor_v2: requires_grad is not a bool");
    if (a[5]->kind != XV_PV_DICT) return fail(u, XV_ERR_FORMAT, "_rebuild_tensor_v2: backward hooks are not a dict");
    xv_ptensor *t = calloc(1, sizeof *t);
    if (!t) return fail(u, XV_ERR_NOMEM, "out of memory");
    xv_pvalue *v;
    xv_status st = new_value(u, XV_PV_TENSOR, &v);
    if (st != XV_OK) {
        free(t);
        return st;
    }
    v->u.tensor = t;
    *out = v;

    const xv_pstorage *s = a[0]->u.storage.s;
    t->storage = s;
    t->type = a[0]->u.storage.type;
    t->offset = a[1]->u.i;
    int nstride;
    XV_TRY(int_tuple(u, a[2], "size", t->shape, &t->ndim));
    XV_TRY(int_tuple(u, a[3], "stride", t->stride, &nstride));
    if (nstride != t->ndim) FAILF(u, XV_ERR_FORMAT, "tensor has %d sizes but %d strides", t->ndim, nstride);
    if (!t->type->supported)
        FAILF(u, XV_ERR_UNSUPPORTED, "tensor on storage '%s' has dtype %s (torch.%s): only float32, float16, bfloat16 and int64 tensors are supported",
              s->key, t->type->dtype_name, t->type->torch_name);

    /* Bounds: every element offset + sum (size_i - 1) * stride_i must index the
     * storage; all arithmetic overflow-checked. */
    int64_t elems = (int64_t)(s->nbytes / (uint64_t)t->type->elem_size);
    int64_t numel = 1, last = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (__builtin_mul_overflow(numel, t->shape[i], &numel) || numel > INT64_MAX / 16)
            return fail(u, XV_ERR_FORMAT, "tensor element count overflows");
        int64_t span;
        if (t->shape[i] > 0 &&
            (__builtin_mul_overflow(t->shape[i] - 1, t->stride[i], &span) || __builtin_add_overflow(last, span, &last)))
            return fail(u, XV_ERR_FORMAT, "tensor extent overflows (size/stride too large)");
    }
    t->numel = numel;
    if (numel > 0 ? last >= elems : t->offset > elems) {
        char shp[128], strd[128];
        fmt_dims(shp, sizeof shp, t->shape, t->ndim);
        fmt_dims(strd, sizeof strd, t->stride, t->ndim);
        FAILF(u, XV_ERR_FORMAT, "tensor (size [%s], stride [%s], offset %" PRId64 ") reaches past the end of storage '%s' (%" PRId64 " elements)",
              shp, strd, t->offset, s->key, elems);
    }
    return XV_OK;
}

static xv_status op_reduce(xv_unpickled *u) {
    XV_TRY(need_stack(u, 2));
    xv_pvalue *args = u->stack[u->sp - 1], *fn = u->stack[u->sp - 2];
    u->sp -= 2;
    if (fn->kind != XV_PV_GLOBAL)
        FAILF(u, XV_ERR_FORMAT, "REDUCE applies a %s: only allowlisted callables can be applied", xv_pv_kind_name(fn->kind));
    if (args->kind != XV_PV_TUPLE) return fail(u, XV_ERR_FORMAT, "REDUCE arguments are not a tuple");
    size_t n = args->u.seq.n;
    xv_pvalue **a = args->u.seq.items;
    xv_pvalue *v = NULL;
    switch (fn->u.global.which) {
    case XV_PG_ORDERED_DICT:
        if (n != 0) return fail(u, XV_ERR_FORMAT, "OrderedDict() with arguments is not supported");
        XV_TRY(new_value(u, XV_PV_DICT, &v));
        break;
    case XV_PG_REBUILD_TENSOR_V2: XV_TRY(rebuild_tensor(u, args, &v)); break;
    case XV_PG_REBUILD_PARAMETER:
    case XV_PG_REBUILD_PARAMETER_WITH_STATE: {
        size_t want = fn->u.global.which == XV_PG_REBUILD_PARAMETER ? 3 : 4;
        if (n != want || a[0]->kind != XV_PV_TENSOR)
            FAILF(u, XV_ERR_FORMAT, "_rebuild_parameter expects (tensor, requires_grad, hooks%s)",
                  want == 4 ? ", state" : "");
        v = a[0]; /* a parameter is its tensor */
        break;
    }
    case XV_PG_STORAGE_TYPE: return fail(u, XV_ERR_FORMAT, "a storage type cannot be called");
    }
    return push(u, v);
}

/* ---- containers ---- */

static xv_status make_tuple(xv_unpickled *u, size_t first) {
    size_t n = u->sp - first;
    xv_pvalue *t;
    XV_TRY(new_value(u, XV_PV_TUPLE, &t));
    if (n) {
        t->u.seq.items = malloc(n * sizeof *t->u.seq.items);
        if (!t->u.seq.items) return fail(u, XV_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            XV_TRY(adopt(u, t, u->stack[first + i]));
            t->u.seq.items[i] = u->stack[first + i];
        }
    }
    t->u.seq.n = t->u.seq.cap = n;
    u->sp = first;
    return push(u, t);
}

/* Append stack[first..sp) to the list at stack[first - 1]. */
static xv_status list_append(xv_unpickled *u, size_t first) {
    if (first < stack_floor(u) + 1) return fail(u, XV_ERR_FORMAT, "APPEND without a list");
    xv_pvalue *l = u->stack[first - 1];
    if (l->kind != XV_PV_LIST) FAILF(u, XV_ERR_FORMAT, "APPEND to a %s", xv_pv_kind_name(l->kind));
    size_t n = u->sp - first;
    if (!grow((void **)&l->u.seq.items, &l->u.seq.cap, l->u.seq.n + n, sizeof *l->u.seq.items, SIZE_MAX / 16))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        XV_TRY(adopt(u, l, u->stack[first + i]));
        l->u.seq.items[l->u.seq.n++] = u->stack[first + i];
    }
    u->sp = first;
    return XV_OK;
}

/* Store the pairs stack[first..sp) into the dict at stack[first - 1]. */
static xv_status dict_set(xv_unpickled *u, size_t first) {
    if (first < stack_floor(u) + 1) return fail(u, XV_ERR_FORMAT, "SETITEM without a dict");
    xv_pvalue *d = u->stack[first - 1];
    if (d->kind != XV_PV_DICT) FAILF(u, XV_ERR_FORMAT, "SETITEM on a %s", xv_pv_kind_name(d->kind));
    size_t n = u->sp - first;
    if (n % 2) return fail(u, XV_ERR_FORMAT, "SETITEMS with an odd number of values");
    if (!grow((void **)&d->u.dict.kv, &d->u.dict.cap, 2 * d->u.dict.n + n, sizeof *d->u.dict.kv, SIZE_MAX / 16))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        XV_TRY(adopt(u, d, u->stack[first + i]));
        d->u.dict.kv[2 * d->u.dict.n + i] = u->stack[first + i];
    }
    d->u.dict.n += n / 2;
    u->sp = first;
    return XV_OK;
}

/* BUILD sets an object's state: torch.save uses it for a state_dict's
 * `_metadata` (module versions) and nothing we need, so the state is dropped. */
static xv_status op_build(xv_unpickled *u) {
    XV_TRY(need_stack(u, 2));
    xv_pvalue *obj = u->stack[u->sp - 2];
    if (obj->kind != XV_PV_DICT && obj->kind != XV_PV_TENSOR)
        FAILF(u, XV_ERR_FORMAT, "BUILD on a %s", xv_pv_kind_name(obj->kind));
    u->sp -= 1;
    return XV_OK;
}

/* ---- memo ---- */

static xv_status memo_put(xv_unpickled *u, uint64_t idx) {
    XV_TRY(need_stack(u, 1));
    if (idx >= u->lim.max_memo) FAILF(u, XV_ERR_FORMAT, "memo index %" PRIu64 " exceeds the limit %zu", idx, u->lim.max_memo);
    size_t old = u->cap_memo;
    if (!grow((void **)&u->memo, &u->cap_memo, (size_t)idx + 1, sizeof *u->memo, u->lim.max_memo))
        return fail(u, XV_ERR_NOMEM, "out of memory");
    if (u->cap_memo > old) memset(u->memo + old, 0, (u->cap_memo - old) * sizeof *u->memo);
    if (!u->memo[idx]) u->n_memo_set++;
    u->memo[idx] = u->stack[u->sp - 1];
    return XV_OK;
}

static xv_status memo_get(xv_unpickled *u, uint64_t idx) {
    if (idx >= u->cap_memo || !u->memo[idx]) FAILF(u, XV_ERR_FORMAT, "memo index %" PRIu64 " was never set", idx);
    return push(u, u->memo[idx]);
}

/* ---- the machine ---- */

static xv_status run(xv_unpickled *u) {
    while (u->pos < u->len) {
        u->op_pos = u->pos;
        uint8_t op = u->data[u->pos++];
        xv_pvalue *v;
        size_t first = 0;
        switch (op) {
        case 0x80: /* PROTO */
            XV_TRY(need(u, 1));
            if (u->data[u->pos] > 5) FAILF(u, XV_ERR_UNSUPPORTED, "pickle protocol %d", u->data[u->pos]);
            u->pos++;
            break;
        case 0x95: /* FRAME: a length hint only */
            XV_TRY(need(u, 8));
            u->pos += 8;
            break;
        case '.': /* STOP */
            XV_TRY(need_stack(u, 1));
            u->root = u->stack[--u->sp];
            return XV_OK;
        case '(': /* MARK */
            if (u->n_marks >= u->lim.max_marks) FAILF(u, XV_ERR_FORMAT, "more than %zu nested MARKs", u->lim.max_marks);
            if (!grow((void **)&u->marks, &u->cap_marks, u->n_marks + 1, sizeof *u->marks, u->lim.max_marks))
                return fail(u, XV_ERR_NOMEM, "out of memory");
            u->marks[u->n_marks++] = u->sp;
            break;
        case '}': XV_TRY(new_value(u, XV_PV_DICT, &v)); XV_TRY(push(u, v)); break;
        case ']': XV_TRY(new_value(u, XV_PV_LIST, &v)); XV_TRY(push(u, v)); break;
        case ')': XV_TRY(new_value(u, XV_PV_TUPLE, &v)); XV_TRY(push(u, v)); break;
        case 't': XV_TRY(pop_mark(u, &first)); XV_TRY(make_tuple(u, first)); break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = (size_t)(op - 0x84);
            XV_TRY(need_stack(u, n));
            XV_TRY(make_tuple(u, u->sp - n));
            break;
        }
        case 'a': XV_TRY(need_stack(u, 2)); XV_TRY(list_append(u, u->sp - 1)); break;
        case 'e': XV_TRY(pop_mark(u, &first)); XV_TRY(list_append(u, first)); break;
        case 's': XV_TRY(need_stack(u, 3)); XV_TRY(dict_set(u, u->sp - 2)); break;
        case 'u': XV_TRY(pop_mark(u, &first)); XV_TRY(dict_set(u, first)); break;
        case 'X': XV_TRY(need(u, 4)); XV_TRY(push_string(u, (size_t)read_le(u, 4))); break;
        case 0x8c: XV_TRY(need(u, 1)); XV_TRY(push_string(u, (size_t)read_le(u, 1))); break;
        case 'J': XV_TRY(need(u, 4)); XV_TRY(push_int(u, (int32_t)(uint32_t)read_le(u, 4))); break;
        case 'K': XV_TRY(need(u, 1)); XV_TRY(push_int(u, (int64_t)read_le(u, 1))); break;
        case 'M': XV_TRY(need(u, 2)); XV_TRY(push_int(u, (int64_t)read_le(u, 2))); break;
        case 0x8a: { /* LONG1: n-byte little-endian two's complement */
            XV_TRY(need(u, 1));
            int n = (int)read_le(u, 1);
            if (n > 8) FAILF(u, XV_ERR_UNSUPPORTED, "integer of %d bytes does not fit in 64 bits", n);
            XV_TRY(need(u, (size_t)n));
            uint64_t raw = read_le(u, n);
            if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            XV_TRY(push_int(u, (int64_t)raw));
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            XV_TRY(need(u, 8));
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = (bits << 8) | u->data[u->pos++];
            XV_TRY(new_value(u, XV_PV_FLOAT, &v));
            memcpy(&v->u.f, &bits, 8);
            XV_TRY(push(u, v));
            break;
        }
        case 0x88: case 0x89:
            XV_TRY(new_value(u, XV_PV_BOOL, &v));
            v->u.b = op == 0x88;
            XV_TRY(push(u, v));
            break;
        case 'N': XV_TRY(new_value(u, XV_PV_NONE, &v)); XV_TRY(push(u, v)); break;
        case 'q': XV_TRY(need(u, 1)); XV_TRY(memo_put(u, read_le(u, 1))); break;
        case 'r': XV_TRY(need(u, 4)); XV_TRY(memo_put(u, read_le(u, 4))); break;
        case 0x94: XV_TRY(memo_put(u, u->n_memo_set)); break; /* MEMOIZE */
        case 'h': XV_TRY(need(u, 1)); XV_TRY(memo_get(u, read_le(u, 1))); break;
        case 'j': XV_TRY(need(u, 4)); XV_TRY(memo_get(u, read_le(u, 4))); break;
        case 'c': XV_TRY(op_global(u)); break;
        case 0x93: XV_TRY(op_stack_global(u)); break;
        case 'R': XV_TRY(op_reduce(u)); break;
        case 'b': XV_TRY(op_build(u)); break;
        case 'Q':
            if (u->plain) return fail(u, XV_ERR_FORMAT, "a persistent id (BINPERSID) in a plain-data pickle");
            XV_TRY(op_binpersid(u));
            break;
        /* Python 2 byte strings (protocol 2 files written by Python 2), which
         * Python 3 reads as str: only in plain-data pickles. */
        case 'U': case 'T':
            if (!u->plain) goto unsupported;
            XV_TRY(need(u, op == 'U' ? 1 : 4));
            XV_TRY(push_string(u, (size_t)read_le(u, op == 'U' ? 1 : 4)));
            break;
        default:
        unsupported:
            FAILF(u, XV_ERR_UNSUPPORTED, "opcode 0x%02x ('%c') is not one a %s uses", op,
                  op >= 32 && op < 127 ? op : '?', u->plain ? "plain-data pickle" : "tensor checkpoint");
        }
    }
    u->op_pos = u->pos;
    return fail(u, XV_ERR_FORMAT, "truncated: the pickle ends without a STOP opcode");
}

static xv_status unpickle(const uint8_t *data, size_t len, const char *label, const xv_unpickle_limits *limits,
                          xv_storage_resolver resolve, void *resolve_user, bool plain, xv_unpickled **out) {
    *out = NULL;
    xv_unpickled *u = calloc(1, sizeof *u);
    if (!u) return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    u->data = data;
    u->len = data ? len : 0;
    u->label = label ? label : "pickle";
    u->lim = limits ? *limits : xv_unpickle_default_limits();
    if (u->lim.max_depth > 60000) u->lim.max_depth = 60000; /* depth is a uint16_t */
    u->resolve = resolve;
    u->resolve_user = resolve_user;
    u->plain = plain;
    xv_status st = run(u);
    /* The parse state is not needed after STOP. */
    free(u->stack), u->stack = NULL;
    free(u->marks), u->marks = NULL;
    free(u->memo), u->memo = NULL;
    xv_strindex_free(&u->storage_index);
    u->data = NULL;
    u->label = NULL;
    if (st != XV_OK) {
        xv_unpickled_free(u);
        return st;
    }
    *out = u;
    return XV_OK;
}

xv_status xv_unpickle(const uint8_t *data, size_t len, const char *label, const xv_unpickle_limits *limits,
                      xv_storage_resolver resolve, void *resolve_user, xv_unpickled **out) {
    return unpickle(data, len, label, limits, resolve, resolve_user, false, out);
}

xv_unpickle_limits xv_unpickle_plain_limits(void) {
    xv_unpickle_limits l = xv_unpickle_default_limits();
    l.max_memo = l.max_values = 1u << 26; /* refs(unc).p of RefCOCO+: about 3 million values */
    return l;
}

xv_status xv_unpickle_plain(const uint8_t *data, size_t len, const char *label, const xv_unpickle_limits *limits,
                            xv_unpickled **out) {
    xv_unpickle_limits l = limits ? *limits : xv_unpickle_plain_limits();
    return unpickle(data, len, label, &l, NULL, NULL, true, out);
}

void xv_unpickled_free(xv_unpickled *u) {
    if (!u) return;
    for (size_t i = 0; i < u->n_all; i++) free_value(u->all[i]);
    free(u->all);
    for (size_t i = 0; i < u->n_storages; i++) {
        free((void *)u->storages[i]->key);
        free(u->storages[i]);
    }
    free(u->storages);
    free(u->stack);
    free(u->marks);
    free(u->memo);
    xv_strindex_free(&u->storage_index);
    free(u);
}

const xv_pvalue *xv_unpickled_root(const xv_unpickled *u) { return u->root; }
size_t xv_unpickled_storage_count(const xv_unpickled *u) { return u->n_storages; }
const xv_pstorage *xv_unpickled_storage(const xv_unpickled *u, size_t i) {
    return i < u->n_storages ? u->storages[i] : NULL;
}

const xv_pvalue *xv_pdict_get(const xv_pvalue *d, const char *key) {
    if (!d || d->kind != XV_PV_DICT) return NULL;
    for (size_t i = d->u.dict.n; i-- > 0;) {
        const xv_pvalue *k = d->u.dict.kv[2 * i];
        if (k->kind == XV_PV_STR && !strcmp(k->u.str.s, key)) return d->u.dict.kv[2 * i + 1];
    }
    return NULL;
}
