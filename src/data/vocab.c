#include "data/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "core/fs.h"

struct xv_vocab {
    char *text;        /* the file's bytes, each line terminator replaced by NUL */
    uint32_t *start;   /* token i = text + start[i], NUL-terminated */
    uint32_t *len;     /* its length in bytes */
    int32_t n;
    int32_t *slot_id;  /* open addressing: token id or -1 */
    uint32_t *slot_hash;
    uint32_t mask;
};

/* FNV-1a, with the continuation flag folded into the seed so that "##x" and "x"
 * land in different places. */
static uint32_t hash_key(const char *s, size_t n, bool cont) {
    uint32_t h = cont ? 0x9E3779B9u : 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* A token's hash key: without its "##" when it is a continuation piece. */
static void token_key(const xv_vocab *v, int32_t id, const char **s, size_t *n, bool *cont) {
    const char *t = v->text + v->start[id];
    size_t len = v->len[id];
    *cont = len >= 2 && t[0] == '#' && t[1] == '#';
    *s = *cont ? t + 2 : t;
    *n = *cont ? len - 2 : len;
}

static int64_t find_slot(const xv_vocab *v, const char *s, size_t n, bool cont, uint32_t h) {
    for (uint32_t i = h & v->mask;; i = (i + 1) & v->mask) {
        int32_t id = v->slot_id[i];
        if (id < 0) return -(int64_t)i - 1; /* free slot: absent */
        if (v->slot_hash[i] != h) continue;
        const char *ks;
        size_t kn;
        bool kc;
        token_key(v, id, &ks, &kn, &kc);
        if (kc == cont && kn == n && memcmp(ks, s, n) == 0) return i;
    }
}

int32_t xv_vocab_find(const xv_vocab *v, const char *s, size_t n, bool continuation) {
    int64_t slot = find_slot(v, s, n, continuation, hash_key(s, n, continuation));
    return slot < 0 ? -1 : v->slot_id[slot];
}

int32_t xv_vocab_id(const xv_vocab *v, const char *token) {
    size_t n = strlen(token);
    bool cont = n >= 2 && token[0] == '#' && token[1] == '#';
    return cont ? xv_vocab_find(v, token + 2, n - 2, true) : xv_vocab_find(v, token, n, false);
}

const char *xv_vocab_token(const xv_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n) return NULL;
    return v->text + v->start[id];
}

int32_t xv_vocab_size(const xv_vocab *v) { return v->n; }

void xv_vocab_free(xv_vocab *v) {
    if (!v) return;
    free(v->text);
    free(v->start);
    free(v->len);
    free(v->slot_id);
    free(v->slot_hash);
    free(v);
}

/* Checks one line's bytes; returns the offset of the first invalid byte or -1. */
static int64_t invalid_utf8_at(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t c;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &c);
        if (len <= 0 || c < 0) return (int64_t)i;
        i += (size_t)len;
    }
    return -1;
}

/* Splits the copied text into lines (universal newlines) and records them. */
static xv_status split_lines(xv_vocab *v, size_t len, const char *name) {
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (v->text[i] == '\n' || (v->text[i] == '\r' && (i + 1 >= len || v->text[i + 1] != '\n')))
            n_lines++;
    }
    if (len > 0 && v->text[len - 1] != '\n' && v->text[len - 1] != '\r') n_lines++; /* last line unterminated */
    v->start = malloc((n_lines ? n_lines : 1) * sizeof *v->start);
    v->len = malloc((n_lines ? n_lines : 1) * sizeof *v->len);
    if (!v->start || !v->len) return xv_error(XV_ERR_NOMEM, "%s: no memory for %zu vocab lines", name, n_lines);
    size_t line_start = 0, k = 0;
    for (size_t i = 0; i <= len; i++) {
        bool end_of_data = i == len;
        char c = end_of_data ? '\n' : v->text[i];
        if (c != '\n' && c != '\r') continue;
        if (end_of_data && line_start == len) break; /* terminated last line: nothing follows */
        size_t line_len = i - line_start;
        int64_t bad = invalid_utf8_at(v->text + line_start, line_len);
        if (bad >= 0)
            return xv_error(XV_ERR_FORMAT, "%s: line %zu is not valid UTF-8 (byte offset %zu in the file)",
                            name, k + 1, line_start + (size_t)bad);
        v->start[k] = (uint32_t)line_start;
        v->len[k] = (uint32_t)line_len;
        k++;
        if (!end_of_data) {
            v->text[i] = '\0';
            if (c == '\r' && i + 1 < len && v->text[i + 1] == '\n') v->text[++i] = '\0';
        }
        line_start = i + 1;
    }
    v->n = (int32_t)k;
    return XV_OK;
}

static xv_status build_index(xv_vocab *v, const char *name) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)v->n) cap <<= 1;
    v->mask = cap - 1;
    v->slot_id = malloc(cap * sizeof *v->slot_id);
    v->slot_hash = malloc(cap * sizeof *v->slot_hash);
    if (!v->slot_id || !v->slot_hash) return xv_error(XV_ERR_NOMEM, "%s: no memory for the vocab index", name);
    memset(v->slot_id, 0xff, cap * sizeof *v->slot_id); /* all -1 */
    for (int32_t id = 0; id < v->n; id++) {
        const char *s;
        size_t n;
        bool cont;
        token_key(v, id, &s, &n, &cont);
        uint32_t h = hash_key(s, n, cont);
        int64_t slot = find_slot(v, s, n, cont, h);
        /* A repeated token: the later line takes over, as a Python dict would. */
        uint32_t i = slot >= 0 ? (uint32_t)slot : (uint32_t)(-slot - 1);
        v->slot_id[i] = id;
        v->slot_hash[i] = h;
    }
    return XV_OK;
}

xv_status xv_vocab_parse(const char *data, size_t len, const char *name, xv_vocab **out) {
    *out = NULL;
    if (len == 0) return xv_error(XV_ERR_FORMAT, "%s: empty vocab (expected one token per line)", name);
    if (len > XV_VOCAB_MAX_BYTES)
        return xv_error(XV_ERR_FORMAT, "%s: %zu bytes is too large for a vocab file (limit %zu)", name, len,
                        XV_VOCAB_MAX_BYTES);
    const char *nul = memchr(data, '\0', len);
    if (nul)
        return xv_error(XV_ERR_FORMAT, "%s: binary data (NUL byte at offset %zu), expected a UTF-8 text file "
                        "with one token per line", name, (size_t)(nul - data));
    xv_vocab *v = calloc(1, sizeof *v);
    if (!v) return xv_error(XV_ERR_NOMEM, "%s: no memory", name);
    v->text = malloc(len + 1);
    if (!v->text) {
        free(v);
        return xv_error(XV_ERR_NOMEM, "%s: no memory for %zu bytes", name, len);
    }
    memcpy(v->text, data, len);
    v->text[len] = '\0';
    xv_status s = split_lines(v, len, name);
    if (s == XV_OK) s = build_index(v, name);
    if (s != XV_OK) {
        xv_vocab_free(v);
        return s;
    }
    *out = v;
    return XV_OK;
}

xv_status xv_vocab_load(const char *path, xv_vocab **out) {
    *out = NULL;
    struct stat st; /* the size check first: a huge file is a wrong file, not a memory problem */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > XV_VOCAB_MAX_BYTES)
        return xv_error(XV_ERR_FORMAT, "%s: larger than %zu bytes, too large for a vocab file", path,
                        (size_t)XV_VOCAB_MAX_BYTES);
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(path, XV_VOCAB_MAX_BYTES, &buf, &len));
    xv_status s = xv_vocab_parse((const char *)buf, len, path, out);
    free(buf);
    return s;
}
