/* safetensors reader: map the file, then validate the whole header before any
 * tensor is handed out. The file is untrusted: every size and offset is checked
 * against the bytes actually present, and every refusal names the file, the
 * entry and what was expected. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as-is"
#endif

/* Same cap as the reference implementation: a header is metadata, never bulk data. */
#define XV_ST_HEADER_CAP 100000000ull
/* cJSON stores numbers as doubles: integers are exact up to 2^53 only. */
#define XV_ST_MAX_INT 9007199254740992.0

typedef struct {
    char *key, *value;
} st_meta;

struct xv_st_file {
    char *label;           /* path, or the caller's label for a memory buffer */
    const uint8_t *base;   /* whole file */
    size_t len;
    bool mapped;           /* munmap on close (else caller-owned) */
    const uint8_t *data;   /* data section = base + 8 + header length */
    size_t data_len;
    xv_st_tensor *tensors; /* sorted by data offset */
    int n;
    int *by_name;          /* indices into tensors, sorted by name */
    st_meta *meta;
    int n_meta;
};

static const char *const k_dtype_names[] = {"F32", "F16", "BF16", "F64", "I64",
                                            "I32", "I16", "I8",   "U8",  "BOOL"};
static const size_t k_dtype_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
#define XV_ST_NDTYPES ((int)(sizeof k_dtype_sizes / sizeof k_dtype_sizes[0]))

size_t xv_st_dtype_size(xv_st_dtype dt) {
    return (int)dt >= 0 && (int)dt < XV_ST_NDTYPES ? k_dtype_sizes[dt] : 0;
}

const char *xv_st_dtype_name(xv_st_dtype dt) {
    return (int)dt >= 0 && (int)dt < XV_ST_NDTYPES ? k_dtype_names[dt] : "?";
}

static bool dtype_from_name(const char *s, xv_st_dtype *out) {
    for (int i = 0; i < XV_ST_NDTYPES; i++)
        if (!strcmp(s, k_dtype_names[i])) {
            *out = (xv_st_dtype)i;
            return true;
        }
    return false;
}

/* The header must be UTF-8 (names end up in messages and in files we write). */
static size_t utf8_invalid_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return i;
        i += len;
    }
    return SIZE_MAX;
}

/* A JSON number that is an exact non-negative integer cJSON can represent. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0.0 && d <= XV_ST_MAX_INT) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

static const char *json_kind(const cJSON *j);

/* Why a JSON value json_uint refused is not a non-negative integer below 2^53. */
static const char *number_kind(const cJSON *j) {
    if (!cJSON_IsNumber(j)) return json_kind(j);
    if (j->valuedouble < 0) return "a negative number";
    if (!(j->valuedouble <= XV_ST_MAX_INT)) return "a number of 2^53 or more";
    return "a fractional number";
}

static const char *json_kind(const cJSON *j) {
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "an invalid value";
}

static void shape_str(const xv_st_tensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? ", " : "",
                                 (long long)t->shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static xv_status parse_shape(const char *label, xv_st_tensor *t, const cJSON *j) {
    if (!cJSON_IsArray(j))
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': \"shape\" must be an array, found %s",
                        label, t->name, json_kind(j));
    int rank = cJSON_GetArraySize(j);
    if (rank > XV_ST_MAX_DIMS)
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions, at most %d supported",
                        label, t->name, rank, XV_ST_MAX_DIMS);
    t->ndim = 0;
    bool has_zero = false;
    for (const cJSON *d = j->child; d; d = d->next) {
        uint64_t v;
        if (!json_uint(d, &v))
            return xv_error(XV_ERR_FORMAT,
                            "%s: tensor '%s': shape[%d] must be a non-negative integer below 2^53, found %s",
                            label, t->name, t->ndim, number_kind(d));
        has_zero |= v == 0;
        t->shape[t->ndim++] = (int64_t)v;
    }
    /* A zero dimension makes the tensor empty, whatever the others are. */
    int64_t numel = has_zero ? 0 : 1;
    size_t elt = xv_st_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim && numel; d++) {
        if (__builtin_mul_overflow(numel, t->shape[d], &numel) || (uint64_t)numel > SIZE_MAX / elt) {
            char s[256];
            shape_str(t, s, sizeof s);
            return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': shape %s has more elements than can be addressed",
                            label, t->name, s);
        }
    }
    t->numel = numel;
    t->nbytes = (size_t)numel * elt;
    return XV_OK;
}

/* Offsets are kept aside until the data section is known. */
typedef struct {
    uint64_t begin, end;
} st_span;

static xv_status parse_offsets(const char *label, const char *name, const cJSON *j, st_span *sp) {
    uint64_t v[2];
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2 || !json_uint(j->child, &v[0]) ||
        !json_uint(j->child->next, &v[1]))
        return xv_error(XV_ERR_FORMAT,
                        "%s: tensor '%s': \"data_offsets\" must be two non-negative integers [begin, end], found %s",
                        label, name,
                        !cJSON_IsArray(j)                ? json_kind(j)
                        : cJSON_GetArraySize(j) != 2     ? "an array of another length"
                        : !json_uint(j->child, &v[0])    ? number_kind(j->child)
                                                         : number_kind(j->child->next));
    sp->begin = v[0];
    sp->end = v[1];
    return XV_OK;
}

static xv_status parse_entry(const char *label, const cJSON *e, xv_st_tensor *t, st_span *sp) {
    t->name = strdup(e->string);
    if (!t->name) return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    if (!cJSON_IsObject(e))
        return xv_error(XV_ERR_FORMAT, "%s: entry '%s' must be an object {dtype, shape, data_offsets}, found %s",
                        label, t->name, json_kind(e));
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dtype
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offsets
                                                                  : NULL;
        if (!slot)
            return xv_error(XV_ERR_FORMAT,
                            "%s: tensor '%s': unknown field \"%s\" (expected dtype, shape, data_offsets)",
                            label, t->name, f->string);
        if (*slot)
            return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': field \"%s\" appears twice", label, t->name,
                            f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offsets)
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': missing field \"%s\"", label, t->name,
                        !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype))
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': \"dtype\" must be a string, found %s", label,
                        t->name, json_kind(dtype));
    if (!dtype_from_name(dtype->valuestring, &t->dtype))
        return xv_error(XV_ERR_FORMAT,
                        "%s: tensor '%s': unknown dtype \"%.32s\" (expected F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)",
                        label, t->name, dtype->valuestring);
    XV_TRY(parse_shape(label, t, shape));
    return parse_offsets(label, t->name, offsets, sp);
}

static int cmp_meta(const void *a, const void *b) {
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static xv_status parse_metadata(xv_st_file *f, const cJSON *m) {
    if (f->meta)
        return xv_error(XV_ERR_FORMAT, "%s: \"__metadata__\" appears twice", f->label);
    if (!cJSON_IsObject(m))
        return xv_error(XV_ERR_FORMAT, "%s: \"__metadata__\" must be an object of strings, found %s",
                        f->label, json_kind(m));
    int n = cJSON_GetArraySize(m);
    f->meta = calloc((size_t)n + 1, sizeof *f->meta);
    if (!f->meta) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    for (const cJSON *kv = m->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return xv_error(XV_ERR_FORMAT, "%s: \"__metadata__\".\"%s\" must be a string, found %s", f->label,
                            kv->string, json_kind(kv));
        st_meta *s = &f->meta[f->n_meta++];
        s->key = strdup(kv->string);
        s->value = strdup(kv->valuestring);
        if (!s->key || !s->value) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    }
    /* Sorted: duplicates become neighbours and lookups a binary search. */
    qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
    for (int i = 1; i < f->n_meta; i++)
        if (!strcmp(f->meta[i - 1].key, f->meta[i].key))
            return xv_error(XV_ERR_FORMAT, "%s: \"__metadata__\" key \"%s\" appears twice", f->label,
                            f->meta[i].key);
    return XV_OK;
}

/* Spans travel with their tensors through the sort by offset. */
typedef struct {
    xv_st_tensor t;
    st_span sp;
} st_entry;

static int cmp_entry_offset(const void *a, const void *b) {
    const st_span *x = &((const st_entry *)a)->sp, *y = &((const st_entry *)b)->sp;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* qsort has no context argument: the array being indexed, for one sort. */
static _Thread_local const xv_st_tensor *t_sort_tensors;

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(t_sort_tensors[*(const int *)a].name, t_sort_tensors[*(const int *)b].name);
}

/* Byte counts and offsets, as the reference's Metadata::validate: sorted by
 * offset, each span starts where the previous one ended (the first at 0), its
 * size is numel · dtype size, and the last one ends where the file ends. So
 * no gap, no overlap and no trailing bytes: a byte no tensor owns could hide
 * anything, and a reader that tolerates it accepts files the reference (and
 * so PyTorch users) cannot load. */
static xv_status check_layout(xv_st_file *f, st_entry *e, int n) {
    qsort(e, (size_t)n, sizeof *e, cmp_entry_offset);
    for (int i = 0; i < n; i++) {
        const xv_st_tensor *t = &e[i].t;
        const st_span *sp = &e[i].sp;
        if (sp->begin > sp->end || sp->end > f->data_len)
            return xv_error(XV_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] must satisfy begin <= end <= %zu (the data section size)",
                            f->label, t->name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                            f->data_len);
        if (sp->end - sp->begin != t->nbytes) {
            char s[256];
            shape_str(t, s, sizeof s);
            return xv_error(XV_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, expected %zu for %s %s",
                            f->label, t->name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                            (unsigned long long)(sp->end - sp->begin), t->nbytes, xv_st_dtype_name(t->dtype),
                            s);
        }
        const uint64_t expected = i > 0 ? e[i - 1].sp.end : 0;
        if (i > 0 && !strcmp(e[i - 1].t.name, t->name))
            return xv_error(XV_ERR_FORMAT, "%s: tensor name '%s' appears twice", f->label, t->name);
        if (sp->begin < expected)
            return xv_error(XV_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                            f->label, e[i - 1].t.name, (unsigned long long)e[i - 1].sp.begin,
                            (unsigned long long)e[i - 1].sp.end, t->name, (unsigned long long)sp->begin,
                            (unsigned long long)sp->end);
        if (sp->begin > expected)
            return xv_error(XV_ERR_FORMAT,
                            "%s: tensor '%s' starts at byte %llu of the data section, leaving a gap of %llu bytes "
                            "after %s (tensors must be contiguous)",
                            f->label, t->name, (unsigned long long)sp->begin,
                            (unsigned long long)(sp->begin - expected), i > 0 ? e[i - 1].t.name : "its start");
    }
    const uint64_t used = n > 0 ? e[n - 1].sp.end : 0;
    if (used != f->data_len)
        return xv_error(XV_ERR_FORMAT, "%s: %llu trailing bytes after the last tensor's data (the file must end there)",
                        f->label, (unsigned long long)(f->data_len - used));
    return XV_OK;
}

static xv_status build_index(xv_st_file *f) {
    f->by_name = malloc(((size_t)f->n + 1) * sizeof *f->by_name);
    if (!f->by_name) return xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    for (int i = 0; i < f->n; i++) f->by_name[i] = i;
    t_sort_tensors = f->tensors;
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_by_name);
    t_sort_tensors = NULL;
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->tensors[f->by_name[i - 1]].name, f->tensors[f->by_name[i]].name))
            return xv_error(XV_ERR_FORMAT, "%s: tensor name '%s' appears twice", f->label,
                            f->tensors[f->by_name[i]].name);
    return XV_OK;
}

/* Names and values become C strings: a NUL in them, raw or escaped as \u0000,
 * would silently shorten them (cJSON keeps going), so refuse both. Raw control
 * bytes other than whitespace are invalid JSON anyway. */
static size_t nul_or_control_at(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return i;
        if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4)) return i;
            i++; /* skip the escaped character, so "\\u0000" is not mistaken for one */
        }
    }
    return SIZE_MAX;
}

/* The header's only numbers are shapes and data_offsets, which the reference
 * reader (huggingface safetensors, serde into usize) takes as non-negative
 * integers written as such: "4.0", "1e3", "-1" and "007" are refused there.
 * cJSON turns every number into a double, so the text is checked here, outside
 * strings. Returns the byte of the first bad number (SIZE_MAX: none) and its
 * length in *tok_len. */
static size_t non_integer_number_at(const char *s, size_t n, size_t *tok_len) {
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) continue;
        size_t j = i;
        bool bad = c == '-';
        while (j < n && strchr("0123456789+-.eE", s[j]) && s[j]) {
            bad |= s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '-' || s[j] == '+';
            j++;
        }
        bad |= c == '0' && j - i > 1; /* a leading zero is not JSON */
        if (bad) {
            *tok_len = j - i;
            return i;
        }
        i = j - 1;
    }
    return SIZE_MAX;
}

/* What cJSON cannot tell: leading whitespace, and integers written as floats
 * ("4.0", "1e3") or with a leading zero. Checked on a header that parsed as
 * an object, so the messages about its structure come first. */
static xv_status check_header_text(const char *label, const char *json, size_t n) {
    if (json[0] != '{') /* as the reference (InvalidHeaderStart): the JSON starts right after the length */
        return xv_error(XV_ERR_FORMAT, "%s: header must start with '{', found whitespace before it", label);
    size_t tok_len = 0, bad = non_integer_number_at(json, n, &tok_len);
    if (bad != SIZE_MAX)
        return xv_error(XV_ERR_FORMAT,
                        "%s: header byte %zu: number '%.*s' is not written as an integer (shapes and data_offsets "
                        "are integers, as the reference reader requires)",
                        label, bad, (int)(tok_len > 40 ? 40 : tok_len), json + bad);
    return XV_OK;
}

static xv_status parse_header(xv_st_file *f, const char *json, size_t n) {
    size_t bad = utf8_invalid_at((const uint8_t *)json, n);
    if (bad != SIZE_MAX)
        return xv_error(XV_ERR_FORMAT, "%s: header byte %zu is not valid UTF-8", f->label, bad);
    bad = nul_or_control_at(json, n);
    if (bad != SIZE_MAX)
        return xv_error(XV_ERR_FORMAT, "%s: header byte %zu is a NUL or control character (raw or \\u0000)",
                        f->label, bad);
    /* cJSON parses a private NUL-padded copy: cJSON before 1.7.18 could read past
     * the given length (CVE-2023-53154), and sanitizers do not see inside it. */
    char *copy = malloc(n + 8);
    if (!copy) return xv_error(XV_ERR_NOMEM, "%s: out of memory for a %zu-byte header", f->label, n);
    memcpy(copy, json, n);
    memset(copy + n, 0, 8);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, n, &end, false);
    xv_status st = XV_OK;
    if (!root) {
        size_t at = end && end >= copy && end <= copy + n ? (size_t)(end - copy) : 0;
        st = xv_error(XV_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %zu)", f->label, at, n);
    }
    /* Only space padding may follow the object (writers pad to 8 bytes). */
    for (const char *p = end; root && p < copy + n && st == XV_OK; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
            st = xv_error(XV_ERR_FORMAT, "%s: header has trailing bytes after the JSON object (at byte %zu)",
                          f->label, (size_t)(p - copy));
    free(copy);
    if (!root) return st;
    if (st == XV_OK && !cJSON_IsObject(root))
        st = xv_error(XV_ERR_FORMAT, "%s: header must be a JSON object, found %s", f->label, json_kind(root));
    st_entry *entries = NULL;
    int n_entries = 0;
    if (st == XV_OK) {
        entries = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *entries);
        if (!entries) st = xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
    }
    for (const cJSON *e = st == XV_OK ? root->child : NULL; e && st == XV_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            st = parse_metadata(f, e);
        } else {
            st_entry *x = &entries[n_entries++];
            st = parse_entry(f->label, e, &x->t, &x->sp);
        }
    }
    cJSON_Delete(root);
    if (st == XV_OK) st = check_header_text(f->label, json, n);
    if (st == XV_OK) st = check_layout(f, entries, n_entries);
    if (entries) {
        f->tensors = calloc((size_t)n_entries + 1, sizeof *f->tensors);
        if (!f->tensors && st == XV_OK) st = xv_error(XV_ERR_NOMEM, "%s: out of memory", f->label);
        for (int i = 0; i < n_entries; i++) {
            if (f->tensors) {
                f->tensors[i] = entries[i].t;
                if (st == XV_OK) f->tensors[i].data = f->data + entries[i].sp.begin;
            } else {
                free(entries[i].t.name);
            }
        }
        f->n = f->tensors ? n_entries : 0;
        free(entries);
    }
    if (st == XV_OK) st = build_index(f);
    return st;
}

static xv_status open_bytes(xv_st_file *f) {
    if (f->len < 8)
        return xv_error(XV_ERR_FORMAT, "%s: file is %zu bytes, expected at least 8 (the header length)",
                        f->label, f->len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (n > XV_ST_HEADER_CAP)
        return xv_error(XV_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte cap (not a safetensors file?)",
                        f->label, (unsigned long long)n, XV_ST_HEADER_CAP);
    if (n > f->len - 8)
        return xv_error(XV_ERR_FORMAT, "%s: header length %llu exceeds the %zu bytes after the length field",
                        f->label, (unsigned long long)n, f->len - 8);
    f->data = f->base + 8 + n;
    f->data_len = f->len - 8 - (size_t)n;
    return parse_header(f, (const char *)f->base + 8, (size_t)n);
}

static xv_status new_file(const char *label, xv_st_file **out) {
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)->label = strdup(label))) {
        free(*out);
        *out = NULL;
        return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    }
    return XV_OK;
}

xv_status xv_st_open_memory(const void *buf, size_t len, const char *label, xv_st_file **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xv_st_open_memory: out is NULL");
    *out = NULL;
    if (!label) label = "<memory>";
    if (!buf && len) return xv_error(XV_ERR_INVALID_ARG, "%s: buffer is NULL", label);
    xv_st_file *f;
    XV_TRY(new_file(label, &f));
    f->base = buf;
    f->len = len;
    xv_status st = open_bytes(f);
    if (st != XV_OK) {
        xv_st_close(f);
        return st;
    }
    *out = f;
    return XV_OK;
}

xv_status xv_st_open(const char *path, xv_st_file **out) {
    if (!out || !path) return xv_error(XV_ERR_INVALID_ARG, "xv_st_open: path or out is NULL");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) /* told apart: callers fall back to other files */
        return xv_error(XV_ERR_MISSING, "%s: cannot open: %s", path, strerror(errno));
    int fd;
    XV_TRY(xv_fs_open_regular(path, &fd)); /* never blocks on a FIFO */
    if (fstat(fd, &sb) != 0) {
        xv_status st = xv_error(XV_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    xv_st_file *f;
    xv_status st = new_file(path, &f);
    if (st != XV_OK) {
        close(fd);
        return st;
    }
    f->len = (size_t)sb.st_size;
    if (f->len > 0) { /* mmap refuses length 0; open_bytes reports the short file */
        void *p = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            st = xv_error(XV_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, f->len, strerror(errno));
            close(fd);
            xv_st_close(f);
            return st;
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd); /* the mapping stays valid */
    st = open_bytes(f);
    if (st != XV_OK) {
        xv_st_close(f);
        return st;
    }
    *out = f;
    return XV_OK;
}

void xv_st_close(xv_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    if (f->mapped) munmap((void *)f->base, f->len);
    free(f->label);
    free(f);
}

int xv_st_count(const xv_st_file *f) { return f ? f->n : 0; }

const xv_st_tensor *xv_st_at(const xv_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const xv_st_tensor *xv_st_find(const xv_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const xv_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (!c) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *xv_st_metadata(const xv_st_file *f, const char *key) {
    if (!f || !key || !f->n_meta) return NULL;
    st_meta k = {.key = (char *)key};
    const st_meta *m = bsearch(&k, f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta);
    return m ? m->value : NULL;
}

const char *xv_st_path(const xv_st_file *f) { return f ? f->label : NULL; }

int xv_st_metadata_count(const xv_st_file *f) { return f ? f->n_meta : 0; }

void xv_st_metadata_at(const xv_st_file *f, int i, const char **key, const char **value) {
    const bool ok = f && i >= 0 && i < f->n_meta;
    *key = ok ? f->meta[i].key : NULL;
    *value = ok ? f->meta[i].value : NULL;
}

uint64_t xv_st_offset(const xv_st_file *f, const xv_st_tensor *t) {
    return (uint64_t)((const uint8_t *)t->data - f->data);
}
