/* Opening the generative task models (VQA, captioning) by the same policy as
 * model/model_source.h: a model folder (config.json + weights.safetensors) or
 * an official checkpoint converted once into the cache. Which model a folder
 * holds is read from its weight names, so commands and `xvlm forward` pick
 * the right one without being told. */
#ifndef XV_MODEL_TASK_SOURCE_H
#define XV_MODEL_TASK_SOURCE_H

#include "model/captioning.h"
#include "model/model_source.h"
#include "model/vqa.h"

typedef enum {
    XV_KIND_XVLM,       /* the retrieval / grounding / NLVR2 model (model/model.h) */
    XV_KIND_VQA,        /* text_encoder.* + text_decoder.* (models/model_vqa.py) */
    XV_KIND_CAPTIONING, /* text_decoder.* without text_encoder.* (models/model_captioning.py) */
} xv_model_kind;

const char *xv_model_kind_name(xv_model_kind k);

/* The kind of the model `arg` names, and its folder in dir[dn] (resolved as
 * xv_model_resolve does; "" for a single-file model, read directly). */
xv_status xv_model_kind_of(const char *arg, const xv_infer_opts *opts, xv_model_kind *out, char *dir, size_t dn);

/* Open `arg` as a VQA / captioning model; another kind is refused with a
 * message naming what it is. */
xv_status xv_vqa_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_vqa_model **out);
xv_status xv_caption_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_caption_model **out);

#endif

/* ---- fine-tuning starts (vqa-captioning sheet §2.2, §3.2) ---- */

/* A new VQA / captioning model shaped by the pretraining model folder `dir`
 * (config.json + weights.safetensors, either text layout), its weights
 * copied as the official load_pretrained copies them: VQA through
 * xv_vqa_pretrain_source (the decoder's cross-attention key/value drawn
 * N(0, 0.02), biases 0, from `seed`), captioning by the prefix swap
 * text_encoder. -> text_decoder. The renamed set is written to `scratch`
 * (a .safetensors path) and loaded from there with the strict loader. A
 * folder that already holds a model of the kind is loaded as it is (scratch
 * may then be NULL; a pretraining folder without scratch is refused). */
xv_status xv_vqa_from_pretrained(const char *dir, const char *scratch, uint64_t seed, xv_vqa_model **out);
xv_status xv_caption_from_pretrained(const char *dir, const char *scratch, xv_caption_model **out);

/* A task model as a model folder: DIR/config.json (cfg), DIR/weights.safetensors
 * (every parameter and tied name), DIR/vocab.txt (a copy of vocab_path). */
xv_status xv_task_model_write(const char *dir, const xv_model_config *cfg, const xv_params *p,
                              const char *vocab_path);
