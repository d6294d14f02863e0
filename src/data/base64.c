#include "data/base64.h"

#include <stdlib.h>

/* 0..63 for alphabet characters, 64 for '=', 65 for skipped whitespace, 66 otherwise. */
enum { B64_PAD = 64, B64_SPACE = 65, B64_BAD = 66 };

static int b64_class(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    if (c == '=') return B64_PAD;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return B64_SPACE;
    return B64_BAD;
}

xv_status xv_base64_decode(const char *text, size_t len, size_t max_bytes, const char *label, uint8_t **out,
                           size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    /* Pass 1: validate and count, so the allocation is exact and checked. */
    size_t symbols = 0, pads = 0;
    for (size_t i = 0; i < len; i++) {
        int c = b64_class((unsigned char)text[i]);
        if (c == B64_SPACE) continue;
        if (c == B64_BAD)
            return xv_error(XV_ERR_FORMAT, "%s: base64: byte 0x%02x at offset %zu is not in the alphabet", label,
                            (unsigned char)text[i], i);
        if (c == B64_PAD) {
            pads++;
            continue;
        }
        if (pads)
            return xv_error(XV_ERR_FORMAT, "%s: base64: data after '=' padding at offset %zu", label, i);
        symbols++;
    }
    if (symbols == 0) return xv_error(XV_ERR_FORMAT, "%s: base64: no data", label);
    if ((symbols + pads) % 4 != 0 || pads > 2 || symbols % 4 == 1)
        return xv_error(XV_ERR_FORMAT, "%s: base64: %zu symbols and %zu '=' do not form whole quads", label, symbols,
                        pads);
    size_t n = symbols / 4 * 3 + (symbols % 4 == 0 ? 0 : symbols % 4 - 1);
    if (n > max_bytes)
        return xv_error(XV_ERR_NOMEM, "%s: base64: %zu decoded bytes refused (limit %zu)", label, n, max_bytes);
    uint8_t *buf = malloc(n);
    if (!buf) return xv_error(XV_ERR_NOMEM, "%s: base64: no memory for %zu bytes", label, n);
    /* Pass 2: decode; every character is known valid. */
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = b64_class((unsigned char)text[i]);
        if (c >= B64_PAD) continue;
        acc = (acc << 6) | (uint32_t)c;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits of a padded tail are dropped, as Python does. */
    *out = buf;
    *out_len = o;
    return XV_OK;
}

char *xv_base64_encode(const uint8_t *b, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        *o++ = a[v >> 18], *o++ = a[(v >> 12) & 63];
        *o++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = '\0';
    return out;
}
