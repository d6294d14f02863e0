/* safetensors writer. Output is deterministic: header entries sorted by name;
 * the data section ordered by (dtype size descending, name), which puts every
 * tensor at an offset that is a multiple of its element size with no gaps —
 * gaps are refused by the reference (Rust) loader. The header is padded with
 * spaces to a multiple of 8 bytes, so the data section starts 8-aligned.
 *
 * The file is replaced through the atomic writer of core/fs.h: path.tmp is
 * written, fsynced and renamed over path, the folder fsynced. On any failure
 * the temp file is removed and an existing file at path is left as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"

typedef struct {
    char *name;
    xv_st_dtype dtype;
    int ndim;
    int64_t shape[XV_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned; /* copy of data unless borrowed */
    const void **parts; /* xv_st_writer_add_parts: borrowed pieces, in order (owned array) */
    size_t *part_bytes;
    int nparts;
    uint64_t begin;
} st_wentry;

struct xv_st_writer {
    st_wentry *e;
    int n, cap;
    char **meta; /* key, value, key, value, ... */
    int n_meta, cap_meta;
};

xv_status xv_st_writer_new(xv_st_writer **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? XV_OK : xv_error(XV_ERR_NOMEM, "xv_st_writer_new: out of memory");
}

void xv_st_writer_free(xv_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].owned);
        free(w->e[i].parts);
        free(w->e[i].part_bytes);
    }
    for (int i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    free(w->e);
    free(w->meta);
    free(w);
}

static bool grow(void **p, int *cap, int need, size_t elt) {
    if (need <= *cap) return true;
    int nc = *cap ? 2 * *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elt);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

xv_status xv_st_writer_add(xv_st_writer *w, const char *name, xv_st_dtype dt, const int64_t *shape,
                           int ndim, const void *data, bool borrow) {
    if (!w || !name) return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: writer or name is NULL");
    if (!strcmp(name, "__metadata__"))
        return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: '__metadata__' is reserved, not a tensor name");
    size_t elt = xv_st_dtype_size(dt);
    if (!elt) return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s': invalid dtype %d", name, (int)dt);
    if (ndim < 0 || ndim > XV_ST_MAX_DIMS || (ndim && !shape))
        return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s': rank %d, expected 0..%d with a shape",
                        name, ndim, XV_ST_MAX_DIMS);
    size_t nbytes = elt;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s': shape[%d] = %lld is negative",
                            name, d, (long long)shape[d]);
        if (__builtin_mul_overflow(nbytes, (uint64_t)shape[d], &nbytes))
            return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s': byte size overflows", name);
    }
    if (nbytes && !data)
        return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s': data is NULL", name);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name))
            return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add: tensor '%s' added twice", name);
    if (!grow((void **)&w->e, &w->cap, w->n + 1, sizeof *w->e))
        return xv_error(XV_ERR_NOMEM, "xv_st_writer_add: out of memory");
    st_wentry e = {.dtype = dt, .ndim = ndim, .nbytes = nbytes, .data = data};
    if (ndim) memcpy(e.shape, shape, (size_t)ndim * sizeof *shape);
    e.name = strdup(name);
    if (!borrow && nbytes) {
        e.owned = malloc(nbytes);
        if (e.owned) memcpy(e.owned, data, nbytes);
        e.data = e.owned;
    }
    if (!e.name || (!borrow && nbytes && !e.owned)) {
        free(e.name);
        free(e.owned);
        return xv_error(XV_ERR_NOMEM, "xv_st_writer_add: tensor '%s': out of memory (%zu bytes)", name, nbytes);
    }
    w->e[w->n++] = e;
    return XV_OK;
}

xv_status xv_st_writer_add_parts(xv_st_writer *w, const char *name, xv_st_dtype dt, const int64_t *shape,
                                 int ndim, const void *const *parts, const size_t *part_bytes, int nparts) {
    if (nparts < 0 || (nparts && (!parts || !part_bytes)))
        return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add_parts: tensor '%s': bad parts", name ? name : "(null)");
    size_t total = 0;
    for (int i = 0; i < nparts; i++) {
        if (part_bytes[i] && !parts[i])
            return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add_parts: tensor '%s': part %d is NULL", name, i);
        total += part_bytes[i];
    }
    /* Validate name, dtype and shape like a single borrowed buffer; the
     * placeholder pointer is replaced by the parts below. */
    XV_TRY(xv_st_writer_add(w, name, dt, shape, ndim, total ? (const void *)parts : NULL, true));
    st_wentry *e = &w->e[w->n - 1];
    if (e->nbytes != total) {
        size_t want = e->nbytes;
        free(e->name);
        w->n--;
        return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_add_parts: tensor '%s': parts hold %zu bytes, the shape needs %zu",
                        name, total, want);
    }
    e->data = NULL;
    e->parts = malloc(((size_t)nparts + 1) * sizeof *e->parts);
    e->part_bytes = malloc(((size_t)nparts + 1) * sizeof *e->part_bytes);
    if (!e->parts || !e->part_bytes) {
        free(e->parts);
        free(e->part_bytes);
        free(e->name);
        w->n--;
        return xv_error(XV_ERR_NOMEM, "xv_st_writer_add_parts: tensor '%s': out of memory", name);
    }
    for (int i = 0; i < nparts; i++) {
        e->parts[i] = parts[i];
        e->part_bytes[i] = part_bytes[i];
    }
    e->nparts = nparts;
    return XV_OK;
}

xv_status xv_st_writer_meta(xv_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_meta: NULL argument");
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[2 * i], key))
            return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_meta: key '%s' set twice", key);
    int cap2 = 2 * w->cap_meta;
    if (!grow((void **)&w->meta, &cap2, 2 * w->n_meta + 2, sizeof *w->meta))
        return xv_error(XV_ERR_NOMEM, "xv_st_writer_meta: out of memory");
    w->cap_meta = cap2 / 2;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return xv_error(XV_ERR_NOMEM, "xv_st_writer_meta: out of memory");
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return XV_OK;
}

/* ---- header text ---- */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->s, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->s = q;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(sbuf *b, uint64_t v) {
    char t[24];
    put(b, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

/* A JSON string literal; bytes >= 0x80 pass through (names are UTF-8). */
static void put_json_string(sbuf *b, const char *s) {
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            put(b, esc, 2);
        } else if (*p < 0x20) {
            char esc[8];
            put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p));
        } else {
            put(b, (const char *)p, 1);
        }
    }
    put(b, "\"", 1);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_wentry *const *)a)->name, (*(const st_wentry *const *)b)->name);
}

static int cmp_layout(const void *a, const void *b) {
    const st_wentry *x = *(const st_wentry *const *)a, *y = *(const st_wentry *const *)b;
    size_t sx = xv_st_dtype_size(x->dtype), sy = xv_st_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Assign offsets and render the padded header. `order` is scratch of n pointers. */
static xv_status build_header(xv_st_writer *w, st_wentry **order, sbuf *h) {
    for (int i = 0; i < w->n; i++) order[i] = &w->e[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_layout);
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        order[i]->begin = off;
        off += order[i]->nbytes;
    }
    qsort(order, (size_t)w->n, sizeof *order, cmp_name);

    puts_(h, "{");
    if (w->n_meta) {
        char ***keys = malloc((size_t)w->n_meta * sizeof *keys);
        if (!keys) return xv_error(XV_ERR_NOMEM, "safetensors writer: out of memory for the header");
        for (int i = 0; i < w->n_meta; i++) keys[i] = &w->meta[2 * i];
        qsort(keys, (size_t)w->n_meta, sizeof *keys, cmp_meta_key);
        puts_(h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) puts_(h, ",");
            put_json_string(h, keys[i][0]);
            puts_(h, ":");
            put_json_string(h, keys[i][1]);
        }
        puts_(h, "}");
        free(keys);
    }
    for (int i = 0; i < w->n; i++) {
        const st_wentry *e = order[i];
        if (i || w->n_meta) puts_(h, ",");
        put_json_string(h, e->name);
        puts_(h, ":{\"dtype\":\"");
        puts_(h, xv_st_dtype_name(e->dtype));
        puts_(h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) puts_(h, ",");
            put_u64(h, (uint64_t)e->shape[d]);
        }
        puts_(h, "],\"data_offsets\":[");
        put_u64(h, e->begin);
        puts_(h, ",");
        put_u64(h, e->begin + e->nbytes);
        puts_(h, "]}");
    }
    puts_(h, "}");
    while (!h->oom && h->len % 8) puts_(h, " ");
    return h->oom ? xv_error(XV_ERR_NOMEM, "safetensors writer: out of memory for the header") : XV_OK;
}

/* The header and the data, in layout order, to the atomic writer's file
 * (stream errors are caught by its commit). */
static void write_body(xv_st_writer *w, st_wentry **order, const sbuf *h, FILE *fp) {
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h->len >> (8 * i));
    bool ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h->s, 1, h->len, fp) == h->len;
    /* order is sorted by name here; data goes in layout order (by offset) */
    qsort(order, (size_t)w->n, sizeof *order, cmp_layout);
    for (int i = 0; ok && i < w->n; i++) {
        const st_wentry *e = order[i];
        if (e->parts) {
            for (int k = 0; ok && k < e->nparts; k++)
                ok = !e->part_bytes[k] || fwrite(e->parts[k], 1, e->part_bytes[k], fp) == e->part_bytes[k];
        } else {
            ok = !e->nbytes || fwrite(e->data, 1, e->nbytes, fp) == e->nbytes;
        }
    }
}

xv_status xv_st_writer_write(xv_st_writer *w, const char *path) {
    if (!w || !path) return xv_error(XV_ERR_INVALID_ARG, "xv_st_writer_write: writer or path is NULL");
    st_wentry **order = malloc(((size_t)w->n + 1) * sizeof *order);
    sbuf h = {0};
    xv_status st = order ? build_header(w, order, &h) : xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    xv_fs_atomic out;
    if (st == XV_OK) st = xv_fs_atomic_open(path, XV_FS_DURABLE, &out);
    if (st == XV_OK) {
        write_body(w, order, &h, out.f);
        st = xv_fs_atomic_commit(&out);
    }
    free(h.s);
    free(order);
    return st;
}

xv_status xv_st_writer_to_memory(xv_st_writer *w, void **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    st_wentry **order = malloc(((size_t)w->n + 1) * sizeof *order);
    sbuf h = {0};
    xv_status st = order ? build_header(w, order, &h) : xv_error(XV_ERR_NOMEM, "out of memory");
    char *mem = NULL;
    size_t n = 0;
    FILE *f = st == XV_OK ? open_memstream(&mem, &n) : NULL;
    if (st == XV_OK && !f) st = xv_error(XV_ERR_NOMEM, "safetensors in memory: out of memory");
    if (f) {
        write_body(w, order, &h, f);
        if (ferror(f) | fclose(f)) st = xv_error(XV_ERR_NOMEM, "safetensors in memory: out of memory");
    }
    free(h.s);
    free(order);
    if (st != XV_OK) {
        free(mem);
        return st;
    }
    *buf = mem;
    *len = n;
    return XV_OK;
}
