/* Where a model comes from: every command that takes `--model` accepts either
 * a model folder (config.json + weights.safetensors, the fixture layout) or an
 * official PyTorch checkpoint (.th / .pth / .pt). A checkpoint is converted
 * once (xv_convert_torch: nothing in it is executed) into a cache folder keyed
 * by its path, size and modification time, and loaded from there. */
#ifndef XV_MODEL_SOURCE_H
#define XV_MODEL_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"

/* Resolve `arg` to a model folder written into dir[n]. The cache lives in
 * $XV_CACHE_DIR, else $XDG_CACHE_HOME/xvlm, else $HOME/.cache/xvlm. */
xv_status xv_model_resolve(const char *arg, char *dir, size_t n);
/* xv_model_resolve + xv_model_load_dir. */
xv_status xv_model_open(const char *arg, bool copy, xv_model **out);

#endif
