/* Standard base64 (RFC 4648, alphabet A-Z a-z 0-9 + /, '=' padding) decoding
 * of the images the official pretraining files embed under their `binary` key.
 *
 * Strict where Python's b64decode is lenient: ASCII whitespace (space, \t, \n,
 * \r, \v, \f) is skipped, any other character outside the alphabet is an error
 * (Python silently drops it), the unpadded length must be a whole number of
 * quads, and '=' may only end the data (at most two). The output length is
 * computed before anything is allocated and capped. */
#ifndef XV_DATA_BASE64_H
#define XV_DATA_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Decode len bytes of text into a malloc'd buffer (*out, *out_len). Fails with
 * XV_ERR_FORMAT naming `label` and the offending byte offset, or XV_ERR_NOMEM
 * when the result would exceed max_bytes. *out is NULL on failure. */
xv_status xv_base64_decode(const char *text, size_t len, size_t max_bytes, const char *label, uint8_t **out,
                           size_t *out_len);

/* n bytes as base64 text with '=' padding, NUL-terminated, malloc'd (NULL
 * when out of memory): what the loader's decoder reads back (tests, benches,
 * writing embedded-image records). */
char *xv_base64_encode(const uint8_t *bytes, size_t n);

#endif
