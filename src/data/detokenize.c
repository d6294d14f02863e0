#include "data/detokenize.h"

#include <stdlib.h>
#include <string.h>

/* Replace every non-overlapping `from` (left to right) by `to`, in place
 * (to is never longer than from). */
static void replace_all(char *s, const char *from, const char *to) {
    size_t nf = strlen(from), nt = strlen(to);
    char *w = s;
    for (const char *r = s; *r;) {
        if (!strncmp(r, from, nf)) {
            memmove(w, to, nt);
            w += nt, r += nf;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

char *xv_decode(const xv_tokenizer *t, const int32_t *ids, size_t n) {
    const xv_special_ids sp = xv_tokenizer_special_ids(t);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) cap += strlen(xv_tokenizer_id_to_token(t, ids[i])) + 1;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id == sp.pad || id == sp.unk || id == sp.cls || id == sp.sep || id == sp.mask) continue;
        const char *tok = xv_tokenizer_id_to_token(t, id);
        if (len) s[len++] = ' ';
        memcpy(s + len, tok, strlen(tok));
        len += strlen(tok);
    }
    s[len] = '\0';
    replace_all(s, " ##", "");
    /* strip(): the joined tokens have no outer spaces unless a token does. */
    size_t a = 0, b = strlen(s);
    while (a < b && s[a] == ' ') a++;
    while (b > a && s[b - 1] == ' ') b--;
    memmove(s, s + a, b - a);
    s[b - a] = '\0';
    static const char *const clean[][2] = {{" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},
                                           {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                           {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) replace_all(s, clean[i][0], clean[i][1]);
    return s;
}

char *xv_decode_caption(const xv_tokenizer *t, const int32_t *ids, size_t n, size_t prompt_chars) {
    char *s = xv_decode(t, ids, n);
    if (!s) return NULL;
    const char *p = s;
    for (size_t k = 0; k < prompt_chars && *p; k++) /* one UTF-8 code point */
        do p++;
        while ((*p & 0xC0) == 0x80);
    memmove(s, p, strlen(p) + 1);
    return s;
}
