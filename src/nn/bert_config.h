/* Settings of the BERT text and fusion encoders (the official config_bert.json
 * keys, plus X-VLM's fusion_layer and encoder_width), their defaults and
 * checks. Readers of files live in model/config.c. */
#ifndef XV_NN_BERT_CONFIG_H
#define XV_NN_BERT_CONFIG_H

#include "core/error.h"

typedef struct {
    int hidden;           /* hidden_size */
    int layers;           /* num_hidden_layers */
    int heads;            /* num_attention_heads */
    int intermediate;     /* intermediate_size */
    int vocab;            /* vocab_size */
    int max_positions;    /* max_position_embeddings */
    int type_vocab;       /* type_vocab_size */
    int fusion_layer;     /* first layer with cross-attention */
    int encoder_width;    /* width of the image tokens = vision_width (the official code overwrites it) */
    int pad_id;           /* pad_token_id: padding_idx of the word embeddings */
    float ln_eps;         /* layer_norm_eps (1e-12) */
    float hidden_dropout; /* hidden_dropout_prob */
    float attn_dropout;   /* attention_probs_dropout_prob */
    float init_range;     /* initializer_range: std of the N(0, σ) init of new weights (0.02) */
} xv_bert_config;

/* transformers' BertConfig defaults, for keys a BERT JSON leaves out
 * (fusion_layer -1: required, X-VLM specific). */
void xv_bert_config_defaults(xv_bert_config *t);

/* Consistency checks; errors name the setting and what was expected. */
xv_status xv_bert_config_validate(const xv_bert_config *t);

#endif
