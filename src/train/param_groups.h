/* Which parameters get weight decay and which the larger learning rate, by
 * name, exactly as the official optim.py groups them.
 *
 * - No decay when the name *contains* any of the official no_decay substrings
 *   ("bias", "LayerNorm.weight", "norm.weight", "norm1.weight", ...). Being a
 *   substring test, Swin's relative_position_bias_table is not decayed, while
 *   `temp`, embeddings and the build_mlp head LayerNorm weights (`*_head.1.weight`)
 *   are.
 * - lr·lr_mult for the names in the model's `init_params` list (tensors trained
 *   from scratch). The list depends on the model kind and its config. */
#ifndef XV_TRAIN_PARAM_GROUPS_H
#define XV_TRAIN_PARAM_GROUPS_H

#include <stdbool.h>

#include "core/error.h"

bool xv_param_no_decay(const char *name);

typedef enum {
    XV_INIT_PARAMS_NONE = 0,     /* retrieval, grounding, captioning, ...: empty list */
    XV_INIT_PARAMS_PRETRAIN,     /* models/model_pretrain.py */
    XV_INIT_PARAMS_NLVR,         /* models/model_nlvr.py: cls_head */
    XV_INIT_PARAMS_NLVR_PRETRAIN, /* models/model_nlvr_pretrain.py: ta_head */
    XV_INIT_PARAMS_VQA           /* models/model_vqa.py: decoder cross-attention key/value */
} xv_init_params_kind;

/* The model facts that decide the init_params list. */
typedef struct {
    xv_init_params_kind kind;
    /* Pretraining: the text encoder is BertForMaskedLM loaded from bert-base, so
     * its missing keys are the cross-attention tensors of layers
     * [fusion_layer, num_hidden_layers), under `text_prefix` ("text_encoder.bert."). */
    int fusion_layer;      /* config_bert.json fusion_layer (6) */
    int num_hidden_layers; /* config_bert.json num_hidden_layers (12) */
    const char *text_prefix;
    /* Heads the pretraining model builds (all true for Pretrain.py). */
    bool contrastive; /* vision_proj, text_proj, temp */
    bool matching;    /* itm_head */
    bool bbox;        /* bbox_head */
    /* VQA: the list is non-empty only when the decoder's cross-attention width
     * (text hidden size) differs from the vision width. */
    bool vqa_widths_differ;
} xv_init_params_spec;

/* The spec of the official pretraining model (config_bert.json, all four losses). */
xv_init_params_spec xv_init_params_pretrain_default(void);

/* The official init_params list, materialised. */
typedef struct {
    char **names;
    int n;
    /* VQA's list is a name filter over the decoder's parameters rather than a
     * fixed list; it is kept as a rule. */
    bool vqa_rule;
} xv_init_params;

xv_status xv_init_params_build(const xv_init_params_spec *spec, xv_init_params *out);
void xv_init_params_free(xv_init_params *ip);
/* Exact membership, as Python's `n in large_lr`. */
bool xv_init_params_contains(const xv_init_params *ip, const char *name);

#endif
