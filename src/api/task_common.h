/* What the VQA and captioning handles (src/api/vqa.c, caption.c) share:
 * opening the vocabulary that goes with a model, and preparing image files. */
#ifndef XV_API_TASK_COMMON_H
#define XV_API_TASK_COMMON_H

#include "core/tensor.h"
#include "data/tokenizer.h"
#include "xvlm.h"

/* The tokenizer of the model at `path` (override: params->vocab_path), no
 * larger than `vocab` word embeddings. */
xv_status xv_api_task_tokenizer(const char *path, const xvlm_model_params *params, int vocab, xv_tokenizer **out);

/* paths[0..n) decoded and test-transformed into a new graph tensor
 * [n, 3, res, res]; an unreadable image is named in the error. */
xv_status xv_api_task_images(xv_graph *g, const char *const *paths, int n, int res, xv_tensor **out);

/* ids/atts of a text batch as I32 graph tensors [batch, len]. */
xv_status xv_api_task_text(xv_graph *g, const xv_text_batch *b, xv_tensor **ids, xv_tensor **atts);

#endif
