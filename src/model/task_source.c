#include "model/task_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "model/model_folder.h"

const char *xv_model_kind_name(xv_model_kind k) {
    switch (k) {
    case XV_KIND_VQA: return "a VQA model";
    case XV_KIND_CAPTIONING: return "a captioning model";
    default: return "an X-VLM retrieval/grounding model";
    }
}

/* The weights file of `arg`: the single file itself, or DIR/weights.safetensors. */
static xv_status weights_path(const char *arg, const xv_infer_opts *opts, char *path, size_t n, char *dir,
                              size_t dn) {
    if (arg && xv_model_is_single_file(arg)) {
        if (snprintf(path, n, "%s", arg) >= (int)n) return xv_error(XV_ERR_INVALID_ARG, "model path too long");
        dir[0] = '\0';
        return XV_OK;
    }
    XV_TRY(xv_model_resolve(arg, opts, dir, dn));
    if (snprintf(path, n, "%s/weights.safetensors", dir) >= (int)n)
        return xv_error(XV_ERR_INVALID_ARG, "model path too long");
    return XV_OK;
}

static bool has_prefix(const xv_st_file *f, const char *prefix) {
    const size_t n = strlen(prefix);
    for (int i = 0; i < xv_st_count(f); i++)
        if (!strncmp(xv_st_at(f, i)->name, prefix, n)) return true;
    return false;
}

xv_status xv_model_kind_of(const char *arg, const xv_infer_opts *opts, xv_model_kind *out, char *dir, size_t dn) {
    char path[4200];
    XV_TRY(weights_path(arg, opts, path, sizeof path, dir, dn));
    xv_st_file *f;
    XV_TRY(xv_st_open(path, &f));
    const bool decoder = has_prefix(f, "text_decoder."), encoder = has_prefix(f, "text_encoder.");
    xv_st_close(f);
    *out = !decoder ? XV_KIND_XVLM : encoder ? XV_KIND_VQA : XV_KIND_CAPTIONING;
    return XV_OK;
}

/* The folder of a model of kind `want`, refusing single files (their config
 * travels as metadata, which only model/model_folder.h reads) and other kinds. */
static xv_status task_dir(const char *arg, const xv_infer_opts *opts, xv_model_kind want, char *dir, size_t dn) {
    xv_model_kind k;
    XV_TRY(xv_model_kind_of(arg, opts, &k, dir, dn));
    if (k != want)
        return xv_error(XV_ERR_INVALID_ARG, "%s is %s, not %s (weights %s text_decoder.*%s)", arg,
                        xv_model_kind_name(k), xv_model_kind_name(want), k == XV_KIND_XVLM ? "without" : "with",
                        k == XV_KIND_VQA ? " and text_encoder.*" : "");
    if (!dir[0])
        return xv_error(XV_ERR_UNSUPPORTED,
                        "%s: single-file VQA/captioning models are not supported yet; use a model folder "
                        "(config.json, weights.safetensors, vocab.txt)",
                        arg);
    return XV_OK;
}

xv_status xv_vqa_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_vqa_model **out) {
    char dir[4096];
    *out = NULL;
    XV_TRY(task_dir(arg, opts, XV_KIND_VQA, dir, sizeof dir));
    return xv_vqa_load_dir(dir, copy, out);
}

xv_status xv_caption_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_caption_model **out) {
    char dir[4096];
    *out = NULL;
    XV_TRY(task_dir(arg, opts, XV_KIND_CAPTIONING, dir, sizeof dir));
    return xv_caption_load_dir(dir, copy, out);
}

/* ---- fine-tuning starts ---- */

/* Where parameter `name` comes from in a pretraining checkpoint (pretraining
 * layout); false: a fresh init. */
typedef bool (*source_fn)(const void *model, const char *name, char *buf, size_t n);

static bool caption_source_name(const void *model, const char *name, char *buf, size_t n) {
    (void)model;
    static const char dec[] = "text_decoder.";
    if (!strncmp(name, dec, strlen(dec))) return snprintf(buf, n, "text_encoder.%s", name + strlen(dec)) < (int)n;
    return snprintf(buf, n, "%s", name) < (int)n;
}

static bool vqa_source_name(const void *model, const char *name, char *buf, size_t n) {
    return xv_vqa_pretrain_source(model, name, buf, n);
}

/* The tensor `want` of f, or its fine-tuning-layout spelling (no "bert."). */
static const xv_st_tensor *find_either(const xv_st_file *f, const char *want) {
    const xv_st_tensor *t = xv_st_find(f, want);
    static const char pre[] = "text_encoder.bert.";
    if (t || strncmp(want, pre, strlen(pre))) return t;
    char alt[512];
    snprintf(alt, sizeof alt, "text_encoder.%s", want + strlen(pre));
    return xv_st_find(f, alt);
}

/* Every parameter of p from the pretraining weights `src` (renamed by
 * `source`) or a fresh init, written to `scratch`. */
static xv_status renamed_weights(const xv_params *p, const xv_st_file *src, source_fn source, const void *model,
                                 uint64_t seed, const char *scratch) {
    xv_st_writer *w;
    XV_TRY(xv_st_writer_new(&w));
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    xv_status st = XV_OK;
    for (int i = 0; st == XV_OK && i < p->n; i++) {
        const xv_tensor *t = p->items[i];
        char from[512];
        const bool copied = source(model, t->name, from, sizeof from);
        const xv_st_tensor *s = copied ? find_either(src, from) : NULL;
        const int64_t n = s && s->numel > t->numel ? s->numel : t->numel;
        float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!v) st = xv_error(XV_ERR_NOMEM, "out of memory");
        else if (copied && !s)
            st = xv_error(XV_ERR_MISSING, "%s: no tensor %s (for %s)", xv_st_path(src), from, t->name);
        else if (s && s->numel != t->numel && !strstr(t->name, "relative_position_bias_table"))
            st = xv_error(XV_ERR_SHAPE, "%s: tensor %s has %lld values, %s needs %lld", xv_st_path(src), from,
                          (long long)s->numel, t->name, (long long)t->numel);
        else if (s)
            st = xv_st_read_f32(src, s, v);
        else /* BERT's init for the new cross-attention key/value */
            for (int64_t k = 0; k < t->numel; k++) v[k] = t->ndim > 1 ? 0.02f * xv_rng_normal(&rng) : 0.0f;
        /* a relative-position table of another window keeps its shape: the loader interpolates it */
        if (st == XV_OK) st = s ? xv_st_writer_add(w, t->name, XV_ST_F32, s->shape, s->ndim, v, false)
                                : xv_st_writer_add(w, t->name, XV_ST_F32, t->shape, t->ndim, v, false);
        free(v);
    }
    if (st == XV_OK) st = xv_st_writer_write(w, scratch);
    xv_st_writer_free(w);
    return st;
}

/* The pretraining weights of dir renamed into p, loaded from scratch. */
static xv_status from_pretrained(const char *dir, const char *scratch, xv_params *p, int window, source_fn source,
                                 const void *model, uint64_t seed, xv_st_file **mapped) {
    char *wpath = xv_fs_join(dir, "weights.safetensors");
    xv_st_file *src = NULL;
    xv_status st = wpath ? xv_st_open(wpath, &src) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(wpath);
    if (st == XV_OK) st = renamed_weights(p, src, source, model, seed, scratch);
    xv_st_close(src);
    if (st == XV_OK) st = xv_params_load_file(p, window, scratch, true, mapped);
    return st;
}

/* The pretraining model at `dir` that a task model starts from: *own is set
 * when dir already holds a model of the task's kind `own_kind` (loaded as it
 * is, not converted); otherwise cfg gets the pretraining config. */
static xv_status pretraining_source(const char *dir, xv_model_kind own_kind, const char *task, bool *own,
                                    xv_model_config *cfg) {
    xv_model_kind kind;
    char resolved[4096], wpath[4096];
    XV_TRY(xv_model_kind_of(dir, NULL, &kind, resolved, sizeof resolved));
    *own = kind == own_kind;
    if (*own) return XV_OK;
    if (kind != XV_KIND_XVLM)
        return xv_error(XV_ERR_INVALID_ARG, "%s is %s: %s starts from a pretraining model", dir,
                        xv_model_kind_name(kind), task);
    return xv_model_dir_config(dir, cfg, wpath, sizeof wpath);
}

xv_status xv_vqa_from_pretrained(const char *dir, const char *scratch, uint64_t seed, xv_vqa_model **out) {
    *out = NULL;
    bool own;
    xv_model_config cfg;
    XV_TRY(pretraining_source(dir, XV_KIND_VQA, "VQA", &own, &cfg));
    if (!own && !scratch)
        return xv_error(XV_ERR_INVALID_ARG, "%s is a pretraining model: give a VQA model (or an output folder to "
                        "make one from it)", dir);
    if (own) return xv_vqa_load_dir(dir, true, out);
    XV_TRY(xv_vqa_create(&cfg, out));
    xv_status st = from_pretrained(dir, scratch, &(*out)->params, cfg.vision.window, vqa_source_name, *out, seed,
                                   &(*out)->mapped);
    if (st != XV_OK) {
        xv_vqa_free(*out);
        *out = NULL;
    }
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s: VQA model from the pretraining weights", dir);
}

xv_status xv_caption_from_pretrained(const char *dir, const char *scratch, xv_caption_model **out) {
    *out = NULL;
    bool own;
    xv_model_config cfg;
    XV_TRY(pretraining_source(dir, XV_KIND_CAPTIONING, "captioning", &own, &cfg));
    if (!own && !scratch)
        return xv_error(XV_ERR_INVALID_ARG, "%s is a pretraining model: give a captioning model (or an output folder to "
                        "make one from it)", dir);
    if (own) return xv_caption_load_dir(dir, true, out);
    XV_TRY(xv_caption_create(&cfg, out));
    xv_status st = from_pretrained(dir, scratch, &(*out)->params, cfg.vision.window, caption_source_name, *out, 0,
                                   &(*out)->mapped);
    if (st != XV_OK) {
        xv_caption_free(*out);
        *out = NULL;
    }
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s: captioning model from the pretraining weights", dir);
}

xv_status xv_task_model_write(const char *dir, const xv_model_config *cfg, const xv_params *p,
                              const char *vocab_path) {
    XV_TRY(xv_fs_mkdir_p(dir));
    char *cfg_json = xv_config_to_json(cfg);
    char *cpath = xv_fs_join(dir, "config.json"), *wpath = xv_fs_join(dir, "weights.safetensors");
    char *vpath = xv_fs_join(dir, "vocab.txt");
    xv_st_writer *w = NULL;
    xv_status st = cfg_json && cpath && wpath && vpath ? xv_st_writer_new(&w) : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == XV_OK && i < p->n + p->n_alias; i++) {
        const xv_tensor *t = i < p->n ? p->items[i] : p->alias_targets[i - p->n];
        st = xv_st_writer_add(w, i < p->n ? t->name : p->alias_names[i - p->n], XV_ST_F32, t->shape, t->ndim, t->data,
                              true);
    }
    if (st == XV_OK) st = xv_st_writer_write(w, wpath);
    if (st == XV_OK) st = xv_fs_write_file(cpath, cfg_json, strlen(cfg_json), XV_FS_DURABLE);
    uint8_t *vocab = NULL;
    size_t len = 0;
    if (st == XV_OK) st = xv_fs_read_file(vocab_path, 64 << 20, &vocab, &len);
    if (st == XV_OK) st = xv_fs_write_file(vpath, vocab, len, XV_FS_DURABLE);
    free(vocab);
    xv_st_writer_free(w);
    free(cfg_json), free(cpath), free(wpath), free(vpath);
    return st;
}
