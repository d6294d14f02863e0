/* xvlm_model_load (a model folder, or an official checkpoint converted once
 * into the cache: model/model_source.h), the model id, and contexts. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "io/checksum.h"
#include "model/model_source.h"

xvlm_model_params xvlm_model_params_default(void) {
    return (xvlm_model_params){.vocab_path = NULL, .image_res = 0, .text_heads = 0, .copy_weights = false};
}

/* The id covers what changes the numbers: the config and each parameter's
 * shape and float32 values, in creation order (so both text layouts, and a
 * checkpoint converted on the fly, give the id of the same weights). */
static xv_status model_id(xvlm_model *mm) {
    const xv_model *m = mm->m;
    char *cfg = xv_config_to_json(&m->cfg);
    if (!cfg) return xv_error(XV_ERR_NOMEM, "model id: out of memory");
    uint64_t h = xv_hash64(cfg, strlen(cfg), 0x78766c6dull);
    free(cfg);
    for (int i = 0; i < m->params.n; i++) {
        const xv_tensor *t = m->params.items[i];
        h = xv_hash64(t->shape, sizeof(int64_t) * (size_t)t->ndim, h);
        h = xv_hash64(t->data, sizeof(float) * (size_t)t->numel, h);
    }
    mm->id = h;
    snprintf(mm->id_hex, sizeof mm->id_hex, "%016llx", (unsigned long long)h);
    return XV_OK;
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static bool is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

/* The vocabulary's path: the given one, or vocab.txt in the model folder /
 * beside the checkpoint, which must exist. Checked before the (possibly long)
 * weight loading. */
static xv_status vocab_path(const char *path, const xvlm_model_params *p, bool folder, char *buf, size_t cap) {
    if (p->vocab_path) {
        snprintf(buf, cap, "%s", p->vocab_path);
        return XV_OK;
    }
    char *copy = strdup(path);
    if (!copy) return xv_error(XV_ERR_NOMEM, "out of memory");
    snprintf(buf, cap, "%s/vocab.txt", folder ? path : dirname(copy));
    free(copy);
    if (!is_file(buf))
        return xv_error(XV_ERR_MISSING,
                        "%s: no vocab.txt: the model needs the WordPiece vocabulary it was trained with "
                        "(bert-base-uncased's vocab.txt for the official checkpoints); put it at %s or pass "
                        "--vocab FILE (xvlm_model_params.vocab_path)",
                        path, buf);
    return XV_OK;
}

static xv_status load_vocab(const char *vocab, xvlm_model *mm) {
    XV_TRY(xv_tokenizer_load(vocab, &mm->tok));
    int32_t nv = xv_tokenizer_vocab_size(mm->tok);
    if (nv > mm->m->cfg.text.vocab)
        return xv_error(XV_ERR_SHAPE, "%s: the vocabulary has %d entries but the model's word embeddings have %d rows "
                                      "(a vocab.txt of another model?)",
                        vocab, nv, mm->m->cfg.text.vocab);
    return XV_OK;
}

xv_status xv_api_model_load(const char *path, const xvlm_model_params *params, xvlm_model **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_model_load: no model path given");
    xvlm_model_params p = params ? *params : xvlm_model_params_default();
    bool folder = is_dir(path);
    if (!folder && !is_file(path))
        return xv_error(XV_ERR_MISSING, "%s: no such model folder or checkpoint file", path);
    char vocab[PATH_MAX + 16];
    XV_TRY(vocab_path(path, &p, folder, vocab, sizeof vocab));
    xvlm_model *mm = calloc(1, sizeof *mm);
    if (!mm) return xv_error(XV_ERR_NOMEM, "out of memory");
    const xv_infer_opts infer = {.image_res = p.image_res, .window = 0, .text_heads = p.text_heads};
    xv_status st = xv_model_open(path, &infer, p.copy_weights != 0, &mm->m);
    if (st == XV_OK) st = load_vocab(vocab, mm);
    if (st == XV_OK) st = model_id(mm);
    if (st != XV_OK) {
        xvlm_model_free(mm);
        return st;
    }
    *out = mm;
    return XV_OK;
}

void xvlm_model_free(xvlm_model *mm) {
    if (!mm) return;
    xv_model_free(mm->m);
    xv_tokenizer_free(mm->tok);
    free(mm);
}

void xvlm_model_get_info(const xvlm_model *mm, xvlm_model_info *o) {
    const xv_model *m = mm->m;
    memset(o, 0, sizeof *o);
    o->image_res = m->cfg.vision.image_res;
    o->embed_dim = m->parts.itc ? m->cfg.embed_dim : 0;
    o->image_tokens = 1 + xv_config_num_patches(&m->cfg);
    o->vision_width = m->cfg.vision.vision_width;
    o->max_positions = m->cfg.text.max_positions;
    o->has_itc = m->parts.itc;
    o->has_itm = m->parts.itm;
    o->has_bbox = m->parts.bbox;
    memcpy(o->id, mm->id_hex, sizeof o->id);
}

xv_status xv_api_ctx_new(const xvlm_model *m, xvlm_ctx **out) {
    if (!out || !m) return xv_error(XV_ERR_INVALID_ARG, "xvlm_ctx_new: NULL argument");
    *out = NULL;
    xvlm_ctx *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "out of memory");
    c->model = m;
    c->g = xv_graph_new(0);
    if (!c->g) {
        free(c);
        return xv_error(XV_ERR_NOMEM, "out of memory for a graph");
    }
    xv_graph_set_grad(c->g, false);
    xv_graph_set_training(c->g, false);
    *out = c;
    return XV_OK;
}

void xvlm_ctx_free(xvlm_ctx *c) {
    if (!c) return;
    xv_graph_free(c->g);
    free(c);
}
