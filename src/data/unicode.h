/* The few Unicode behaviours of Python's `str` that the official text pipeline
 * depends on (str.lower, str.isspace / regex \s, unicodedata categories and NFD),
 * computed from utf8proc's tables on code point arrays.
 *
 * Text enters as UTF-8 and is decoded strictly: overlong forms, surrogates and
 * code points above U+10FFFF are rejected, as Python's utf-8 codec rejects them. */
#ifndef XV_DATA_UNICODE_H
#define XV_DATA_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Decode `n` bytes of UTF-8 into `out` (room for n code points). On invalid
 * input returns XV_ERR_FORMAT with a message naming `what` and the byte offset. */
xv_status xv_utf8_decode(const char *s, size_t n, int32_t *out, size_t *n_out, const char *what);

/* Encode code points as UTF-8 into `out` (room for 4n bytes); returns the byte count.
 * The output is not NUL-terminated. */
size_t xv_utf8_encode(const int32_t *cps, size_t n, char *out);

/* str.isspace(): general category Zs, or bidirectional class WS, B or S. This is
 * also what Python's regex `\s` matches in a str pattern. */
bool xv_py_isspace(int32_t c);

/* str.lower() of a single character (full case mapping, no context): writes 1 or
 * 2 code points (only U+0130 İ lowers to two: i + U+0307). */
int xv_py_lower_char(int32_t c, int32_t out[2]);

/* str.lower() of a whole string: full case mapping and the Final_Sigma context
 * for U+03A3. `out` needs room for 2n code points; returns the count. */
size_t xv_py_lower(const int32_t *in, size_t n, int32_t *out);

#endif
