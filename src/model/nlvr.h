/* NLVR2 (models/model_nlvr.py) and its text-assignment domain pretraining
 * (models/model_nlvr_pretrain.py), on a model whose text encoder has the
 * paired layout (xv_model_paired: parts.nlvr / parts.ta): layers below
 * fusion_layer F read the text only; fusion layer i >= F cross-attends to
 * image (i - F) mod 2 of its pair, so even offsets read the left image and
 * odd offsets the right one, each pair of layers sharing its cross-attention
 * key/value (xv_bert_init_paired). Background: shared/docs/xvlm-nlvr-grounding.md
 * §1-2. */
#ifndef XV_MODEL_NLVR_H
#define XV_MODEL_NLVR_H

#include "model/model.h"

/* The paired text/fusion stack ('multi_modal' mode over every layer): ids I32
 * [B, L] with atts I32 [B, L]; left/right image tokens [B, T, Cv] (all
 * visible, as the official code passes all-ones masks). *embedding_out and
 * layer_out[0 .. layers) (each optional) get the embedding output and every
 * layer's output [B, L, H]. Returns the last layer's output. */
xv_tensor *xv_nlvr_text(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts, xv_tensor *left,
                        xv_tensor *right, xv_tensor **embedding_out, xv_tensor **layer_out);

typedef struct {
    xv_tensor *images;    /* F32 [2B, 3, R, R]: the first image of every pair, then every second one */
    xv_tensor *text_ids;  /* I32 [B, L]: [CLS] + wordpieces, no [SEP], padded with 0 */
    xv_tensor *text_atts; /* I32 [B, L] 0/1 */
    xv_tensor *targets;   /* I32 [B]: 1 = "True", 0 = "False" (its length splits the images, as officially) */
} xv_nlvr_batch;

typedef struct {
    xv_tensor *vision_embeds;         /* [2B, 1+P, Cv] */
    xv_tensor *text_embedding_output; /* [B, L, H] */
    xv_tensor **layer_out;            /* [num_hidden_layers] outputs [B, L, H] (graph memory) */
    xv_tensor *cross_cls;             /* [B, H]: cls_head input */
    xv_tensor *logits;                /* [B, 2] */
    xv_tensor *loss;                  /* [1]: mean cross-entropy */
    xv_tensor *pred_class;            /* I32 [B]: argmax of the logits */
    xv_tensor *accuracy;              /* [1]: mean(pred_class == targets), what the evaluation reports */
} xv_nlvr_out;

/* One NLVR2 step (needs parts.nlvr). Training mode and recording are g's. */
xv_status xv_nlvr_forward(xv_graph *g, const xv_model *m, const xv_nlvr_batch *b, xv_nlvr_out *out);

/* ---- text assignment (NLVR domain pretraining) -------------------------- */

/* Official draw of the text-assignment pairs from the pairing weights W [N, N]
 * (row b: where caption b's image may be paired; W[b][b] = 0): for each b in
 * order, with probability 2/3 one image j ~ W_b, then (b, j, label 0: the
 * caption's image on the left) or (j, b, label 1: on the right) with
 * probability 1/2 each; else two images j1 != j2 ~ W_b without replacement,
 * (j1, j2, label 2: neither). Uniforms come from rng. Needs N >= 3. */
xv_status xv_ta_draw_pairs(const float *weights, int N, xv_rng *rng, int32_t *left, int32_t *right,
                           int32_t *labels);

typedef struct {
    xv_tensor *images;    /* F32 [N, 3, R, R] */
    xv_tensor *text_ids;  /* I32 [N, L]: caption b describes image b */
    xv_tensor *text_atts; /* I32 [N, L] */
    /* I32 [N] rows of images fed to the even / odd fusion layers and the
     * labels; NULL: drawn with rng (xv_ta_draw_pairs). */
    xv_tensor *left_idx, *right_idx, *labels;
    xv_rng *rng;
} xv_ta_batch;

typedef struct {
    xv_tensor *vision_embeds;         /* [N, 1+P, Cv] */
    xv_tensor *image_feat;            /* [N, E]: normalised vision_proj of the image CLS (no gradient) */
    xv_tensor *sim;                   /* [N, N]: image_feat·image_featᵀ / 0.07 */
    xv_tensor *weights;               /* [N, N]: row softmax of sim, diagonal zeroed */
    xv_tensor *left_idx, *right_idx, *labels; /* I32 [N]: the pairs used */
    xv_tensor *text_embedding_output; /* [N, L, H] */
    xv_tensor **layer_out;            /* [num_hidden_layers] outputs [N, L, H] */
    xv_tensor *cross_cls;             /* [N, H]: ta_head input */
    xv_tensor *logits;                /* [N, 3] */
    xv_tensor *loss;                  /* [1] */
} xv_ta_out;

/* One text-assignment step (needs parts.ta). vision_proj is used without
 * gradient (it never trains in this stage, as officially). */
xv_status xv_ta_forward(xv_graph *g, const xv_model *m, const xv_ta_batch *b, xv_ta_out *out);

/* ---- initialisation from a pretraining checkpoint ----------------------- */

/* The official NLVR renaming (load_pretrained, load_nlvr_pretrain = False) of
 * one source key: only keys containing "text_encoder." and "bert." (or
 * "roberta.") change: every "bert." / "roberta." is removed, and a layer
 * l >= fusion_layer (`text_encoder.encoder.layer.l.*`) becomes the two layers
 * F + 2(l - F) and F + 2(l - F) + 1. Writes 1 or 2 names into out and
 * returns how many (the key itself when it does not change); -1 when a name
 * does not fit. */
int xv_nlvr_rename(const char *key, int fusion_layer, char out[2][256]);

/* Fills m (paired layout) from a pretraining-layout weights file through
 * xv_nlvr_rename: every parameter found under a renamed source key gets that
 * tensor; the others (cls_head, ta_head: new in this model) keep their values.
 * A renamed tensor of the wrong shape is an error naming both shapes; keys
 * without a target are ignored as the official non-strict load does.
 * *loaded (optional) gets the number of parameters filled. */
xv_status xv_nlvr_load_pretrained(xv_model *m, const char *weights_path, int *loaded);

/* A new NLVR2 model (cls_head, paired layout: num_hidden_layers F + 2·(N − F))
 * from a pretraining model of config src_cfg whose weights are weights_path
 * (pretraining text layout `text_encoder.bert.*`, as the official conversion
 * needs: a fine-tuning-layout file would fill only half the paired layers, so
 * it is refused). cls_head starts from seed (N(0, 0.02) matrices, LayerNorm
 * 1/0, zero biases). */
xv_status xv_nlvr_from_pretrained(const xv_model_config *src_cfg, const char *weights_path, uint64_t seed,
                                  xv_model **out);
/* The text-assignment model of NLVR_pretrain.py (ta_head, vision_proj, paired
 * layout) from a pretraining model the same way: vision_proj is loaded,
 * ta_head is new (seed, as cls_head above). Needs config embed_dim. */
xv_status xv_ta_from_pretrained(const xv_model_config *src_cfg, const char *weights_path, uint64_t seed,
                                xv_model **out);
/* An NLVR2 model from a text-assignment one, as NLVR.py loads the domain-
 * pretrained checkpoint (load_nlvr_pretrain: the paired layout as it is,
 * vision_proj and ta_head dropped, a new cls_head from seed). */
xv_status xv_nlvr_from_ta(const xv_model *ta, uint64_t seed, xv_model **out);

#endif
