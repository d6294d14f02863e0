/* Caption and question cleaning exactly as the official dataset/utils.py does
 * it, with Python's str and re semantics on Unicode code points.
 *
 * pre_caption(text, max_words):
 *   str.lower() (full case mapping, final sigma); delete each of , . ' ! ? " ( ) * # : ; ~;
 *   '-' and '/' -> ' '; "<person>" -> "person"; every run of two or more \s
 *   characters (Unicode whitespace, as str.isspace) -> ' '; rstrip('\n');
 *   strip(' '); keep the first max_words of split(' '). An empty result is
 *   rejected, where the official code raises ValueError.
 * pre_question(text, max_words):
 *   the same lower/delete/replace (no "<person>", no whitespace collapsing),
 *   rstrip(' '), keep the first max_words of split(' '). Never rejects. */
#ifndef XV_DATA_CAPTION_H
#define XV_DATA_CAPTION_H

#include <stddef.h>

#include "core/error.h"

/* The official ValueError message; xv_pre_caption's error text when it rejects. */
#define XV_PRE_CAPTION_EMPTY "pre_caption yields invalid text"

/* On success *out is a malloc'd UTF-8 string (NUL-terminated; it can also hold
 * NUL characters of the input, so *out_len gives its length). Returns
 * XV_ERR_FORMAT for invalid UTF-8 (the message names the byte offset),
 * XV_ERR_INVALID_ARG for max_words < 0, and XV_ERR_INVALID_ARG with the message
 * XV_PRE_CAPTION_EMPTY when the cleaned caption is empty. */
xv_status xv_pre_caption(const char *text, size_t len, int max_words, char **out, size_t *out_len);
xv_status xv_pre_question(const char *text, size_t len, int max_words, char **out, size_t *out_len);

#endif
