#include "model/task_source.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
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
