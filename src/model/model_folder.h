/* A model as it travels between commands, in one of two forms:
 * - a folder: config.json, weights.safetensors, vocab.txt;
 * - one safetensors file whose __metadata__ holds "config" (the config.json
 *   text) and "vocab" (the vocab.txt text), so the model moves as one file.
 * Every writer of a model (pretraining, fine-tuning, convert) goes through
 * xv_model_write, so every folder it makes has all three files and its
 * weights.safetensors is itself a complete single-file model. */
#ifndef XV_MODEL_FOLDER_H
#define XV_MODEL_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"

/* A vocab.txt's bytes and where they came from (for messages). */
typedef struct {
    char *text; /* NUL-terminated; len excludes the NUL */
    size_t len;
    char *origin; /* a path, or "PATH (metadata)" */
} xv_model_vocab;

void xv_model_vocab_free(xv_model_vocab *v);
/* Read a vocab.txt file. */
xv_status xv_model_vocab_read(const char *path, xv_model_vocab *out);
/* The vocabulary that goes with the model named by `arg` (a folder, a
 * single-file model or an official checkpoint): `override` when not NULL,
 * else DIR/vocab.txt, the single file's "vocab" metadata, or vocab.txt beside
 * the file. A missing one is an error that says where to put it. */
xv_status xv_model_vocab_find(const char *arg, const char *override, xv_model_vocab *out);

/* True when `path` is a regular file that starts like a safetensors file
 * (8-byte header length, then '{'); an official checkpoint is a zip ("PK"). */
bool xv_model_is_single_file(const char *path);
/* The config of a single-file model, from its "config" metadata (its
 * weights are the file itself). */
xv_status xv_model_single_config(const char *path, xv_model_config *out);

/* Write `m` with its config and `vocab` to `out`: a folder (created if
 * needed; config.json, weights.safetensors, vocab.txt) or, when `out` ends in
 * ".safetensors", one file. Every file is written atomically. A vocabulary
 * with more entries than the model's word embeddings is refused. */
xv_status xv_model_write(const char *out, const xv_model *m, const xv_model_vocab *vocab);
/* xv_model_write with the vocabulary read from `vocab_path`. */
xv_status xv_model_folder_write(const char *out, const xv_model *m, const char *vocab_path);

#endif
