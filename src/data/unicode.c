#include "data/unicode.h"

#include <utf8proc.h>

xv_status xv_utf8_decode(const char *s, size_t n, int32_t *out, size_t *n_out, const char *what) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        if (p[i] < 0x80) { /* ASCII fast path: most captions are plain ASCII */
            out[k++] = p[i++];
            continue;
        }
        utf8proc_int32_t c;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &c);
        if (len <= 0 || c < 0)
            return xv_error(XV_ERR_FORMAT, "%s: invalid UTF-8 at byte offset %zu (byte 0x%02x)", what, i,
                            p[i]);
        out[k++] = c;
        i += (size_t)len;
    }
    *n_out = k;
    return XV_OK;
}

size_t xv_utf8_encode(const int32_t *cps, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] < 0x80)
            out[k++] = (char)cps[i];
        else
            k += (size_t)utf8proc_encode_char(cps[i], (utf8proc_uint8_t *)out + k);
    }
    return k;
}

bool xv_py_isspace(int32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    const utf8proc_property_t *p = utf8proc_get_property(c);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

int xv_py_lower_char(int32_t c, int32_t out[2]) {
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    /* SpecialCasing.txt has exactly one unconditional lowercase mapping that is
     * not the simple one: U+0130 -> U+0069 U+0307. Python applies it. */
    if (c == 0x130) {
        out[0] = 0x69;
        out[1] = 0x307;
        return 2;
    }
    out[0] = utf8proc_tolower(c);
    return 1;
}

/* Derived property Cased (Lowercase | Uppercase | Lt). utf8proc has no such
 * property: a letter category or any case mapping covers it, except for the
 * Other_Lowercase / Other_Uppercase characters (PropList.txt) that have no case
 * mapping and are not Lm or Mn (those are case-ignorable and never tested here):
 * ª, º and the squared / circled Latin capitals U+1F130..1F189. */
static bool is_cased(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
        return true;
    if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return true;
    return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
}

/* Derived property Case_Ignorable: categories Mn Me Cf Lm Sk, plus the
 * characters whose Word_Break is MidLetter, MidNumLet or Single_Quote
 * (WordBreakProperty.txt; utf8proc does not carry word-break classes). */
static bool is_case_ignorable(int32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
    default:
        break;
    }
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

/* Capital sigma lowers to final ς when preceded by a cased letter and not
 * followed by one (case-ignorable characters skipped both ways), as CPython does. */
static int32_t lower_sigma(const int32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return 0x3C3;
    j = i + 1;
    while (j < n && is_case_ignorable(s[j])) j++;
    return (j < n && is_cased(s[j])) ? 0x3C3 : 0x3C2;
}

size_t xv_py_lower(const int32_t *in, size_t n, int32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0x3A3)
            out[k++] = lower_sigma(in, n, i);
        else
            k += (size_t)xv_py_lower_char(in[i], out + k);
    }
    return k;
}
