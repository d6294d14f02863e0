/* A restricted unpickler for PyTorch checkpoints (torch.save's data.pkl).
 *
 * It understands the opcodes pickle protocols 2-5 use for a dict of tensors
 * (plus plain config values), builds a tree of values, and never calls
 * anything: GLOBAL/STACK_GLOBAL are checked against a fixed allowlist
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter[_with_state], torch.<Type>Storage) and
 * REDUCE only "applies" those few, by building the equivalent value.
 * Everything else is refused with an error naming the global or opcode.
 *
 * Safety: every read is bounds-checked; the stack, memo, mark stack, string
 * lengths, value count and nesting depth are capped; a container can no longer
 * change once it was put into another one, so the value graph is acyclic and its
 * depth is known at construction (walks can recurse without blowing the stack).
 * Tensor sizes, strides and offsets are checked (overflow-safe) against the
 * byte size of their storage, which a caller-supplied resolver reports. */
#ifndef XV_IO_UNPICKLE_H
#define XV_IO_UNPICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h" /* xv_st_dtype, XV_ST_MAX_DIMS */
#include "core/error.h"

typedef enum {
    XV_PV_NONE,
    XV_PV_BOOL,
    XV_PV_INT,
    XV_PV_FLOAT,
    XV_PV_STR,
    XV_PV_TUPLE,
    XV_PV_LIST,
    XV_PV_DICT,    /* dict or collections.OrderedDict: pairs in insertion order */
    XV_PV_GLOBAL,  /* an allowlisted callable or storage type (see xv_pglobal) */
    XV_PV_STORAGE, /* a persistent id ('storage', type, key, location, numel) */
    XV_PV_TENSOR
} xv_pv_kind;

/* The allowlisted globals. */
typedef enum {
    XV_PG_ORDERED_DICT,
    XV_PG_REBUILD_TENSOR_V2,
    XV_PG_REBUILD_PARAMETER,
    XV_PG_REBUILD_PARAMETER_WITH_STATE,
    XV_PG_STORAGE_TYPE
} xv_pglobal;

/* torch.<Name>Storage types: element size and whether tensors of it load. */
typedef struct {
    const char *torch_name; /* "FloatStorage" */
    const char *dtype_name; /* "float32" */
    int elem_size;
    bool supported;         /* float32, float16, bfloat16, int64 */
    xv_st_dtype st_dtype;   /* valid when supported */
} xv_storage_type;

typedef struct {
    const char *key;  /* storage key inside the archive (data/<key>) */
    uint64_t nbytes;  /* from the resolver (archive entry size) */
} xv_pstorage;

typedef struct {
    const xv_pstorage *storage;
    const xv_storage_type *type;
    int ndim;
    int64_t shape[XV_ST_MAX_DIMS];
    int64_t stride[XV_ST_MAX_DIMS]; /* in elements */
    int64_t offset;                 /* in elements */
    int64_t numel;
} xv_ptensor;

typedef struct xv_pvalue xv_pvalue;
struct xv_pvalue {
    xv_pv_kind kind;
    bool sealed;    /* stored in a container: immutable from then on */
    uint16_t depth; /* 1 for scalars, 1 + deepest child for containers */
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str; /* valid UTF-8, no NUL, NUL-terminated */
        struct { xv_pvalue **items; size_t n, cap; } seq; /* tuple, list */
        struct { xv_pvalue **kv; size_t n, cap; } dict;   /* key i = kv[2i], value = kv[2i+1] */
        struct { xv_pglobal which; const xv_storage_type *storage_type; } global;
        struct { const xv_pstorage *s; const xv_storage_type *type; } storage;
        const xv_ptensor *tensor;
    } u;
};

typedef struct {
    size_t max_stack;  /* values on the pickle stack */
    size_t max_memo;   /* highest memo index + 1 */
    size_t max_marks;  /* open MARKs */
    int max_depth;     /* container nesting */
    size_t max_string; /* bytes of one string */
    size_t max_values; /* values created in total */
} xv_unpickle_limits;

/* Caps that a real checkpoint (even a huge one) never reaches. */
xv_unpickle_limits xv_unpickle_default_limits(void);

/* Reports the byte size of storage `key` (the archive entry <prefix>/data/<key>),
 * or fails (XV_ERR_MISSING with a message) when there is none. */
typedef xv_status (*xv_storage_resolver)(void *user, const char *key, uint64_t *nbytes);

typedef struct xv_unpickled xv_unpickled;

/* Parse `data` (up to the STOP opcode). `label` prefixes error messages
 * ("model.th/data.pkl"). `limits` may be NULL for the defaults. */
xv_status xv_unpickle(const uint8_t *data, size_t len, const char *label,
                      const xv_unpickle_limits *limits, xv_storage_resolver resolve,
                      void *resolve_user, xv_unpickled **out);
void xv_unpickled_free(xv_unpickled *u);

/* Plain-data mode, for data files pickled by Python (REFER's refs(unc).p):
 * dicts, lists, tuples, str (Python 2 byte strings too, as Python 3 reads
 * them), int, float, bool, None. Every GLOBAL / STACK_GLOBAL (hence every
 * REDUCE, BUILD) and persistent id is refused with an error naming it;
 * nothing is executed. `limits` NULL: xv_unpickle_plain_limits(). */
xv_unpickle_limits xv_unpickle_plain_limits(void);
xv_status xv_unpickle_plain(const uint8_t *data, size_t len, const char *label, const xv_unpickle_limits *limits,
                            xv_unpickled **out);

const xv_pvalue *xv_unpickled_root(const xv_unpickled *u);
/* The distinct storages the pickle referred to, in order of first use. */
size_t xv_unpickled_storage_count(const xv_unpickled *u);
const xv_pstorage *xv_unpickled_storage(const xv_unpickled *u, size_t i);

/* Dict lookup by string key; the last pair wins, as in Python. NULL if absent
 * or if `d` is not a dict. */
const xv_pvalue *xv_pdict_get(const xv_pvalue *d, const char *key);
const char *xv_pv_kind_name(xv_pv_kind k);

#endif
