#include "model/model_folder.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/tokenizer.h"

/* bert-base-uncased's vocab.txt is 230 kB; no real vocabulary comes near this. */
#define XV_VOCAB_MAX_BYTES (INT64_C(64) << 20)

void xv_model_vocab_free(xv_model_vocab *v) {
    if (!v) return;
    free(v->text), free(v->origin);
    memset(v, 0, sizeof *v);
}

xv_status xv_model_vocab_read(const char *path, xv_model_vocab *out) {
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    XV_TRY(xv_fs_read_file(path, XV_VOCAB_MAX_BYTES, &data, &len));
    out->text = (char *)data;
    out->len = len;
    out->origin = strdup(path);
    if (!out->origin) {
        xv_model_vocab_free(out);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    return XV_OK;
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

bool xv_model_is_single_file(const char *path) {
    struct stat s;
    if (stat(path, &s) != 0 || !S_ISREG(s.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char head[9];
    bool ok = fread(head, 1, sizeof head, f) == sizeof head && head[8] == '{';
    fclose(f);
    return ok;
}

/* The "vocab" metadata of a single-file model (NULL text when absent). */
static xv_status vocab_from_metadata(const char *path, xv_model_vocab *out) {
    xv_st_file *f;
    XV_TRY(xv_st_open(path, &f));
    const char *v = xv_st_metadata(f, "vocab");
    xv_status st = XV_OK;
    if (v) {
        size_t n = strlen(path) + sizeof " (metadata \"vocab\")";
        out->text = strdup(v);
        out->len = strlen(v);
        out->origin = malloc(n);
        if (out->origin) snprintf(out->origin, n, "%s (metadata \"vocab\")", path);
        if (!out->text || !out->origin) st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    xv_st_close(f);
    return st;
}

xv_status xv_model_vocab_find(const char *arg, const char *override, xv_model_vocab *out) {
    memset(out, 0, sizeof *out);
    if (override) return xv_model_vocab_read(override, out);
    bool folder = is_dir(arg);
    if (!folder && xv_model_is_single_file(arg)) {
        XV_TRY(vocab_from_metadata(arg, out));
        if (out->text) return XV_OK;
    }
    char *copy = strdup(arg), *path = copy ? xv_fs_join(folder ? arg : dirname(copy), "vocab.txt") : NULL;
    free(copy);
    if (!path) return xv_error(XV_ERR_NOMEM, "out of memory");
    struct stat s;
    xv_status st = stat(path, &s) == 0 && S_ISREG(s.st_mode)
                       ? xv_model_vocab_read(path, out)
                       : xv_error(XV_ERR_MISSING,
                                  "%s: no vocab.txt: the model needs the WordPiece vocabulary it was trained with "
                                  "(bert-base-uncased's vocab.txt for the official checkpoints); put it at %s or pass "
                                  "--vocab FILE (xvlm_model_params.vocab_path)",
                                  arg, path);
    free(path);
    return st;
}

xv_status xv_model_single_config(const char *path, xv_model_config *out) {
    xv_st_file *f;
    XV_TRY(xv_st_open(path, &f));
    const char *text = xv_st_metadata(f, "config");
    size_t n = strlen(path) + sizeof " (metadata \"config\")";
    char *label = malloc(n);
    xv_status st = label ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK && !text)
        st = xv_error(XV_ERR_MISSING,
                      "%s: a safetensors file without \"config\" metadata is weights only, not a model: put it in a "
                      "folder as weights.safetensors beside config.json and vocab.txt",
                      path);
    if (st == XV_OK) {
        snprintf(label, n, "%s (metadata \"config\")", path);
        st = xv_config_parse_json(text, label, out);
    }
    free(label);
    xv_st_close(f);
    return st;
}

/* The vocabulary must fit the word embeddings (a vocab.txt of another model
 * would index past them); checked before anything is written. */
static xv_status check_vocab(const xv_model *m, const xv_model_vocab *v) {
    if (!v || !v->text) return xv_error(XV_ERR_INVALID_ARG, "a model is written with its vocabulary (none given)");
    xv_tokenizer *tok;
    XV_TRY(xv_tokenizer_from_memory(v->text, v->len, v->origin ? v->origin : "vocab", &tok));
    int32_t n = xv_tokenizer_vocab_size(tok);
    xv_tokenizer_free(tok);
    if (n > m->cfg.text.vocab)
        return xv_error(XV_ERR_SHAPE,
                        "%s: the vocabulary has %d entries but the model's word embeddings have %d rows (a vocab.txt "
                        "of another model?)",
                        v->origin ? v->origin : "vocab", n, m->cfg.text.vocab);
    return XV_OK;
}

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

xv_status xv_model_write(const char *out, const xv_model *m, const xv_model_vocab *vocab) {
    XV_TRY(check_vocab(m, vocab));
    if (strlen(vocab->text) != vocab->len)
        return xv_error(XV_ERR_FORMAT, "%s: the vocabulary holds a NUL byte", vocab->origin);
    if (ends_with(out, ".safetensors")) return xv_model_save_single(m, out, vocab->text);
    XV_TRY(xv_fs_mkdir_p(out));
    char *cfg = xv_config_to_json(&m->cfg), *cfg_path = xv_fs_join(out, "config.json"),
         *w_path = xv_fs_join(out, "weights.safetensors"), *v_path = xv_fs_join(out, "vocab.txt");
    xv_status st = cfg && cfg_path && w_path && v_path ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    /* The weights file carries config and vocab too: it is a model on its own. */
    if (st == XV_OK) st = xv_model_save_single(m, w_path, vocab->text);
    if (st == XV_OK) st = xv_fs_write_file(v_path, vocab->text, vocab->len, XV_FS_DURABLE);
    /* config.json last: its presence marks a finished folder */
    if (st == XV_OK) st = xv_fs_write_file(cfg_path, cfg, strlen(cfg), XV_FS_DURABLE);
    free(cfg), free(cfg_path), free(w_path), free(v_path);
    return st;
}

xv_status xv_model_folder_write(const char *out, const xv_model *m, const char *vocab_path) {
    if (!vocab_path) return xv_error(XV_ERR_INVALID_ARG, "%s: a model is written with its vocabulary (none given)", out);
    xv_model_vocab v;
    XV_TRY(xv_model_vocab_read(vocab_path, &v));
    xv_status st = xv_model_write(out, m, &v);
    xv_model_vocab_free(&v);
    return st;
}
