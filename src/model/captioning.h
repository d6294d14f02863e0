/* The official captioning model (models/model_captioning.py and
 * model_captioning_pretrain.py; vqa-captioning sheet §3): the Swin vision
 * encoder and the whole BERT text stack as a causal LM over the image tokens
 * (`text_decoder.bert.*`: layers >= fusion_layer cross-attend to the image,
 * K/V width = vision width) with its tied LM head (`text_decoder.cls.*`).
 * Generation is model/generate.h over this decoder. */
#ifndef XV_MODEL_CAPTIONING_H
#define XV_MODEL_CAPTIONING_H

#include "io/safetensors.h"
#include "model/config.h"
#include "model/generate.h"
#include "nn/swin.h"

typedef struct xv_caption_model {
    xv_model_config cfg;
    xv_params params;
    xv_swin vision;
    xv_bert_lm decoder;
    int sep_id;         /* [SEP]: ends captions (102, bert-base-uncased's; set it from the vocabulary
                           when that differs) */
    xv_st_file *mapped; /* weights borrowed from this mapping (NULL if all owned) */
} xv_caption_model;

xv_status xv_caption_create(const xv_model_config *cfg, xv_caption_model **out);
/* DIR/config.json + DIR/weights.safetensors, strict (xv_params_load_st). */
xv_status xv_caption_load_dir(const char *dir, bool copy, xv_caption_model **out);
void xv_caption_free(xv_caption_model *m);

typedef struct {
    xv_tensor *hidden;     /* [B, L, H] */
    xv_tensor *logits;     /* [B, L, V] */
    xv_tensor *token_loss; /* [B, L-1] loss of target t+1 (0 where ignored) */
    xv_tensor *loss;       /* [1] mean over the scored targets */
} xv_caption_lm_out;

/* The LM loss on ids/atts I32 [B, L] with labels I32 [B, L] (-100 ignored:
 * padding, and the prompt when fine-tuning; xv_bert_lm_labels makes them),
 * cross-attending to image_embeds [B, T, Cv]. smoothing 0.1 for COCO
 * fine-tuning (Captioning.py), 0 for domain pretraining. Returns out->loss. */
xv_tensor *xv_caption_lm_loss(xv_graph *g, const xv_caption_model *m, xv_tensor *image_embeds, xv_tensor *ids,
                              xv_tensor *atts, xv_tensor *labels, float smoothing, xv_caption_lm_out *out);

/* The decoder over image_embeds [R, T, Cv] (one row per sequence) for model/generate.h. */
xv_lm_source xv_caption_source(const xv_caption_model *m, xv_tensor *image_embeds);

/* SCST loss (Captioning_scst.py, ScstRewardCriterion) given the sampled
 * sequences: sequences I32 [R, S] (prompt of prompt_len ids + the samples,
 * image_embeds rows alike), chosen I32 [R, n] the drawn token of each step
 * and rewards [R] (CIDEr-D of the sample minus that of its image's greedy
 * caption, constants). lp_r = mean chosen-token log-prob over the row's steps
 * up to and including its [SEP]; loss = mean_r(-lp_r · reward_r). *mean_logprob
 * (optional) gets lp [R]. */
xv_tensor *xv_caption_scst_loss(xv_graph *g, const xv_caption_model *m, xv_tensor *image_embeds, xv_tensor *sequences,
                                int prompt_len, xv_tensor *chosen, const float *rewards, xv_tensor **mean_logprob);

#endif
