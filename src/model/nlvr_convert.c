/* An NLVR2 model (paired layout) from a pretraining checkpoint: the official
 * renaming of models/model_nlvr.py load_pretrained (load_nlvr_pretrain =
 * False), which duplicates every fusion layer into the two layers of its
 * pair. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/relpos_interp.h"
#include "model/nlvr.h"

/* Every occurrence of `what` removed from s (in place). */
static void remove_all(char *s, const char *what) {
    size_t n = strlen(what);
    for (char *p = strstr(s, what); p; p = strstr(p, what)) memmove(p, p + n, strlen(p + n) + 1);
}

/* key with dot-separated field 3 replaced by `layer`. */
static int with_layer(const char *key, int layer, char *out) {
    const char *p = key;
    for (int dots = 0; dots < 3; p++)
        if (*p == '.') dots++;
    const char *end = strchr(p, '.');
    int k = snprintf(out, 256, "%.*s%d%s", (int)(p - key), key, layer, end ? end : "");
    return k >= 0 && k < 256 ? 0 : -1;
}

int xv_nlvr_rename(const char *key, int fusion_layer, char out[2][256]) {
    if (strlen(key) >= 256) return -1;
    strcpy(out[0], key);
    if (!strstr(key, "text_encoder.") || !(strstr(key, "bert.") || strstr(key, "roberta."))) return 1;
    remove_all(out[0], "bert.");
    remove_all(out[0], "roberta.");
    if (!strstr(out[0], "layer.")) return 1;
    /* text_encoder.encoder.layer.<l>.…: field 3 is the layer number. */
    const char *f = out[0];
    for (int dots = 0; dots < 3 && (f = strchr(f, '.')); dots++) f++;
    char *end;
    long l = f ? strtol(f, &end, 10) : -1;
    if (!f || end == f || (*end && *end != '.') || l < 0) return -1; /* the official code would raise */
    if (l < fusion_layer) return 1;
    char renamed[256];
    strcpy(renamed, out[0]);
    int first = fusion_layer + 2 * ((int)l - fusion_layer);
    if (with_layer(renamed, first, out[0]) || with_layer(renamed, first + 1, out[1])) return -1;
    return 2;
}

/* src into parameter t: same shape, or a relative-position table of another
 * window (interpolated as the official loader does). */
static xv_status fill(xv_tensor *t, const xv_st_file *f, const xv_st_tensor *src, const char *path) {
    bool same = src->ndim == t->ndim && !memcmp(src->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (same) return xv_st_read_f32(f, src, t->data);
    if (strstr(t->name, "relative_position_bias_table") && src->ndim == 2 && t->ndim == 2 &&
        src->shape[1] == t->shape[1]) {
        float *tmp = malloc(sizeof(float) * (size_t)src->numel);
        if (!tmp) return xv_error(XV_ERR_NOMEM, "out of memory");
        xv_status st = xv_st_read_f32(f, src, tmp);
        if (st == XV_OK) st = xv_relpos_interp(tmp, (int)src->shape[0], (int)src->shape[1], t->data, (int)t->shape[0]);
        free(tmp);
        return st;
    }
    char want[96], got[96];
    xv_shape_str(t, want, sizeof want);
    xv_tensor s = {.ndim = src->ndim};
    memcpy(s.shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    return xv_error(XV_ERR_SHAPE, "%s: tensor %s has shape %s, the NLVR model's %s needs %s", path, src->name,
                    xv_shape_str(&s, got, sizeof got), t->name, want);
}

xv_status xv_nlvr_load_pretrained(xv_model *m, const char *weights_path, int *loaded) {
    if (loaded) *loaded = 0;
    if (!xv_model_paired(&m->parts))
        return xv_error(XV_ERR_INVALID_ARG, "NLVR load: the model has no paired layout (no cls_head / ta_head)");
    for (int i = 0; i < m->params.n; i++)
        if (!m->params.owns_data[i])
            return xv_error(XV_ERR_INVALID_ARG, "NLVR load: %s is borrowed from a read-only file",
                            m->params.items[i]->name);
    xv_st_file *f;
    XV_TRY(xv_st_open(weights_path, &f));
    xv_status st = XV_OK;
    int n = 0;
    for (int i = 0; st == XV_OK && i < xv_st_count(f); i++) {
        const xv_st_tensor *src = xv_st_at(f, i);
        char names[2][256];
        int k = xv_nlvr_rename(src->name, m->cfg.text.fusion_layer, names);
        if (k < 0) st = xv_error(XV_ERR_FORMAT, "%s: tensor name %s cannot be renamed", weights_path, src->name);
        for (int j = 0; st == XV_OK && j < k; j++) {
            xv_tensor *t = xv_params_find(&m->params, names[j]);
            if (!t) continue; /* unexpected after renaming: ignored (strict=False) */
            st = fill(t, f, src, weights_path);
            n++;
        }
    }
    xv_st_close(f);
    if (st == XV_OK && loaded) *loaded = n;
    return st;
}

/* Whether the weights carry the pretraining text layout. */
static xv_status require_bert_layout(const char *weights_path) {
    xv_st_file *f;
    XV_TRY(xv_st_open(weights_path, &f));
    bool bert = false, paired = false;
    for (int i = 0; i < xv_st_count(f); i++) {
        const char *n = xv_st_at(f, i)->name;
        bert |= !strncmp(n, "text_encoder.bert.", 18);
        paired |= !strncmp(n, "cls_head.", 9) || !strncmp(n, "ta_head.", 8);
    }
    xv_st_close(f);
    if (paired) return xv_error(XV_ERR_INVALID_ARG, "%s: already an NLVR2 model (cls_head / ta_head)", weights_path);
    if (!bert)
        return xv_error(XV_ERR_INVALID_ARG, "%s: no text_encoder.bert.* tensors: the NLVR2 conversion duplicates the "
                        "fusion layers of a pretraining checkpoint (a fine-tuned model's text_encoder.* would fill only "
                        "half of the paired layers)", weights_path);
    return XV_OK;
}

/* A new paired-layout model with `parts` from a pretraining checkpoint. */
static xv_status paired_from_pretrained(const xv_model_config *src_cfg, const char *weights_path, uint64_t seed,
                                        const xv_model_parts *parts, xv_model **out) {
    *out = NULL;
    XV_TRY(require_bert_layout(weights_path));
    xv_model_config cfg = *src_cfg;
    cfg.text.layers = cfg.text.fusion_layer + 2 * (src_cfg->text.layers - src_cfg->text.fusion_layer);
    xv_model *m;
    XV_TRY(xv_model_create(&cfg, parts, &m));
    xv_status st = xv_model_init_random(m, seed);
    if (st == XV_OK) st = xv_nlvr_load_pretrained(m, weights_path, NULL);
    if (st != XV_OK) {
        xv_model_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

xv_status xv_nlvr_from_pretrained(const xv_model_config *src_cfg, const char *weights_path, uint64_t seed,
                                  xv_model **out) {
    const xv_model_parts parts = {.layout = XV_LAYOUT_FINETUNE, .nlvr = true};
    return paired_from_pretrained(src_cfg, weights_path, seed, &parts, out);
}

xv_status xv_ta_from_pretrained(const xv_model_config *src_cfg, const char *weights_path, uint64_t seed,
                                xv_model **out) {
    if (src_cfg->embed_dim <= 0)
        return xv_error(XV_ERR_INVALID_ARG, "%s: the text-assignment model pairs images by vision_proj features, "
                        "but the pretraining model has no embed_dim", weights_path);
    const xv_model_parts parts = {.layout = XV_LAYOUT_FINETUNE, .ta = true};
    return paired_from_pretrained(src_cfg, weights_path, seed, &parts, out);
}

xv_status xv_nlvr_from_ta(const xv_model *ta, uint64_t seed, xv_model **out) {
    *out = NULL;
    if (!ta->parts.ta) return xv_error(XV_ERR_INVALID_ARG, "NLVR from text assignment: the model has no ta_head");
    const xv_model_parts parts = {.layout = XV_LAYOUT_FINETUNE, .nlvr = true};
    xv_model *m;
    XV_TRY(xv_model_create(&ta->cfg, &parts, &m));
    xv_status st = xv_model_init_random(m, seed);
    /* every tensor of the NLVR2 model that the text-assignment one has, verbatim (load_nlvr_pretrain) */
    for (int i = 0; st == XV_OK && i < m->params.n; i++) {
        xv_tensor *t = m->params.items[i];
        const xv_tensor *src = xv_params_find(&ta->params, t->name);
        if (!src) continue; /* cls_head: new */
        if (src->numel != t->numel) st = xv_error(XV_ERR_SHAPE, "NLVR from text assignment: %s differs in size", t->name);
        else memcpy(t->data, src->data, sizeof(float) * (size_t)t->numel);
    }
    if (st != XV_OK) {
        xv_model_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}
