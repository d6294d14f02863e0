/* The X-VLM model configuration: Swin vision settings, BERT text settings and
 * the model-level sizes (projection width, temperature, head LayerNorm eps).
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

#include "xvlm.h"

#define XV_SWIN_MAX_STAGES 8

typedef struct {
    int image_res;      /* input pixels per side */
    int patch;          /* Swin patch embedding stride (4) */
    int in_chans;       /* 3 */
    int embed_dim;      /* channels of stage 0; stage s has embed_dim·2^s */
    int n_stages;       /* len(depths) */
    int depths[XV_SWIN_MAX_STAGES];
    int heads[XV_SWIN_MAX_STAGES];
    int window;         /* configured window; a stage no larger than it uses its own size */
    float mlp_ratio;    /* 4 */
    float drop_path_rate; /* stochastic depth, max rate (0.1 in the official build) */
    float ln_eps;       /* 1e-5 */
    int vision_width;   /* embed_dim·2^(n_stages-1) */
    int region_stride;  /* the yaml's patch_size (32): final stride, used for region masks */
    bool ape;           /* absolute position embedding after the patch embedding (the official
                           Swin's `ape`; X-VLM builds it off, small demo models trained from
                           scratch on flat backgrounds use it to localise) */
    bool ape_sincos;    /* "ape_init": "sincos": a fresh model starts its ape from the fixed 2-D
                           sine-cosine table (MAE's) instead of N(0, 0.02), so that tokens carry
                           where they are from the first step (not official; init only) */
} xv_swin_config;

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

typedef struct {
    xv_swin_config vision;
    xv_bert_config text;
    int embed_dim;       /* ITC projection width (0: the config has none, e.g. VQA) */
    float temp;          /* initial temperature */
    float temp_min, temp_max; /* pretraining clamp [0.001, 0.5] */
    float head_ln_eps;   /* LayerNorm eps inside build_mlp heads (PyTorch default 1e-5) */
} xv_model_config;

/* Per-stage geometry derived from a Swin config. */
typedef struct {
    int res;      /* tokens per side at this stage */
    int dim;      /* channels */
    int heads;
    int window;   /* effective window (the stage size when it is <= the configured window) */
    int shift;    /* shift of odd blocks (0 when the window covers the stage) */
    int n_windows;/* windows per image */
} xv_swin_stage_geom;

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

/* Geometry of stage s (valid only for a validated config). */
xv_swin_stage_geom xv_swin_stage(const xv_swin_config *v, int s);
/* Patch tokens at the output of the vision encoder (7·7 = 49 at 224). */
int xv_config_num_patches(const xv_model_config *c);

/* Write the config in the project's config.json layout (the `vision`, `text`
 * and model-level keys read by xv_config_parse_json). Caller frees. */
char *xv_config_to_json(const xv_model_config *c);

#endif
