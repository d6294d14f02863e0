/* Ids back to text as transformers 4.12.5 BertTokenizer.decode(ids,
 * skip_special_tokens=True) does it (the official captioning code's
 * _get_captions): [PAD] [UNK] [CLS] [SEP] [MASK] dropped, tokens joined by
 * spaces with " ##" removed, then clean_up_tokenization (" ." -> ".", " ?",
 * " !", " ,", " ' " -> "'", " n't", " 'm", " 's", " 've", " 're" glued). */
#ifndef XV_DATA_DETOKENIZE_H
#define XV_DATA_DETOKENIZE_H

#include "data/tokenizer.h"

/* The decoded text (malloc'd; NULL when out of memory). */
char *xv_decode(const xv_tokenizer *t, const int32_t *ids, size_t n);

/* A generated caption: the decoded text without its first prompt_chars
 * characters (code points; the official caption[len(prompt):], which cuts a
 * first piece glued to the prompt's last word: "ofness" -> "ess"). */
char *xv_decode_caption(const xv_tokenizer *t, const int32_t *ids, size_t n, size_t prompt_chars);

#endif
