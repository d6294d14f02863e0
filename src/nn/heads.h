/* Heads of X-VLM (§3.6, §4): build_mlp heads (itm_head, bbox_head) and the
 * BERT MLM head whose decoder is tied to the word embeddings. */
#ifndef XV_NN_HEADS_H
#define XV_NN_HEADS_H

#include "nn/layers.h"

/* build_mlp(d, o): .0 Linear(d, 2d), .1 LayerNorm(2d), GELU, .3 Linear(2d, o). */
typedef struct {
    xv_linear_p fc0, fc3;
    xv_ln_p ln1;
} xv_mlp_head;

xv_status xv_mlp_head_init(xv_mlp_head *h, xv_params *p, const char *prefix, int in, int out, float ln_eps);
xv_tensor *xv_mlp_head_forward(xv_graph *g, const xv_mlp_head *h, xv_tensor *x);

/* cls.predictions: transform (dense, GELU, LayerNorm) then x·Eᵀ + bias with E
 * the word embeddings. The decoder names are registered as aliases:
 * `prefix.decoder.weight` -> word embeddings, `prefix.decoder.bias` -> `prefix.bias`. */
typedef struct {
    xv_linear_p dense;
    xv_ln_p ln;
    xv_tensor *decoder_w; /* the word embedding table (not owned by the head) */
    xv_tensor *bias;      /* [vocab] */
} xv_mlm_head;

xv_status xv_mlm_head_init(xv_mlm_head *h, xv_params *p, const char *prefix, int hidden, float ln_eps,
                           xv_tensor *word_embeddings);
/* x[..., H] -> logits [..., vocab]. */
xv_tensor *xv_mlm_head_forward(xv_graph *g, const xv_mlm_head *h, xv_tensor *x);

#endif
