/* The X-VLM BERT (the official models/xbert.py, §3 of docs/architecture.md):
 * embeddings, post-LN layers with self-attention and, from `fusion_layer` on,
 * cross-attention to the image tokens. Parameter names are official under
 * `prefix` ("text_encoder.bert" in the pretraining layout, "text_encoder" in
 * the fine-tuning one). */
#ifndef XV_NN_BERT_H
#define XV_NN_BERT_H

#include "nn/bert_config.h"
#include "nn/layers.h"

typedef struct {
    xv_linear_p q, k, v, attn_out;
    xv_ln_p attn_ln;
    bool cross;                      /* layer >= fusion_layer */
    xv_linear_p cq, ck, cv, cross_out; /* ck, cv: [hidden, encoder_width] */
    xv_ln_p cross_ln;
    xv_linear_p inter, out;
    xv_ln_p out_ln;
} xv_bert_layer;

typedef struct {
    xv_bert_config cfg;
    xv_tensor *word, *pos, *type; /* [vocab, H], [max_positions, H], [type_vocab, H] */
    xv_ln_p emb_ln;
    xv_bert_layer *layers;
} xv_bert;

/* Which layers run (§3.5). */
typedef enum {
    XV_BERT_TEXT,        /* ids -> embeddings -> layers [0, fusion_layer) */
    XV_BERT_FUSION,      /* given hidden states -> layers [fusion_layer, layers) */
    XV_BERT_MULTI_MODAL  /* ids -> embeddings -> every layer */
} xv_bert_mode;

xv_status xv_bert_init(xv_bert *b, const xv_bert_config *cfg, xv_params *p, const char *prefix);
/* The NLVR2 layout (models/model_nlvr.py): the fusion layers come in pairs
 * (fusion_layer + 2k, + 2k + 1) whose cross-attention key and value are one
 * pair of tensors, known under both layers' names (the odd layer's are
 * aliases), so their gradient is the sum of both layers' and they load,
 * save and train as one. Needs an even number of fusion layers. */
xv_status xv_bert_init_paired(xv_bert *b, const xv_bert_config *cfg, xv_params *p, const char *prefix);
void xv_bert_free(xv_bert *b);

/* word[id] + type[0] + position[t] -> LayerNorm -> dropout. ids I32 [B, L]. */
xv_tensor *xv_bert_embed(xv_graph *g, const xv_bert *b, xv_tensor *ids);

/* Run layers [from, to) on x [B, L, H]. text_atts I32 [B, L] (0/1); image
 * tokens [B, T, encoder_width] with image_atts I32 [B, T] (NULL = all visible)
 * are required when the range contains a cross-attention layer. */
xv_tensor *xv_bert_layers(xv_graph *g, const xv_bert *b, xv_tensor *x, int from, int to, xv_tensor *text_atts,
                          xv_tensor *image, xv_tensor *image_atts);

/* The decoder form (BertLMHeadModel, is_decoder): ids -> embeddings -> every
 * layer, with causal and padded self-attention (query t sees the unpadded
 * tokens <= t) and, from fusion_layer on, cross-attention to `image` (any
 * encoder states of width encoder_width: image tokens, or VQA question states). */
xv_tensor *xv_bert_decode(xv_graph *g, const xv_bert *b, xv_tensor *ids, xv_tensor *text_atts, xv_tensor *image,
                          xv_tensor *image_atts);
/* Keys and values of a decoder's earlier tokens, for generation (the
 * official past_key_values): per layer the self-attention K/V [R, len, H] of
 * the tokens so far and, for the cross-attention layers, the K/V [R, T, H] of
 * the encoder states, computed once (the official code recomputes them every
 * step; they do not change). Tensors of the graphs the calls were given. */
typedef struct {
    xv_tensor **self_k, **self_v, **cross_k, **cross_v; /* [layers] each */
    xv_tensor *image_mask;                              /* additive [R, T], or NULL */
    int64_t rows, len;                                  /* R, tokens cached */
    int n_layers;
} xv_bert_cache;

/* An empty cache for encoder states image [R, T, encoder_width] (mask
 * image_atts I32 [R, T], NULL = all visible): their cross-attention K/V are
 * computed into g, which must outlive the cache. */
xv_status xv_bert_cache_begin(xv_graph *g, const xv_bert *b, xv_tensor *image, xv_tensor *image_atts,
                              xv_bert_cache *c);
void xv_bert_cache_free(xv_bert_cache *c);
/* The decoder (as xv_bert_decode, no padding) on the next tokens ids I32
 * [R, n] at positions len .. len + n - 1: they see every cached token and,
 * causally, each other. Their self K/V join the cache as tensors of g, which
 * must stay alive (not reset) until the next step has read them. Hidden [R, n, H]. */
xv_tensor *xv_bert_decode_step(xv_graph *g, const xv_bert *b, xv_tensor *ids, xv_bert_cache *c);
/* Row r of the cached self K/V <- row rows[r] (I32 [R]; beam reordering), in
 * g. The cross-attention K/V stay with their rows: beam search moves rows
 * only among an image's beams, which share their image states. */
xv_status xv_bert_cache_select(xv_graph *g, xv_bert_cache *c, xv_tensor *rows);

/* Layer i (>= fusion_layer) alone, like xv_bert_layers(g, b, x, i, i + 1, ...),
 * with its cross-attention probabilities [B, heads, L, T] (after the softmax
 * with the mask, before dropout) in *cross_probs as a recorded tensor whose
 * gradient backward fills: the official save_attention hooks (Grad-CAM). g
 * must record gradients. */
xv_tensor *xv_bert_layer_probed(xv_graph *g, const xv_bert *b, int i, xv_tensor *x, xv_tensor *text_atts,
                                xv_tensor *image, xv_tensor *image_atts, xv_tensor **cross_probs);

/* The official modes: `in` is ids (TEXT, MULTI_MODAL) or hidden states (FUSION). */
xv_tensor *xv_bert_forward(xv_graph *g, const xv_bert *b, xv_bert_mode mode, xv_tensor *in, xv_tensor *text_atts,
                           xv_tensor *image, xv_tensor *image_atts);

#endif
