/* The X-VLM model configuration: Swin vision settings (nn/swin_config.h), BERT
 * text settings (nn/bert_config.h) and the model-level sizes (projection width, temperature, head LayerNorm eps).
 *
 * Sources accepted by xv_config_load():
 * - the project's config.json layout (as ../shared/fixtures/tiny/config.json
 *   and `xvlm convert` write it): {"vision": {...}, "text": {...}, "embed_dim",
 *   "temp", "temp_clamp", "head_layer_norm_eps", ...};
 * - an official task YAML (image_res, patch_size, embed_dim, temp,
 *   vision_config, text_config), whose vision_config / text_config name the
 *   official Swin JSON (vision_width, image_res, window_size, embed_dim,
 *   depths, num_heads) and BERT JSON (config_bert.json); relative paths are
 *   tried against the YAML's folder, its parent, then the working directory.
 *
 * A model of any size comes from the same code: nothing here assumes the base
 * sizes. xv_config_validate() refuses what the official code would refuse
 * (windows that do not tile a stage, heads that do not divide widths, ...). */
#ifndef XV_MODEL_CONFIG_H
#define XV_MODEL_CONFIG_H

#include <stdbool.h>

#include "core/error.h"
#include "nn/bert_config.h"
#include "nn/swin_config.h"

typedef struct {
    xv_swin_config vision;
    xv_bert_config text;
    int embed_dim;       /* ITC projection width (0: the config has none, e.g. VQA) */
    float temp;          /* initial temperature */
    float temp_min, temp_max; /* pretraining clamp [0.001, 0.5] */
    float head_ln_eps;   /* LayerNorm eps inside build_mlp heads (PyTorch default 1e-5) */
} xv_model_config;

/* Defaults of the official code for every key a file may leave out. */
void xv_config_defaults(xv_model_config *c);

/* Load from a project config.json or an official YAML (by extension .yaml/.yml),
 * then validate. Errors name the file and the key. */
xv_status xv_config_load(const char *path, xv_model_config *out);
/* Parse a project config.json held in memory (`label` names it in errors). */
xv_status xv_config_parse_json(const char *text, const char *label, xv_model_config *out);

/* Fill `out->vision` from an official Swin JSON (config_swinB_224.json style). */
xv_status xv_config_load_swin_json(const char *path, xv_swin_config *out);
/* Fill `out->text` from an official BERT JSON (config_bert.json style). */
xv_status xv_config_load_bert_json(const char *path, xv_bert_config *out);

/* Consistency checks; errors say which setting is wrong and what was expected. */
xv_status xv_config_validate(const xv_model_config *c);

/* Patch tokens at the output of the vision encoder (7·7 = 49 at 224). */
int xv_config_num_patches(const xv_model_config *c);

/* Write the config in the project's config.json layout (the `vision`, `text`
 * and model-level keys read by xv_config_parse_json). Caller frees. */
char *xv_config_to_json(const xv_model_config *c);

#endif
