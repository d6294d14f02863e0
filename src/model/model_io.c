/* Model weights from / to safetensors under the official state_dict names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/relpos_interp.h"
#include "model/model.h"

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Buffers of the official state_dict that are recomputed here, never loaded. */
static bool ignorable(const char *name) {
    return ends_with(name, ".relative_position_index") || ends_with(name, ".attn_mask") ||
           ends_with(name, "embeddings.position_ids");
}

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

/* Layout and optional parts from the tensor names of the file. */
static xv_status detect_parts(const xv_st_file *f, const char *path, xv_model_parts *parts) {
    memset(parts, 0, sizeof *parts);
    const char *bert = NULL, *plain = NULL;
    bool vision_proj = false;
    for (int i = 0; i < xv_st_count(f); i++) {
        const char *n = xv_st_at(f, i)->name;
        if (starts_with(n, "text_encoder.bert.")) bert = n;
        else if (starts_with(n, "text_encoder.cls.")) parts->mlm = true;
        else if (starts_with(n, "text_encoder.")) plain = n;
        else if (starts_with(n, "vision_proj.")) vision_proj = true;
        else if (starts_with(n, "text_proj.") || !strcmp(n, "temp")) parts->itc = true;
        else if (starts_with(n, "itm_head.")) parts->itm = true;
        else if (starts_with(n, "bbox_head.")) parts->bbox = true;
        else if (starts_with(n, "cls_head.")) parts->nlvr = true;
        else if (starts_with(n, "ta_head.")) parts->ta = true;
    }
    /* vision_proj alone belongs to the text-assignment model (ta_head). */
    parts->itc |= vision_proj && !parts->ta;
    if (bert && plain)
        return xv_error(XV_ERR_FORMAT,
                        "%s: mixes the pretraining text layout (%s) with the fine-tuning one (%s)", path, bert, plain);
    if (!bert && !plain) return xv_error(XV_ERR_MISSING, "%s: no text_encoder.* tensors", path);
    parts->layout = bert ? XV_LAYOUT_PRETRAIN : XV_LAYOUT_FINETUNE;
    return XV_OK;
}

/* The file tensor holding parameter t: its own name or one of its aliases
 * (tied weights); when both are stored they must be equal. */
static xv_status find_source(const xv_params *p, const xv_st_file *f, const char *path, const xv_tensor *t,
                             const xv_st_tensor **out) {
    const xv_st_tensor *src = xv_st_find(f, t->name);
    const char *src_name = t->name;
    for (int a = 0; a < p->n_alias; a++) {
        if (p->alias_targets[a] != t) continue;
        const xv_st_tensor *al = xv_st_find(f, p->alias_names[a]);
        if (!al) continue;
        if (!src) {
            src = al;
            src_name = p->alias_names[a];
        } else if (al->dtype != src->dtype || al->nbytes != src->nbytes || memcmp(al->data, src->data, al->nbytes)) {
            return xv_error(XV_ERR_FORMAT, "%s: tied tensors %s and %s differ (they must be the same weights)", path,
                            src_name, p->alias_names[a]);
        }
    }
    *out = src;
    return XV_OK;
}

/* Tables resized on this load, reported once at its end. */
typedef struct {
    int count;
    int64_t src_rows, dst_rows; /* of the first one */
    bool mixed;                 /* stages with different sizes */
} relpos_report;

static bool is_float(const xv_st_tensor *s) {
    return s->dtype == XV_ST_F32 || s->dtype == XV_ST_F16 || s->dtype == XV_ST_BF16 || s->dtype == XV_ST_F64;
}

/* A Swin relative_position_bias_table stored for another window than the
 * config's: resampled to the config's size as the official loader does
 * (§2.12), so a 224-px model serves at 384 px (window 7 -> 12). */
static xv_status interpolate_table(xv_tensor *t, const xv_st_file *f, const xv_st_tensor *src, const char *path,
                                   relpos_report *rep) {
    float *tmp = malloc(sizeof(float) * (size_t)src->numel);
    if (!tmp) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_st_read_f32(f, src, tmp);
    if (st == XV_OK) st = xv_relpos_interp(tmp, (int)src->shape[0], (int)src->shape[1], t->data, (int)t->shape[0]);
    free(tmp);
    if (st != XV_OK) return xv_error_wrap(st, "%s: tensor %s (window change)", path, src->name);
    if (!rep->count++) rep->src_rows = src->shape[0], rep->dst_rows = t->shape[0];
    else rep->mixed |= rep->src_rows != src->shape[0] || rep->dst_rows != t->shape[0];
    return XV_OK;
}

static xv_status assign(xv_params *p, int i, const xv_tensor *keep_owned, const xv_st_file *f,
                        const xv_st_tensor *src, const char *path, bool copy, relpos_report *rep) {
    xv_tensor *t = p->items[i];
    char want[96], got[96];
    if (!is_float(src))
        return xv_error(XV_ERR_FORMAT, "%s: tensor %s has dtype %s, expected a float type", path, src->name,
                        xv_st_dtype_name(src->dtype));
    if (src->ndim != t->ndim || memcmp(src->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim)) {
        if (strstr(t->name, "relative_position_bias_table") && src->ndim == 2 && t->ndim == 2 &&
            src->shape[1] == t->shape[1] && p->owns_data[i])
            return interpolate_table(t, f, src, path, rep);
        return xv_error(XV_ERR_SHAPE,
                        "%s: tensor %s has shape %s, the config expects %s (config.json and the weights disagree)", path,
                        src->name, shape_str(src->shape, src->ndim, got, sizeof got),
                        shape_str(t->shape, t->ndim, want, sizeof want));
    }
    bool aligned = ((uintptr_t)src->data % sizeof(float)) == 0;
    if (!copy && src->dtype == XV_ST_F32 && aligned && t != keep_owned) {
        if (p->owns_data[i]) free(t->data);
        t->data = (float *)src->data; /* read-only mapping: inference only */
        p->owns_data[i] = false;
        return XV_OK;
    }
    xv_status st = xv_st_read_f32(f, src, t->data);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s: tensor %s", path, src->name);
}

static int side(int64_t rows) {
    int k = 1;
    while ((int64_t)k * k < rows) k++;
    return k;
}

xv_status xv_params_load_st(xv_params *p, const xv_tensor *keep_owned, int window, const xv_st_file *f,
                            const char *path, bool copy) {
    relpos_report rep = {0};
    int missing = 0;
    const xv_tensor *first_missing = NULL;
    for (int i = 0; i < p->n; i++) {
        const xv_st_tensor *src = NULL;
        XV_TRY(find_source(p, f, path, p->items[i], &src));
        if (!src) {
            if (!missing++) first_missing = p->items[i];
            continue;
        }
        XV_TRY(assign(p, i, keep_owned, f, src, path, copy, &rep));
    }
    if (missing) {
        char want[96];
        return xv_error(XV_ERR_MISSING, "%s: tensor %s %s is missing%s", path, first_missing->name,
                        shape_str(first_missing->shape, first_missing->ndim, want, sizeof want),
                        missing > 1 ? " (and more: the config and the weights disagree)" : "");
    }
    for (int i = 0; i < xv_st_count(f); i++) {
        const xv_st_tensor *s = xv_st_at(f, i);
        if (ignorable(s->name) || xv_params_find(p, s->name)) continue;
        char got[96];
        return xv_error(XV_ERR_FORMAT, "%s: unexpected tensor %s %s (no such parameter for this config)", path,
                        s->name, shape_str(s->shape, s->ndim, got, sizeof got));
    }
    if (rep.count)
        fprintf(stderr, "xvlm: %s: interpolated %d relative-position tables %dx%d -> %dx%d%s (config window %d)\n",
                path, rep.count, side(rep.src_rows), side(rep.src_rows), side(rep.dst_rows), side(rep.dst_rows),
                rep.mixed ? " and other sizes" : "", window);
    return XV_OK;
}

xv_status xv_params_load_file(xv_params *p, int window, const char *weights_path, bool copy, xv_st_file **mapped) {
    *mapped = NULL;
    xv_st_file *f;
    XV_TRY(xv_st_open(weights_path, &f));
    xv_status st = xv_params_load_st(p, NULL, window, f, weights_path, copy);
    bool borrowed = false;
    for (int i = 0; st == XV_OK && i < p->n; i++) borrowed |= !p->owns_data[i];
    if (borrowed) *mapped = f; /* closed by the caller after the parameters */
    /* On failure nothing is kept: p may point into the closed mapping, to be freed only. */
    else xv_st_close(f);
    return st;
}

xv_status xv_model_load(const xv_model_config *cfg, const char *weights_path, bool copy, xv_model **out) {
    *out = NULL;
    xv_st_file *f;
    XV_TRY(xv_st_open(weights_path, &f));
    xv_model_parts parts;
    xv_status st = detect_parts(f, weights_path, &parts);
    xv_model *m = NULL;
    if (st == XV_OK) st = xv_model_create(cfg, &parts, &m);
    if (st == XV_OK) st = xv_params_load_st(&m->params, m->temp, cfg->vision.window, f, weights_path, copy);
    if (st != XV_OK) {
        xv_model_free(m);
        xv_st_close(f);
        return st;
    }
    bool borrowed = false;
    for (int i = 0; i < m->params.n; i++) borrowed |= !m->params.owns_data[i];
    if (borrowed) m->mapped = f; /* freed with the model */
    else xv_st_close(f);
    *out = m;
    return XV_OK;
}

xv_status xv_model_dir_config(const char *dir, xv_model_config *cfg, char *weights_path, size_t n) {
    char cpath[4096];
    if (snprintf(cpath, sizeof cpath, "%s/config.json", dir) >= (int)sizeof cpath ||
        snprintf(weights_path, n, "%s/weights.safetensors", dir) >= (int)n)
        return xv_error(XV_ERR_INVALID_ARG, "model folder path too long");
    return xv_config_load(cpath, cfg);
}

xv_status xv_model_load_dir(const char *dir, bool copy, xv_model **out) {
    char wpath[4096];
    xv_model_config cfg;
    XV_TRY(xv_model_dir_config(dir, &cfg, wpath, sizeof wpath));
    return xv_model_load(&cfg, wpath, copy, out);
}

/* Metadata "config" and "vocab" when `vocab` is not NULL (a single-file model). */
static xv_status save(const xv_model *m, const char *path, const char *vocab) {
    xv_st_writer *w;
    XV_TRY(xv_st_writer_new(&w));
    const xv_params *p = &m->params;
    xv_status st = XV_OK;
    for (int i = 0; st == XV_OK && i < p->n; i++) {
        const xv_tensor *t = p->items[i];
        st = xv_st_writer_add(w, t->name, XV_ST_F32, t->shape, t->ndim, t->data, true);
    }
    for (int a = 0; st == XV_OK && a < p->n_alias; a++) {
        const xv_tensor *t = p->alias_targets[a];
        st = xv_st_writer_add(w, p->alias_names[a], XV_ST_F32, t->shape, t->ndim, t->data, true);
    }
    /* The official state_dict carries position_ids (I64 [1, max_positions]). */
    int64_t n = m->cfg.text.max_positions;
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)n);
    if (!pos && st == XV_OK) st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        for (int64_t k = 0; k < n; k++) pos[k] = k;
        const char *name = m->parts.layout == XV_LAYOUT_PRETRAIN ? "text_encoder.bert.embeddings.position_ids"
                                                                 : "text_encoder.embeddings.position_ids";
        st = xv_st_writer_add(w, name, XV_ST_I64, XV_SHAPE(1, n), pos, false);
    }
    if (st == XV_OK) st = xv_st_writer_meta(w, "format", "pt");
    char *cfg = NULL;
    if (st == XV_OK && vocab) {
        cfg = xv_config_to_json(&m->cfg);
        st = cfg ? xv_st_writer_meta(w, "config", cfg) : xv_error(XV_ERR_NOMEM, "out of memory");
        if (st == XV_OK) st = xv_st_writer_meta(w, "vocab", vocab);
    }
    if (st == XV_OK) st = xv_st_writer_write(w, path);
    free(cfg);
    free(pos);
    xv_st_writer_free(w);
    return st;
}

xv_status xv_model_save(const xv_model *m, const char *path) { return save(m, path, NULL); }

xv_status xv_model_save_single(const xv_model *m, const char *path, const char *vocab) {
    if (!vocab) return xv_error(XV_ERR_INVALID_ARG, "%s: a single-file model needs its vocabulary", path);
    return save(m, path, vocab);
}
