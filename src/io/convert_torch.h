/* Official X-VLM PyTorch checkpoint -> safetensors + config.json.
 *
 * Keeps the official key names and both text layouts (text_encoder.bert.* of
 * pretraining, text_encoder.* of fine-tuning) as they are, and applies what the
 * official loader applies: the buffers relative_position_index, attn_mask and
 * position_ids are dropped (the model rebuilds them), and every Swin
 * relative_position_bias_table whose size differs from the target window is
 * interpolated (relpos_interp.h; written as F32, as the official loader
 * produces float32 there). Other tensors keep their dtype and bytes.
 *
 * Memory: each storage is read once and handed to the writer without a copy;
 * peak memory is about the size of the output. */
#ifndef XV_IO_CONVERT_TORCH_H
#define XV_IO_CONVERT_TORCH_H

#include <stdbool.h>
#include <stddef.h>

#include "io/xvlm_config_infer.h"
#include "core/error.h"

typedef struct {
    int written, dropped, interpolated;
    size_t bytes; /* tensor data written */
} xv_convert_stats;

/* True for the buffers the converter leaves out. */
bool xv_convert_drops(const char *name);

/* Convert `in` to `weights_path` (safetensors; the inferred config is also in
 * its __metadata__ "config", and `vocab`, the text of a vocab.txt, in
 * "vocab" when not NULL: then the file is a single-file model) and, when
 * `config_path` is not NULL, a pretty-printed config.json. Both files are
 * written atomically. `stats` may be NULL. */
xv_status xv_convert_torch(const char *in, const char *weights_path, const char *config_path,
                           const xv_infer_opts *opts, const char *vocab, xv_convert_stats *stats);

#endif
