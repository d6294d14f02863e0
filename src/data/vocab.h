/* A WordPiece vocabulary (vocab.txt: one token per line, id = line number) with
 * a hash index for the tokenizer's many substring look-ups.
 *
 * Read as Python's `open(path, encoding="utf-8").readlines()` + rstrip("\n")
 * does in the official load_vocab: universal newlines (\n, \r\n and a lone \r end
 * a line), empty lines are tokens too (they take an id), and when a token repeats
 * its last line wins the token -> id direction. */
#ifndef XV_DATA_VOCAB_H
#define XV_DATA_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct xv_vocab xv_vocab;

/* Files above this size are refused (bert-base-uncased's vocab is 226 KiB). */
#define XV_VOCAB_MAX_BYTES ((size_t)64 << 20)

/* `name` names the source in error messages. Refuses binary data (NUL bytes),
 * invalid UTF-8 (naming line and byte offset) and empty or oversized input. */
xv_status xv_vocab_parse(const char *data, size_t len, const char *name, xv_vocab **out);
xv_status xv_vocab_load(const char *path, xv_vocab **out);
void xv_vocab_free(xv_vocab *v);

int32_t xv_vocab_size(const xv_vocab *v);

/* Id of the token spelled by the n bytes at s, with a "##" prefix in front when
 * `continuation` is set; -1 when absent. */
int32_t xv_vocab_find(const xv_vocab *v, const char *s, size_t n, bool continuation);

/* Id of a whole token string (a leading "##" included); -1 when absent. */
int32_t xv_vocab_id(const xv_vocab *v, const char *token);

/* The token on line `id` (NUL-terminated), or NULL when id is out of range. */
const char *xv_vocab_token(const xv_vocab *v, int32_t id);

#endif
