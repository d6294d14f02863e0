/* The X-VLM model configuration implied by a state_dict's tensor shapes, in the
 * layout of shared/fixtures/tiny/config.json ("vision", "text", "embed_dim",
 * "temp", ...), so a converted official checkpoint loads without the YAML and
 * JSON files it was trained with.
 *
 * From shapes: Swin embed dim, depths, heads (bias-table widths), window (table
 * rows), MLP ratio, vision width; BERT vocab, hidden size, positions, layers,
 * fusion_layer (first layer with cross-attention), encoder_width, FFN size;
 * embed_dim (projections). Not in the shapes: the image resolution (options,
 * else the checkpoint's own 'config', else the official pairing 7->224,
 * 12->384, 15->480) and the number of BERT heads (option, else hidden/64 as in
 * BERT-base/large). */
#ifndef XV_IO_XVLM_CONFIG_INFER_H
#define XV_IO_XVLM_CONFIG_INFER_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
} xv_named_shape;

typedef struct {
    int image_res;  /* 0: see above */
    int window;     /* 0: 7/12/15 for image_res 224/384/480, else the checkpoint's */
    int text_heads; /* 0: hidden_size / 64 */
} xv_infer_opts;

/* `ckpt_config` (the checkpoint's own 'config', may be NULL) supplies
 * image_res, temp, max_tokens, max_words, mask_prob, max_masks when present.
 * On success *out is a new JSON object (cJSON_Delete it). */
xv_status xv_infer_xvlm_config(const xv_named_shape *tensors, int n, const cJSON *ckpt_config,
                               const xv_infer_opts *opts, cJSON **out);

/* Window of Swin stage `stage` under `config`: min(window_size, resolution of
 * the stage), as the official Swin block shrinks it. 0 if config lacks fields. */
int xv_swin_stage_window(const cJSON *config, int stage);

#endif
