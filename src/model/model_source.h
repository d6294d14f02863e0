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
/* The config and weights file of the model named by `arg`: a single-file
 * model's own, else those of the folder xv_model_resolve gives. */
xv_status xv_model_locate(const char *arg, const xv_infer_opts *opts, xv_model_config *cfg, char *weights, size_t n);
/* `cfg` at image_res pixels (0 or its own: unchanged), as the official
 * fine-tuning configs change a pretrained model's resolution (224 -> 384 px):
 * the Swin window keeps its share of the image (7 -> 12) and the loader
 * interpolates the relative-position tables. Refused when the window does not
 * scale to a whole one, or for an absolute position embedding. */
xv_status xv_config_rescale(xv_model_config *cfg, int image_res);
/* The model named by `arg` (xv_model_locate); `copy` as xv_model_load. */
xv_status xv_model_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_model **out);

#endif
