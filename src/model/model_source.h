/* Where a model comes from: the one policy behind every `--model` argument and
 * xvlm_model_load. A model is a folder (config.json + weights.safetensors +
 * vocab.txt), a single-file model (a safetensors file carrying its config and
 * vocab as metadata, model/model_folder.h) or an official PyTorch checkpoint
 * (.th / .pth / .pt). A checkpoint is converted once (xv_convert_torch:
 * nothing in it is executed) into a cache folder keyed by its path, size,
 * modification time and the conversion options, and loaded from there. */
#ifndef XV_MODEL_SOURCE_H
#define XV_MODEL_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "io/xvlm_config_infer.h"
#include "model/model.h"

/* Resolve `arg` to a model folder written into dir[n]; `opts` (NULL: all
 * inferred) guide the conversion of a checkpoint. The cache lives in
 * $XV_CACHE_DIR, else $XDG_CACHE_HOME/xvlm, else $HOME/.cache/xvlm. */
xv_status xv_model_resolve(const char *arg, const xv_infer_opts *opts, char *dir, size_t n);
/* A single-file model directly, else xv_model_resolve + xv_model_load_dir;
 * `copy` as there. */
xv_status xv_model_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_model **out);

#endif
