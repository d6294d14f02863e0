/* BERT WordPiece tokenizer, uncased, as the official X-VLM code uses it
 * (transformers 4.12.5 BertTokenizer with bert-base-uncased settings, and the
 * repository's own models/tokenization_bert.py, which tokenizes identically).
 *
 * tokenize(text):
 *  1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK], spelled exactly so, are
 *     cut out of the text and kept whole; everything else is lower-cased one
 *     character at a time (so a capital sigma always becomes σ, never ς);
 *  2. each remaining piece goes through BERT's basic tokenizer: NUL, U+FFFD and
 *     every category-C character except \t \n \r are dropped; whitespace splits;
 *     CJK ideographs become words of their own; NFD, then nonspacing marks (Mn)
 *     are dropped; ASCII non-alphanumerics and Unicode P* split off as one-char words;
 *  3. each word becomes greedy longest-match WordPiece pieces (continuations
 *     spelled "##..."), or one [UNK] when it has more than 100 characters or
 *     some part of it matches nothing.
 *
 * A loaded tokenizer is read-only: several threads may tokenize at once. */
#ifndef XV_DATA_TOKENIZER_H
#define XV_DATA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct xv_tokenizer xv_tokenizer;

typedef struct {
    int32_t pad, unk, cls, sep, mask;
} xv_special_ids;

/* Loads vocab.txt (see data/vocab.h for how it is read). Refuses a vocab that
 * lacks any of [PAD] [UNK] [CLS] [SEP] [MASK], naming the file and the tokens. */
xv_status xv_tokenizer_load(const char *vocab_path, xv_tokenizer **out);
/* The same from bytes in memory; `name` stands for the file in messages. */
xv_status xv_tokenizer_from_memory(const char *data, size_t len, const char *name, xv_tokenizer **out);
void xv_tokenizer_free(xv_tokenizer *t);

int32_t xv_tokenizer_vocab_size(const xv_tokenizer *t);
xv_special_ids xv_tokenizer_special_ids(const xv_tokenizer *t);
/* convert_tokens_to_ids: the token's id, or [UNK]'s when it is not in the vocab. */
int32_t xv_tokenizer_token_to_id(const xv_tokenizer *t, const char *token);
/* convert_ids_to_tokens: the token, or "[UNK]" for an id out of range or one whose
 * line was shadowed by a later duplicate of the same token. */
const char *xv_tokenizer_id_to_token(const xv_tokenizer *t, int32_t id);

/* A growable list of token ids. Zero-initialise; free with xv_ids_free. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} xv_ids;
void xv_ids_free(xv_ids *ids);

/* Tokenizes `len` bytes of UTF-8 (NUL bytes allowed) and APPENDS the ids to
 * `out`. Invalid UTF-8 -> XV_ERR_FORMAT naming the byte offset; `out` is then
 * left as it was. The token strings are xv_tokenizer_id_to_token of the ids. */
xv_status xv_tokenize(const xv_tokenizer *t, const char *text, size_t len, xv_ids *out);

/* The 16M pretraining region captions, which come pre-tokenized: the official
 * dataset does text.strip().split(' ') and looks each piece up as a whole
 * token ([UNK] when absent; a doubled space gives an empty piece, so [UNK]). */
xv_status xv_tokenize_pretokenized(const xv_tokenizer *t, const char *text, size_t len, xv_ids *out);

/* ---- model inputs (docs/architecture.md §6.3) ----
 * A row is [CLS] + tokens (+ [SEP] when add_sep), the tokens cut so the row has
 * at most max_tokens ids, then padded with [PAD] (id 0 in BERT vocabs) to the
 * batch length; the attention mask is 1 on real tokens and 0 on padding. */
typedef struct {
    int max_tokens; /* cap on the row length, specials included; 0 = no cap */
    int pad_to;     /* > 0: every row exactly this long; 0: the longest row of the batch */
    bool add_sep;
} xv_encode_opts;

/* Pretraining: [CLS] + tokens[:max_tokens-1], no [SEP], padded to max_tokens. */
xv_encode_opts xv_encode_pretrain(int max_tokens);
/* Fine-tuning scripts: [CLS] + tokens, no [SEP], padded to the longest row; cut
 * to max_tokens when max_tokens > 0 (the official calls with truncation=True). */
xv_encode_opts xv_encode_finetune(int max_tokens);
/* VQA answers: [CLS] answer [SEP], padded to the longest, never cut. */
xv_encode_opts xv_encode_vqa_answer(void);
/* Captioning (stock tokenizer): [CLS] prompt+caption [SEP], cut to max_tokens,
 * padded to the longest. With .pad_to = max_tokens it is also the captioning
 * domain-pretraining form ([CLS] + tokens[:max_tokens-2] + [SEP], fixed length). */
xv_encode_opts xv_encode_caption(int max_tokens);

typedef struct {
    int32_t *ids;  /* [batch, len] row-major */
    int32_t *atts; /* [batch, len] 1 = token, 0 = padding */
    int batch, len;
} xv_text_batch;
void xv_text_batch_free(xv_text_batch *b);

/* Encodes n NUL-terminated texts. With pad_to > 0 a row longer than pad_to is
 * an error (set max_tokens to cut instead). */
xv_status xv_encode_batch(const xv_tokenizer *t, const char *const *texts, int n,
                          const xv_encode_opts *opts, xv_text_batch *out);
/* Captioning: each row encodes the string prompt + captions[i] (concatenated
 * before tokenizing, as the official dataset does). */
xv_status xv_encode_caption_batch(const xv_tokenizer *t, const char *prompt, const char *const *captions,
                                  int n, const xv_encode_opts *opts, xv_text_batch *out);

#endif
