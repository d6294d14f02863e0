/* PyTorch checkpoint -> named tensors: see torch_ckpt.h. */
#include "io/torch_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/strindex.h"
#include "io/torch_zip.h"
#include "io/unpickle.h"

/* Views may repeat storage bytes (tied weights, expand()), but a few bytes of
 * storage must not declare gigabytes of tensors: the total tensor size is
 * capped at this multiple of the storage bytes they use, plus a slack. */
#define MAX_VIEW_AMPLIFICATION 16
#define VIEW_SLACK_BYTES ((uint64_t)16 << 20)

typedef struct {
    xv_tc_tensor pub; /* first member: xv_tc_at hands out &pub */
    int32_t storage;  /* index into the unpickled storages */
    int elem_size;
    const void *data; /* set by xv_tc_data */
} entry;

struct xv_tc_file {
    xv_tzip *zip;
    xv_unpickled *pickle;
    char *label;
    entry *entries;
    int n;
    xv_strindex by_name;
    xv_strindex storage_by_key;
    void **storage_data; /* loaded storages, NULL until first use */
    void **copies;       /* row-major copies of non-contiguous tensors */
    int n_copies;
    cJSON *config;
};

static xv_status resolve_storage(void *user, const char *key, uint64_t *nbytes) {
    return xv_tzip_storage_size(user, key, nbytes);
}

/* ---- config: plain values to JSON (depth is bounded by the unpickler) ---- */

/* *out is the value as JSON, or NULL when it is not a plain value (a global,
 * a storage, a tensor). Returns false when out of memory, so a config is
 * never handed out with entries silently missing. */
static bool to_json(const xv_pvalue *v, cJSON **out) {
    cJSON *j = NULL;
    switch (v->kind) {
    case XV_PV_NONE: j = cJSON_CreateNull(); break;
    case XV_PV_BOOL: j = cJSON_CreateBool(v->u.b); break;
    case XV_PV_INT: j = cJSON_CreateNumber((double)v->u.i); break;
    case XV_PV_FLOAT: j = cJSON_CreateNumber(v->u.f); break;
    case XV_PV_STR: j = cJSON_CreateString(v->u.str.s); break;
    case XV_PV_TUPLE:
    case XV_PV_LIST: {
        j = cJSON_CreateArray();
        for (size_t i = 0; j && i < v->u.seq.n; i++) {
            cJSON *e = NULL;
            bool ok = to_json(v->u.seq.items[i], &e);
            if (ok && !e) e = cJSON_CreateNull(); /* keep positions */
            if (!e || !cJSON_AddItemToArray(j, e)) {
                cJSON_Delete(e);
                cJSON_Delete(j);
                j = NULL;
            }
        }
        break;
    }
    case XV_PV_DICT: {
        /* As a Python dict: a repeated key keeps its first place and its last
         * value. Indexes keep this linear. */
        xv_strindex first = {0}, last = {0};
        j = cJSON_CreateObject();
        for (size_t i = 0; j && i < v->u.dict.n; i++) {
            const xv_pvalue *k = v->u.dict.kv[2 * i];
            if (k->kind != XV_PV_STR) continue;
            if ((xv_strindex_get(&first, k->u.str.s) < 0 && !xv_strindex_put(&first, k->u.str.s, (int32_t)i)) ||
                !xv_strindex_put(&last, k->u.str.s, (int32_t)i)) {
                cJSON_Delete(j);
                j = NULL;
            }
        }
        for (size_t i = 0; j && i < v->u.dict.n; i++) {
            const xv_pvalue *k = v->u.dict.kv[2 * i];
            if (k->kind != XV_PV_STR || xv_strindex_get(&first, k->u.str.s) != (int32_t)i) continue;
            cJSON *e = NULL;
            bool ok = to_json(v->u.dict.kv[2 * (size_t)xv_strindex_get(&last, k->u.str.s) + 1], &e);
            if (ok && !e) continue; /* not a plain value */
            if (!e || !cJSON_AddItemToObject(j, k->u.str.s, e)) {
                cJSON_Delete(e);
                cJSON_Delete(j);
                j = NULL;
            }
        }
        xv_strindex_free(&first);
        xv_strindex_free(&last);
        break;
    }
    default: *out = NULL; return true; /* globals, storages, tensors */
    }
    *out = j;
    return j != NULL;
}

/* ---- the state dict ---- */

static xv_status collect(xv_tc_file *f, const xv_pvalue *sd, const char *where) {
    if (sd->kind != XV_PV_DICT)
        return xv_error(XV_ERR_FORMAT, "%s: %s is a %s, expected a dict of tensors (a state_dict)", f->label, where,
                        xv_pv_kind_name(sd->kind));
    size_t n = sd->u.dict.n;
    if (n > INT32_MAX) return xv_error(XV_ERR_FORMAT, "%s: too many tensors", f->label);
    f->entries = calloc(n ? n : 1, sizeof *f->entries);
    if (!f->entries) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    uint64_t tensor_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const xv_pvalue *k = sd->u.dict.kv[2 * i], *v = sd->u.dict.kv[2 * i + 1];
        if (k->kind != XV_PV_STR)
            return xv_error(XV_ERR_FORMAT, "%s: %s key #%zu is a %s, expected a string", f->label, where, i,
                            xv_pv_kind_name(k->kind));
        if (v->kind != XV_PV_TENSOR)
            return xv_error(XV_ERR_FORMAT, "%s: %s['%s'] is a %s, expected a tensor", f->label, where, k->u.str.s,
                            xv_pv_kind_name(v->kind));
        if (xv_strindex_get(&f->by_name, k->u.str.s) >= 0)
            return xv_error(XV_ERR_FORMAT, "%s: tensor name '%s' appears twice", f->label, k->u.str.s);
        const xv_ptensor *t = v->u.tensor;
        entry *e = &f->entries[f->n];
        xv_tc_tensor *p = &e->pub;
        p->name = k->u.str.s;
        p->dtype = t->type->st_dtype;
        p->ndim = t->ndim;
        p->storage_offset = t->offset;
        p->numel = t->numel;
        p->nbytes = (size_t)t->numel * (size_t)t->type->elem_size; /* < storage size, checked */
        p->storage_key = t->storage->key;
        p->contiguous = true;
        int64_t expect = 1;
        for (int d = t->ndim - 1; d >= 0; d--) {
            p->shape[d] = t->shape[d];
            p->stride[d] = t->stride[d];
            if (t->shape[d] != 1 && t->stride[d] != expect) p->contiguous = false;
            expect *= t->shape[d];
        }
        if (t->numel == 0) p->contiguous = true;
        e->storage = xv_strindex_get(&f->storage_by_key, t->storage->key);
        e->elem_size = t->type->elem_size;
        if (!xv_strindex_put(&f->by_name, p->name, f->n)) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
        f->n++;
        if (__builtin_add_overflow(tensor_bytes, (uint64_t)p->nbytes, &tensor_bytes)) tensor_bytes = UINT64_MAX;
    }
    uint64_t storage_bytes = 0;
    for (size_t i = 0; i < xv_unpickled_storage_count(f->pickle); i++)
        storage_bytes += xv_unpickled_storage(f->pickle, i)->nbytes; /* each <= the zip's entry cap */
    if (tensor_bytes > MAX_VIEW_AMPLIFICATION * storage_bytes + VIEW_SLACK_BYTES)
        return xv_error(XV_ERR_FORMAT,
                        "%s: the tensors declare %llu bytes from %llu bytes of storage (views repeat storage more than "
                        "%dx): refused",
                        f->label, (unsigned long long)tensor_bytes, (unsigned long long)storage_bytes,
                        MAX_VIEW_AMPLIFICATION);
    return XV_OK;
}

static xv_status load(xv_tc_file *f) {
    uint8_t *pkl;
    size_t len;
    XV_TRY(xv_tzip_read_pickle(f->zip, &pkl, &len));
    char plabel[512];
    snprintf(plabel, sizeof plabel, "%s (data.pkl)", f->label);
    xv_status st = xv_unpickle(pkl, len, plabel, NULL, resolve_storage, f->zip, &f->pickle);
    free(pkl);
    XV_TRY(st);

    size_t ns = xv_unpickled_storage_count(f->pickle);
    f->storage_data = calloc(ns ? ns : 1, sizeof *f->storage_data);
    if (!f->storage_data) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    for (size_t i = 0; i < ns; i++)
        if (!xv_strindex_put(&f->storage_by_key, xv_unpickled_storage(f->pickle, i)->key, (int32_t)i))
            return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);

    const xv_pvalue *root = xv_unpickled_root(f->pickle);
    const xv_pvalue *model = xv_pdict_get(root, "model");
    XV_TRY(collect(f, model ? model : root, model ? "checkpoint['model']" : "the checkpoint"));
    if (model) {
        const xv_pvalue *cfg = xv_pdict_get(root, "config");
        if (cfg && cfg->kind == XV_PV_DICT) {
            if (!to_json(cfg, &f->config) || !f->config) return xv_error(XV_ERR_NOMEM, "%s: out of memory for the config", f->label);
        }
    }
    return XV_OK;
}

static xv_status finish(xv_tc_file *f, xv_status st, xv_tc_file **out) {
    if (st == XV_OK) st = load(f);
    if (st != XV_OK) {
        xv_tc_close(f);
        return st;
    }
    *out = f;
    return XV_OK;
}

xv_status xv_tc_open(const char *path, xv_tc_file **out) {
    *out = NULL;
    xv_tc_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(path))) {
        free(f);
        return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    }
    return finish(f, xv_tzip_open(path, NULL, &f->zip), out);
}

xv_status xv_tc_open_memory(const void *buf, size_t len, const char *label, xv_tc_file **out) {
    *out = NULL;
    if (!label) label = "checkpoint";
    xv_tc_file *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label))) {
        free(f);
        return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    }
    return finish(f, xv_tzip_open_memory(buf, len, label, NULL, &f->zip), out);
}

void xv_tc_close(xv_tc_file *f) {
    if (!f) return;
    if (f->storage_data) {
        size_t ns = f->pickle ? xv_unpickled_storage_count(f->pickle) : 0;
        for (size_t i = 0; i < ns; i++) free(f->storage_data[i]);
        free(f->storage_data);
    }
    for (int i = 0; i < f->n_copies; i++) free(f->copies[i]);
    free(f->copies);
    free(f->entries);
    xv_strindex_free(&f->by_name);
    xv_strindex_free(&f->storage_by_key);
    cJSON_Delete(f->config);
    xv_unpickled_free(f->pickle);
    xv_tzip_close(f->zip);
    free(f->label);
    free(f);
}

int xv_tc_count(const xv_tc_file *f) { return f->n; }
const xv_tc_tensor *xv_tc_at(const xv_tc_file *f, int i) { return i >= 0 && i < f->n ? &f->entries[i].pub : NULL; }
const xv_tc_tensor *xv_tc_find(const xv_tc_file *f, const char *name) {
    int32_t i = xv_strindex_get(&f->by_name, name);
    return i >= 0 ? &f->entries[i].pub : NULL;
}
const cJSON *xv_tc_config(const xv_tc_file *f) { return f->config; }

/* ---- data ---- */

static xv_status storage_bytes(xv_tc_file *f, int32_t si, const uint8_t **out) {
    if (!f->storage_data[si]) {
        const xv_pstorage *s = xv_unpickled_storage(f->pickle, (size_t)si);
        void *buf = malloc(s->nbytes ? s->nbytes : 1);
        if (!buf) return xv_error(XV_ERR_NOMEM, "%s: out of memory reading storage '%s' (%llu bytes)", f->label, s->key,
                                  (unsigned long long)s->nbytes);
        xv_status st = xv_tzip_read_storage(f->zip, s->key, buf, s->nbytes);
        if (st != XV_OK) {
            free(buf);
            return st;
        }
        f->storage_data[si] = buf;
    }
    *out = f->storage_data[si];
    return XV_OK;
}

/* Gather a strided view into row-major order (bounds were checked when the
 * tensor was unpickled: every index lies inside the storage). */
static void gather(uint8_t *dst, const uint8_t *src, const xv_tc_tensor *t, size_t esz) {
    int64_t idx[XV_ST_MAX_DIMS] = {0};
    int64_t off = t->storage_offset;
    for (int64_t n = 0; n < t->numel; n++) {
        memcpy(dst + (size_t)n * esz, src + (size_t)off * esz, esz);
        for (int d = t->ndim - 1; d >= 0; d--) { /* odometer step */
            if (++idx[d] < t->shape[d]) {
                off += t->stride[d];
                break;
            }
            off -= (t->shape[d] - 1) * t->stride[d];
            idx[d] = 0;
        }
    }
}

xv_status xv_tc_data(xv_tc_file *f, const xv_tc_tensor *t, const void **data) {
    entry *e = (entry *)t;
    if (e < f->entries || e >= f->entries + f->n)
        return xv_error(XV_ERR_INVALID_ARG, "%s: tensor does not belong to this checkpoint", f->label);
    if (e->data) {
        *data = e->data;
        return XV_OK;
    }
    static const uint8_t empty[1];
    if (t->numel == 0) {
        *data = e->data = empty;
        return XV_OK;
    }
    const uint8_t *src = NULL;
    XV_TRY(storage_bytes(f, e->storage, &src));
    size_t esz = (size_t)e->elem_size;
    if (t->contiguous) {
        *data = e->data = src + (size_t)t->storage_offset * esz;
        return XV_OK;
    }
    void **nc = realloc(f->copies, (size_t)(f->n_copies + 1) * sizeof *nc);
    if (!nc) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    f->copies = nc;
    uint8_t *dst = malloc(t->nbytes);
    if (!dst) return xv_error(XV_ERR_NOMEM, "%s: out of memory copying '%s'", f->label, t->name);
    gather(dst, src, t, esz);
    f->copies[f->n_copies++] = dst;
    *data = e->data = dst;
    return XV_OK;
}
