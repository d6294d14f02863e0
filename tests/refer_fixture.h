/* A REFER refs(unc).p for tests, written as the bytes Python 2's pickle
 * protocol 2 emits for a list of ref dicts (keys and splits as Python 2 byte
 * strings, the sentences as unicode), and the raw opcodes to make bad ones. */
#ifndef XV_TESTS_REFER_FIXTURE_H
#define XV_TESTS_REFER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    unsigned char b[4096];
    size_t n;
} pk;

static inline void pk_op(pk *p, unsigned char c) { p->b[p->n++] = c; }
static inline void pk_le(pk *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) pk_op(p, (unsigned char)(v >> (8 * i)));
}
static inline void pk_raw(pk *p, const char *s) {
    memcpy(p->b + p->n, s, strlen(s));
    p->n += strlen(s);
}
static inline void pk_unicode(pk *p, const char *s) { pk_op(p, 'X'), pk_le(p, (uint32_t)strlen(s), 4), pk_raw(p, s); }
static inline void pk_py2str(pk *p, const char *s) { pk_op(p, 'U'), pk_op(p, (unsigned char)strlen(s)), pk_raw(p, s); }
static inline void pk_int(pk *p, int v) {
    if (v < 256) pk_op(p, 'K'), pk_op(p, (unsigned char)v);
    else pk_op(p, 'J'), pk_le(p, (uint32_t)v, 4);
}

/* {ref_id, ann_id, image_id, category_id, split, sentences: [{sent: ...}]} */
static inline void pk_ref(pk *p, int ref_id, int ann_id, int image_id, const char *split) {
    pk_op(p, '}'), pk_op(p, '(');
    pk_py2str(p, "ref_id"), pk_int(p, ref_id);
    pk_py2str(p, "ann_id"), pk_int(p, ann_id);
    pk_py2str(p, "image_id"), pk_int(p, image_id);
    pk_py2str(p, "category_id"), pk_int(p, 1);
    if (split) pk_py2str(p, "split"), pk_py2str(p, split);
    pk_unicode(p, "sentences"), pk_op(p, ']'), pk_op(p, '(');
    pk_op(p, '}'), pk_unicode(p, "sent"), pk_unicode(p, "the dog"), pk_op(p, 's');
    pk_op(p, 'e');
    pk_op(p, 'u');
}

static inline bool pk_write(const char *path, const pk *p) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(p->b, 1, p->n, f) == p->n;
    if (f) ok = fclose(f) == 0 && ok;
    CHECK(ok, "writing %s", path);
    return ok;
}

typedef struct {
    int ref_id, ann_id, image_id;
    const char *split; /* NULL: the key left out */
} xv_test_ref;

/* The list of refs as refs(unc).p; false (with a failed CHECK) on error. */
static inline bool xv_test_write_refs(const char *path, const xv_test_ref *refs, int n) {
    static pk p;
    p.n = 0;
    pk_op(&p, 0x80), pk_op(&p, 2), pk_op(&p, ']'), pk_op(&p, '(');
    for (int i = 0; i < n; i++) pk_ref(&p, refs[i].ref_id, refs[i].ann_id, refs[i].image_id, refs[i].split);
    pk_op(&p, 'e'), pk_op(&p, '.');
    return pk_write(path, &p);
}

#endif
