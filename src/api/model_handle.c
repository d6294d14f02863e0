/* xvlm_model_load (a model folder, a single-file model, or an official
 * checkpoint converted once into the cache: model/model_source.h), the model id, and contexts. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_internal.h"
#include "api/task_common.h"
#include "core/error.h"
#include "io/checksum.h"
#include "model/model_folder.h"
#include "model/model_source.h"

xvlm_model_params xvlm_model_params_default(void) {
    return (xvlm_model_params){
        .vocab_path = NULL, .image_res = 0, .text_heads = 0, .copy_weights = false, .precision = XVLM_FP32};
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

static bool is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static xv_status load_vocab(const xv_model_vocab *v, xvlm_model *mm) {
    XV_TRY(xv_tokenizer_from_memory(v->text, v->len, v->origin, &mm->tok));
    int32_t nv = xv_tokenizer_vocab_size(mm->tok);
    if (nv > mm->m->cfg.text.vocab)
        return xv_error(XV_ERR_SHAPE, "%s: the vocabulary has %d entries but the model's word embeddings have %d rows "
                                      "(a vocab.txt of another model?)",
                        v->origin, nv, mm->m->cfg.text.vocab);
    return XV_OK;
}

xv_status xv_api_model_load(const char *path, const xvlm_model_params *params, xvlm_model **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_model_load: no model path given");
    xvlm_model_params p = params ? *params : xvlm_model_params_default();
    if (!is_dir(path) && !is_file(path))
        return xv_error(XV_ERR_MISSING, "%s: no such model folder, model file or checkpoint file", path);
    /* The vocabulary first: a missing one is reported before the (possibly long) weight loading. */
    xv_model_vocab vocab;
    XV_TRY(xv_model_vocab_find(path, p.vocab_path, &vocab));
    xvlm_model *mm = calloc(1, sizeof *mm);
    xv_status st = mm ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    const xv_infer_opts infer = {.image_res = p.image_res, .window = 0, .text_heads = p.text_heads};
    if (st == XV_OK) st = xv_model_open(path, &infer, p.copy_weights != 0, &mm->m);
    if (st == XV_OK) st = load_vocab(&vocab, mm);
    if (st == XV_OK) st = model_id(mm);
    if (st == XV_OK) st = xv_api_set_precision(&mm->m->params, &p);
    xv_model_vocab_free(&vocab);
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
    o->has_nlvr = m->parts.nlvr;
    o->text_layers = m->cfg.text.layers;
    o->fusion_layer = m->cfg.text.fusion_layer;
    int64_t side = 0, patches = xv_config_num_patches(&m->cfg);
    while ((side + 1) * (side + 1) <= patches) side++;
    o->map_side = side * side == patches ? (int)side : 0;
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
