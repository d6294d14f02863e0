/* What the VQA and captioning handles (src/api/vqa.c, caption.c) share:
 * opening the vocabulary that goes with a model, and preparing image files;
 * and what every model handle shares: the precision of its products. */
#ifndef XV_API_TASK_COMMON_H
#define XV_API_TASK_COMMON_H

#include "core/tensor.h"
#include "data/tokenizer.h"
#include "model/captioning.h"
#include "xvlm.h"

/* The tokenizer of the model at `path` (override: params->vocab_path), no
 * larger than `vocab` word embeddings. */
xv_status xv_api_task_tokenizer(const char *path, const xvlm_model_params *params, int vocab, xv_tokenizer **out);

/* params->precision applied to a freshly loaded model's parameters
 * (model/precision.h); an unknown value is an error. */
xv_status xv_api_set_precision(xv_params *weights, const xvlm_model_params *params);

/* paths[0..n) decoded and test-transformed into a new graph tensor
 * [n, 3, res, res]; an unreadable image is named in the error. */
xv_status xv_api_task_images(xv_graph *g, const char *const *paths, int n, int res, xv_tensor **out);

/* ids/atts of a text batch as I32 graph tensors [batch, len]. */
xv_status xv_api_task_text(xv_graph *g, const xv_text_batch *b, xv_tensor **ids, xv_tensor **atts);

/* xvlm_caption_image_files on a captioning model and tokenizer (graph g: eval
 * mode, no gradients; reset here), for the public handle and the
 * fine-tuning evaluation. */
xv_status xv_api_caption_files(const xv_caption_model *m, const xv_tokenizer *tok, xv_graph *g,
                               const char *const *paths, int n, const xvlm_caption_params *params, char **captions,
                               float *scores);

#endif
