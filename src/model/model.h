/* The X-VLM model: Swin vision encoder, BERT text/fusion encoder, ITC
 * projections, ITM/bbox heads and the tied MLM head, with parameters under
 * the official state_dict names.
 *
 * Text layouts (which prefix the BERT parameters carry):
 * - pretraining: `text_encoder.bert.*` + `text_encoder.cls.predictions.*`
 *   (the official BertForMaskedLM);
 * - fine-tuning: `text_encoder.*` (the official BertModel without pooler);
 *   `text_encoder.cls.*` may still be present (the official loader keeps it).
 * Tied names (`...cls.predictions.decoder.weight` = the word embeddings,
 * `...decoder.bias` = `...cls.predictions.bias`) are aliases.
 *
 * Weights loaded for inference can stay in the read-only mapping of the
 * safetensors file (no copy: peak memory ≈ weights + activations); training
 * needs owned copies (xv_model_load(..., copy = true)). Gradients are separate
 * buffers, so a backward pass works on borrowed weights too. */
#ifndef XV_MODEL_MODEL_H
#define XV_MODEL_MODEL_H

#include "io/safetensors.h"
#include "model/config.h"
#include "nn/bert.h"
#include "nn/heads.h"
#include "nn/swin.h"

typedef enum { XV_LAYOUT_PRETRAIN = 0, XV_LAYOUT_FINETUNE = 1 } xv_text_layout;

/* Which optional parts exist (encoders always do). */
typedef struct {
    xv_text_layout layout;
    bool mlm;  /* text_encoder[.cls].predictions.* */
    bool itc;  /* vision_proj, text_proj, temp (needs config embed_dim > 0) */
    bool itm;  /* itm_head */
    bool bbox; /* bbox_head */
    /* NLVR2 (models/model_nlvr*.py); either one builds the text encoder in the
     * paired layout (xv_bert_init_paired: config num_hidden_layers counts the
     * doubled fusion layers). */
    bool nlvr; /* cls_head: the two-image classifier */
    bool ta;   /* ta_head + vision_proj: text-assignment domain pretraining */
} xv_model_parts;

/* Whether the text encoder has the NLVR2 paired fusion layers. */
static inline bool xv_model_paired(const xv_model_parts *p) { return p->nlvr || p->ta; }

/* The official pretraining model: every part, pretraining layout. */
xv_model_parts xv_model_parts_pretrain(void);

typedef struct xv_model {
    xv_model_config cfg;
    xv_model_parts parts;
    xv_params params;
    xv_swin vision;
    xv_bert text;
    xv_mlm_head mlm;
    xv_linear_p vision_proj, text_proj;
    xv_tensor *temp; /* [] scalar; always owned (pretraining clamps it in place) */
    xv_mlp_head itm_head, bbox_head;
    xv_mlp_head cls_head; /* parts.nlvr: build_mlp(hidden -> 2) */
    xv_linear_p ta_head;  /* parts.ta: Linear(hidden -> 3) */
    xv_st_file *mapped; /* weights borrowed from this mapping (NULL if all owned) */
} xv_model;

/* A model for a validated config with zero-filled parameters. */
xv_status xv_model_create(const xv_model_config *cfg, const xv_model_parts *parts, xv_model **out);
void xv_model_free(xv_model *m);

/* Fresh weights as the official builders initialise new modules: matrices
 * N(0, 0.02), LayerNorm 1/0, biases 0, the padding row of the word embeddings
 * 0, temp = config temp. Deterministic for a seed, whatever the thread count. */
xv_status xv_model_init_random(xv_model *m, uint64_t seed);

/* Load `weights` (safetensors) into a model built for `cfg`. Layout and
 * optional parts are taken from the tensor names present. Strict: a missing,
 * unexpected, wrongly shaped or non-float tensor is an error naming it with
 * the expected and actual shapes. Ignored: Swin relative_position_index and
 * attn_mask buffers and embeddings.position_ids (recomputed / implied).
 * A relative_position_bias_table made for another window than cfg's (a 224-px
 * model loaded with a 384-px / window-12 config) is interpolated as the
 * official loader does (io/relpos_interp.h), noted once on stderr.
 * copy = false keeps F32 tensors in the file mapping (read-only). */
xv_status xv_model_load(const xv_model_config *cfg, const char *weights_path, bool copy, xv_model **out);
/* The loading rules of xv_model_load for any parameter set (the task models
 * of vqa.h and captioning.h): every parameter of p from its name or an alias
 * in f, strict, the same ignored buffers and Swin table interpolation to
 * `window`. keep_owned (may be NULL) is never left in the mapping. */
xv_status xv_params_load_st(xv_params *p, const xv_tensor *keep_owned, int window, const xv_st_file *f,
                            const char *path, bool copy);
/* Open weights_path and load p from it; *mapped gets the open file when some
 * parameter borrows from it (close it after freeing p), else NULL. When this
 * fails, p may point into the closed mapping: the caller only frees it. */
xv_status xv_params_load_file(xv_params *p, int window, const char *weights_path, bool copy, xv_st_file **mapped);

/* DIR/config.json loaded into cfg, and the path DIR/weights.safetensors. */
xv_status xv_model_dir_config(const char *dir, xv_model_config *cfg, char *weights_path, size_t n);
/* DIR/config.json + DIR/weights.safetensors (the fixture layout). */
xv_status xv_model_load_dir(const char *dir, bool copy, xv_model **out);

/* Write every parameter under its official name (tied names repeated) plus
 * the position_ids buffer, as the official state_dict has them. */
xv_status xv_model_save(const xv_model *m, const char *path);
/* xv_model_save plus __metadata__ "config" (config.json text) and "vocab"
 * (vocab.txt text): a model in one file (model/model_folder.h). */
xv_status xv_model_save_single(const xv_model *m, const char *path, const char *vocab);

/* ---- forward pieces (record on g when it has grad enabled) ---------------- */

/* images [N, 3, R, R] -> [N, 1+P, Cv]: slot 0 = mean of the P normalised patch
 * tokens. stage_out (optional, n_stages entries) gets each Swin stage's output. */
xv_tensor *xv_model_vision(xv_graph *g, const xv_model *m, xv_tensor *images, xv_tensor **stage_out);
/* The same for any model's Swin (the task models of vqa.h, captioning.h). */
xv_tensor *xv_vision_embeds(xv_graph *g, const xv_swin *vision, xv_tensor *images, xv_tensor **stage_out);

/* Region features (§2.10) from vision_embeds [Ni, 1+P, Cv], image_atts I32
 * [B, 1+P] (0/1, at least one patch set per row: validated with the batch,
 * xv_pretrain_batch_check) and idx_to_group_img I32 [B] inside [0, Ni):
 * returns [r; T[idx]] [B, 1+P, Cv] with r the mask-weighted patch mean;
 * *full (optional) gets vision_embeds[idx]. */
xv_tensor *xv_model_region(xv_graph *g, const xv_model *m, xv_tensor *vision_embeds, xv_tensor *image_atts,
                           xv_tensor *idx_to_group_img, xv_tensor **full);

/* mode 'text': ids I32 [B, L], atts I32 [B, L] -> [B, L, H]; *embedding_out
 * (optional) gets the embedding layer's output. */
xv_tensor *xv_model_text(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts,
                         xv_tensor **embedding_out);
/* mode 'fusion': text states [B, L, H] with image tokens [B, T, Cv] and their
 * I32 mask [B, T] (NULL = all visible) -> [B, L, H]. */
xv_tensor *xv_model_fusion(xv_graph *g, const xv_model *m, xv_tensor *text_embeds, xv_tensor *text_atts,
                           xv_tensor *image_embeds, xv_tensor *image_atts);
/* mode 'multi_modal': ids through every layer with cross-attention. */
xv_tensor *xv_model_multimodal(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts,
                               xv_tensor *image_embeds, xv_tensor *image_atts);

/* L2-normalised projections of token 0: [B, T, Cv] -> [B, E], [B, L, H] -> [B, E]. */
xv_tensor *xv_model_image_feat(xv_graph *g, const xv_model *m, xv_tensor *image_embeds);
xv_tensor *xv_model_text_feat(xv_graph *g, const xv_model *m, xv_tensor *text_embeds);

/* Pretraining clamps temp into [temp_min, temp_max] in place before a step. */
void xv_model_clamp_temp(xv_model *m);

#endif
