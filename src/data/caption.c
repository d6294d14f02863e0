#include "data/caption.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/unicode.h"

/* re.sub(r"([,.'!?\"()*#:;~])", '', s.lower()).replace('-', ' ').replace('/', ' ')
 * Returns the code points in a malloc'd buffer with room to spare. */
static xv_status lower_and_strip_punct(const char *text, size_t len, const char *what, int32_t **out,
                                       size_t *n_out) {
    *out = NULL;
    int32_t *cps = malloc((len + 1) * sizeof *cps);
    int32_t *low = malloc((2 * len + 1) * sizeof *low);
    if (!cps || !low) {
        free(cps);
        free(low);
        return xv_error(XV_ERR_NOMEM, "%s: no memory for a %zu-byte text", what, len);
    }
    size_t n;
    xv_status s = xv_utf8_decode(text, len, cps, &n, what);
    if (s != XV_OK) {
        free(cps);
        free(low);
        return s;
    }
    n = xv_py_lower(cps, n, low);
    free(cps);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = low[i];
        if (c > 0 && c < 0x80 && strchr(",.'!?\"()*#:;~", (int)c)) continue;
        low[k++] = (c == '-' || c == '/') ? ' ' : c;
    }
    *out = low;
    *n_out = k;
    return XV_OK;
}

/* str.replace('<person>', 'person'), in place (the result is shorter). */
static size_t replace_person(int32_t *s, size_t n) {
    static const char pat[] = "<person>";
    const size_t m = sizeof pat - 1;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = 0;
        while (j < m && i + j < n && s[i + j] == (unsigned char)pat[j]) j++;
        if (j == m) {
            for (size_t q = 1; q + 1 < m; q++) s[k++] = (unsigned char)pat[q];
            i += m;
        } else {
            s[k++] = s[i++];
        }
    }
    return k;
}

/* re.sub(r"\s{2,}", ' ', s), in place. */
static size_t collapse_whitespace(int32_t *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!xv_py_isspace(s[i])) {
            s[k++] = s[i++];
            continue;
        }
        size_t j = i;
        while (j < n && xv_py_isspace(s[j])) j++;
        s[k++] = (j - i >= 2) ? ' ' : s[i];
        i = j;
    }
    return k;
}

/* ' '.join(s.split(' ')[:max_words]) when there are more words than that. */
static size_t keep_words(const int32_t *s, size_t n, int max_words) {
    if (max_words == 0) return 0;
    int words = 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ') continue;
        if (words == max_words) return i;
        words++;
    }
    return n;
}

static xv_status finish(int32_t *s, size_t n, char **out, size_t *out_len, const char *what) {
    char *utf8 = malloc(4 * n + 1);
    if (!utf8) {
        free(s);
        return xv_error(XV_ERR_NOMEM, "%s: no memory", what);
    }
    size_t len = xv_utf8_encode(s, n, utf8);
    utf8[len] = '\0';
    free(s);
    *out = utf8;
    if (out_len) *out_len = len;
    return XV_OK;
}

xv_status xv_pre_caption(const char *text, size_t len, int max_words, char **out, size_t *out_len) {
    *out = NULL;
    if (max_words < 0) return xv_error(XV_ERR_INVALID_ARG, "pre_caption: max_words %d < 0", max_words);
    int32_t *s;
    size_t n;
    XV_TRY(lower_and_strip_punct(text, len, "pre_caption: text", &s, &n));
    n = replace_person(s, n);
    n = collapse_whitespace(s, n);
    while (n > 0 && s[n - 1] == '\n') n--; /* rstrip('\n') */
    size_t a = 0;                          /* strip(' ') */
    while (a < n && s[a] == ' ') a++;
    while (n > a && s[n - 1] == ' ') n--;
    memmove(s, s + a, (n - a) * sizeof *s);
    n = keep_words(s, n - a, max_words);
    if (n == 0) {
        free(s);
        return xv_error(XV_ERR_INVALID_ARG, XV_PRE_CAPTION_EMPTY);
    }
    return finish(s, n, out, out_len, "pre_caption");
}

xv_status xv_pre_question(const char *text, size_t len, int max_words, char **out, size_t *out_len) {
    *out = NULL;
    if (max_words < 0) return xv_error(XV_ERR_INVALID_ARG, "pre_question: max_words %d < 0", max_words);
    int32_t *s;
    size_t n;
    XV_TRY(lower_and_strip_punct(text, len, "pre_question: text", &s, &n));
    while (n > 0 && s[n - 1] == ' ') n--; /* rstrip(' ') */
    n = keep_words(s, n, max_words);
    return finish(s, n, out, out_len, "pre_question");
}
