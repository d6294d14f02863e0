/* BERT basic tokenization + WordPiece (see tokenizer.h for the exact rules). */
#include "data/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "data/unicode.h"
#include "data/vocab.h"

/* WordpieceTokenizer.max_input_chars_per_word: longer words become [UNK]. */
#define XV_WORDPIECE_MAX_CHARS 100

struct xv_tokenizer {
    xv_vocab *vocab;
    xv_special_ids special;
};

/* The special tokens the official tokenizers never split, in the order of
 * transformers' all_special_tokens. */
static const char *const k_special[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
enum { N_SPECIAL = 5 };

/* ---------------------------------------------------------------- loading */

static xv_status finish_load(xv_vocab *v, const char *name, const char *first_bytes, xv_tokenizer **out) {
    int32_t id[N_SPECIAL];
    char missing[64] = "";
    for (int i = 0; i < N_SPECIAL; i++) {
        id[i] = xv_vocab_id(v, k_special[i]);
        if (id[i] < 0) {
            if (missing[0]) strcat(missing, " ");
            strcat(missing, k_special[i]);
        }
    }
    if (missing[0]) {
        bool bom = (unsigned char)first_bytes[0] == 0xEF && (unsigned char)first_bytes[1] == 0xBB &&
                   (unsigned char)first_bytes[2] == 0xBF;
        xv_vocab_free(v);
        return xv_error(XV_ERR_MISSING,
                        "%s: vocab lacks the special token(s) %s (a BERT vocab.txt needs [PAD] [UNK] [CLS] "
                        "[SEP] [MASK], each alone on its line)%s",
                        name, missing, bom ? "; the file starts with a UTF-8 byte-order mark, which becomes "
                                             "part of the first token" : "");
    }
    xv_tokenizer *t = malloc(sizeof *t);
    if (!t) {
        xv_vocab_free(v);
        return xv_error(XV_ERR_NOMEM, "%s: no memory", name);
    }
    t->vocab = v;
    t->special = (xv_special_ids){.unk = id[0], .sep = id[1], .pad = id[2], .cls = id[3], .mask = id[4]};
    *out = t;
    return XV_OK;
}

xv_status xv_tokenizer_from_memory(const char *data, size_t len, const char *name, xv_tokenizer **out) {
    *out = NULL;
    xv_vocab *v;
    XV_TRY(xv_vocab_parse(data, len, name, &v));
    const char *first = xv_vocab_token(v, 0);
    char head[3] = {0, 0, 0};
    memcpy(head, first, strnlen(first, 3));
    return finish_load(v, name, head, out);
}

xv_status xv_tokenizer_load(const char *vocab_path, xv_tokenizer **out) {
    *out = NULL;
    xv_vocab *v;
    XV_TRY(xv_vocab_load(vocab_path, &v));
    const char *first = xv_vocab_token(v, 0);
    char head[3] = {0, 0, 0};
    memcpy(head, first, strnlen(first, 3));
    return finish_load(v, vocab_path, head, out);
}

void xv_tokenizer_free(xv_tokenizer *t) {
    if (!t) return;
    xv_vocab_free(t->vocab);
    free(t);
}

int32_t xv_tokenizer_vocab_size(const xv_tokenizer *t) { return xv_vocab_size(t->vocab); }
xv_special_ids xv_tokenizer_special_ids(const xv_tokenizer *t) { return t->special; }

int32_t xv_tokenizer_token_to_id(const xv_tokenizer *t, const char *token) {
    int32_t id = xv_vocab_id(t->vocab, token);
    return id < 0 ? t->special.unk : id;
}

const char *xv_tokenizer_id_to_token(const xv_tokenizer *t, int32_t id) {
    const char *tok = xv_vocab_token(t->vocab, id);
    if (!tok || xv_vocab_id(t->vocab, tok) != id) return k_special[0];
    return tok;
}

void xv_ids_free(xv_ids *ids) {
    free(ids->v);
    *ids = (xv_ids){0};
}

static bool ids_push(xv_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? 2 * ids->cap : 32;
        int32_t *nv = realloc(ids->v, cap * sizeof *nv);
        if (!nv) return false;
        ids->v = nv;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return true;
}

/* ------------------------------------------------- character classes (BERT) */

/* _is_control: category C* (Cc Cf Cs Co Cn), except \t \n \r. */
static bool is_control(int32_t c) {
    if (c < 0x80) return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_CN || cat >= UTF8PROC_CATEGORY_CC;
}

/* _is_punctuation: every ASCII non-alphanumeric printable, plus categories P*. */
static bool is_punct(int32_t c) {
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* _is_chinese_char: the CJK Unified Ideographs blocks BERT spaces out. */
static bool is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static bool is_nonspacing_mark(int32_t c) { return c >= 0x300 && utf8proc_category(c) == UTF8PROC_CATEGORY_MN; }

static int combining_class(int32_t c) { return c < 0x300 ? 0 : utf8proc_get_property(c)->combining_class; }

/* ------------------------------------------------------------- tokenizing */

typedef struct {
    const xv_tokenizer *t;
    xv_ids *out;
    int32_t *word;     /* the current whitespace-delimited word, lower-cased and NFD-decomposed */
    size_t word_len, word_cap;
    char utf8[4 * XV_WORDPIECE_MAX_CHARS];        /* one sub-word in UTF-8 ... */
    uint32_t offset[XV_WORDPIECE_MAX_CHARS + 1];  /* ... and the byte offset of each character */
    bool nomem;
} tok_state;

static void push(tok_state *st, int32_t id) {
    if (!ids_push(st->out, id)) st->nomem = true;
}

/* Greedy longest-match-first WordPiece on one punctuation-free sub-word. */
static void wordpiece(tok_state *st, const int32_t *cps, size_t n) {
    if (n == 0) return;
    if (n > XV_WORDPIECE_MAX_CHARS) {
        push(st, st->t->special.unk);
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        st->offset[i] = (uint32_t)bytes;
        bytes += xv_utf8_encode(cps + i, 1, st->utf8 + bytes);
    }
    st->offset[n] = (uint32_t)bytes;
    size_t mark = st->out->n;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            id = xv_vocab_find(st->t->vocab, st->utf8 + st->offset[start], st->offset[end] - st->offset[start],
                               start > 0);
            if (id >= 0) break;
        }
        if (id < 0) { /* some part matches nothing: the whole word is [UNK] */
            st->out->n = mark;
            push(st, st->t->special.unk);
            return;
        }
        push(st, id);
        start = end;
    }
}

/* Stable sort of one run of combining marks by combining class: insertion sort
 * for the usual short runs, counting sort (linear) for long, hostile ones. */
static void sort_run(tok_state *st, int32_t *s, size_t n) {
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            int32_t c = s[i];
            int ci = combining_class(c);
            size_t j = i;
            for (; j > 0 && combining_class(s[j - 1]) > ci; j--) s[j] = s[j - 1];
            s[j] = c;
        }
        return;
    }
    int32_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp) {
        st->nomem = true;
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[combining_class(s[i]) + 1]++;
    for (int k = 1; k <= 256; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) tmp[start[combining_class(s[i])]++] = s[i];
    memcpy(s, tmp, n * sizeof *s);
    free(tmp);
}

/* Canonical ordering, the last step of NFD: each maximal run of characters
 * with a non-zero combining class is sorted stably by class. */
static void canonical_order(tok_state *st, int32_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (combining_class(s[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && combining_class(s[j]) != 0) j++;
        if (j - i > 1) sort_run(st, s + i, j - i);
        i = j;
    }
}

/* End of a whitespace word: finish NFD, drop Mn marks, split off punctuation,
 * WordPiece each part. Works in place (the kept characters move left).
 * Mn marks with a non-zero class are dropped before the canonical ordering:
 * removing elements commutes with a stable sort and leaves run boundaries
 * (class-0 characters) alone, and it leaves almost nothing to sort. */
static void flush_word(tok_state *st) {
    int32_t *w = st->word;
    size_t n = st->word_len, m = 0;
    st->word_len = 0;
    for (size_t i = 0; i < n; i++)
        if (!(is_nonspacing_mark(w[i]) && combining_class(w[i]) != 0)) w[m++] = w[i];
    canonical_order(st, w, m);
    size_t kept = 0, sub_start = 0;
    for (size_t i = 0; i < m; i++) {
        int32_t c = w[i];
        if (is_nonspacing_mark(c)) continue;
        if (is_punct(c)) {
            wordpiece(st, w + sub_start, kept - sub_start);
            w[kept] = c;
            wordpiece(st, w + kept, 1);
            sub_start = ++kept;
        } else {
            w[kept++] = c;
        }
    }
    wordpiece(st, w + sub_start, kept - sub_start);
}

/* Appends the canonical decomposition of c to the current word. */
static void append_nfd(tok_state *st, int32_t c) {
    if (c < 0xC0) { /* nothing below U+00C0 has a canonical decomposition */
        st->word[st->word_len++] = c;
        return;
    }
    int boundclass = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(c, st->word + st->word_len, 4, UTF8PROC_DECOMPOSE, &boundclass);
    if (k > 0 && k <= 4)
        st->word_len += (size_t)k;
    else /* cannot happen for valid code points (4 is the Unicode maximum); keep the character */
        st->word[st->word_len++] = c;
}

/* BasicTokenizer, one character at a time: drop NUL, U+FFFD and controls;
 * whitespace ends the word; a CJK ideograph is a word of its own; anything else
 * is lower-cased and decomposed into the word. */
static void basic_char(tok_state *st, int32_t c) {
    if (c == 0 || c == 0xFFFD || is_control(c)) return;
    if (xv_py_isspace(c)) { /* clean_text's whitespace, and str.split()'s (U+2028, U+2029) */
        flush_word(st);
        return;
    }
    /* room for the worst case: lower-casing gives 2 code points, NFD 4 each */
    if (st->word_len + 8 > st->word_cap) {
        size_t cap = st->word_cap * 2;
        int32_t *w = realloc(st->word, cap * sizeof *w);
        if (!w) {
            st->nomem = true;
            return;
        }
        st->word = w;
        st->word_cap = cap;
    }
    if (is_cjk(c)) {
        flush_word(st);
        append_nfd(st, c);
        flush_word(st);
        return;
    }
    int32_t low[2];
    int k = xv_py_lower_char(c, low);
    for (int j = 0; j < k; j++) append_nfd(st, low[j]);
}

/* The special token spelled at s[0..n), or -1 (they are ASCII, so bytes compare). */
static int special_at(const char *s, size_t n) {
    if (s[0] != '[') return -1;
    for (int i = 0; i < N_SPECIAL; i++) {
        size_t len = strlen(k_special[i]);
        if (len <= n && memcmp(s, k_special[i], len) == 0) return i;
    }
    return -1;
}

static int32_t special_id(const xv_tokenizer *t, int s) {
    const int32_t ids[N_SPECIAL] = {t->special.unk, t->special.sep, t->special.pad, t->special.cls,
                                    t->special.mask};
    return ids[s];
}

/* One pass over the bytes: special tokens are cut out (ending the word before
 * them), everything else is decoded and fed to the basic tokenizer. Memory is
 * bounded by the longest word, not by the text. */
xv_status xv_tokenize(const xv_tokenizer *t, const char *text, size_t len, xv_ids *out) {
    if (!t || !out || (!text && len)) return xv_error(XV_ERR_INVALID_ARG, "xv_tokenize: NULL argument");
    tok_state st = {.t = t, .out = out, .word_cap = 256};
    st.word = malloc(st.word_cap * sizeof *st.word);
    if (!st.word) return xv_error(XV_ERR_NOMEM, "tokenize: no memory");
    const size_t mark = out->n;
    const uint8_t *p = (const uint8_t *)text;
    xv_status s = XV_OK;
    for (size_t i = 0; i < len && !st.nomem;) {
        int sp = special_at(text + i, len - i);
        if (sp >= 0) {
            flush_word(&st);
            push(&st, special_id(t, sp));
            i += strlen(k_special[sp]);
            continue;
        }
        utf8proc_int32_t c = p[i];
        utf8proc_ssize_t n = 1;
        if (c >= 0x80) {
            n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
            if (n <= 0 || c < 0) {
                s = xv_error(XV_ERR_FORMAT, "tokenize: text: invalid UTF-8 at byte offset %zu (byte 0x%02x)", i,
                             p[i]);
                break;
            }
        }
        basic_char(&st, c);
        i += (size_t)n;
    }
    if (s == XV_OK) flush_word(&st);
    if (s == XV_OK && st.nomem) s = xv_error(XV_ERR_NOMEM, "tokenize: no memory for a %zu-byte text", len);
    if (s != XV_OK) out->n = mark; /* leave the caller's ids as they were */
    free(st.word);
    return s;
}

xv_status xv_tokenize_pretokenized(const xv_tokenizer *t, const char *text, size_t len, xv_ids *out) {
    if (!t || !out || (!text && len)) return xv_error(XV_ERR_INVALID_ARG, "xv_tokenize_pretokenized: NULL argument");
    /* str.strip(): find the first and past-the-last non-whitespace characters */
    const uint8_t *p = (const uint8_t *)text;
    size_t a = len, b = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c = p[i];
        utf8proc_ssize_t n = 1;
        if (c >= 0x80 && ((n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c)) <= 0 || c < 0))
            return xv_error(XV_ERR_FORMAT, "tokenize: text: invalid UTF-8 at byte offset %zu (byte 0x%02x)", i, p[i]);
        if (!xv_py_isspace(c)) {
            if (a == len) a = i;
            b = i + (size_t)n;
        }
        i += (size_t)n;
    }
    if (a == len) a = b = 0; /* all whitespace: one empty piece, as ''.split(' ') == [''] */
    const size_t mark = out->n;
    for (size_t i = a;; i++) { /* .split(' ') */
        size_t j = i;
        while (j < b && text[j] != ' ') j++;
        bool cont = j - i >= 2 && text[i] == '#' && text[i + 1] == '#';
        int32_t id = cont ? xv_vocab_find(t->vocab, text + i + 2, j - i - 2, true)
                          : xv_vocab_find(t->vocab, text + i, j - i, false);
        if (!ids_push(out, id < 0 ? t->special.unk : id)) {
            out->n = mark;
            return xv_error(XV_ERR_NOMEM, "tokenize: no memory for the token ids");
        }
        if (j >= b) break;
        i = j;
    }
    return XV_OK;
}
