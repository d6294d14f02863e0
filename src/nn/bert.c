#include "nn/bert.h"

#include "nn/batch_split.h"
#include "nn/relay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Additive masks of the official code: text padding keys get -10000, masked
 * image tokens -1e9 (fp32 path of invert_attention_mask). */
#define TEXT_MASK_VALUE (-10000.0f)
#define IMAGE_MASK_VALUE (-1e9f)

static xv_status attn_init(xv_params *p, const char *prefix, const char *part, int H, int kv_in,
                           xv_linear_p *q, xv_linear_p *k, xv_linear_p *v, xv_linear_p *o, xv_ln_p *ln,
                           float eps) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.%s.self.query", prefix, part));
    XV_TRY(xv_nn_linear_new(p, q, name, H, H, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.%s.self.key", prefix, part));
    XV_TRY(xv_nn_linear_new(p, k, name, kv_in, H, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.%s.self.value", prefix, part));
    XV_TRY(xv_nn_linear_new(p, v, name, kv_in, H, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.%s.output.dense", prefix, part));
    XV_TRY(xv_nn_linear_new(p, o, name, H, H, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.%s.output.LayerNorm", prefix, part));
    return xv_nn_ln_new(p, ln, name, H, eps);
}

/* Cross-attention of the odd layer of an NLVR pair: its own query, output
 * dense and LayerNorm; key and value are the even layer's tensors, known
 * under this layer's names too (models/model_nlvr.py share_cross_attention). */
static xv_status paired_cross_init(xv_params *p, const char *lp, int H, float eps, const xv_bert_layer *even,
                                   xv_bert_layer *L) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.crossattention.self.query", lp));
    XV_TRY(xv_nn_linear_new(p, &L->cq, name, H, H, true));
    const struct {
        const char *part;
        const xv_linear_p *src;
        xv_linear_p *dst;
    } kv[2] = {{"key", &even->ck, &L->ck}, {"value", &even->cv, &L->cv}};
    for (int j = 0; j < 2; j++) {
        *kv[j].dst = *kv[j].src;
        XV_TRY(xv_nn_name(name, sizeof name, "%s.crossattention.self.%s.weight", lp, kv[j].part));
        XV_TRY(xv_params_alias(p, name, kv[j].src->w));
        XV_TRY(xv_nn_name(name, sizeof name, "%s.crossattention.self.%s.bias", lp, kv[j].part));
        XV_TRY(xv_params_alias(p, name, kv[j].src->b));
    }
    XV_TRY(xv_nn_name(name, sizeof name, "%s.crossattention.output.dense", lp));
    XV_TRY(xv_nn_linear_new(p, &L->cross_out, name, H, H, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.crossattention.output.LayerNorm", lp));
    return xv_nn_ln_new(p, &L->cross_ln, name, H, eps);
}

static xv_status init_layers(xv_bert *b, const xv_bert_config *cfg, xv_params *p, const char *prefix, bool paired) {
    memset(b, 0, sizeof *b);
    if (paired && (cfg->layers - cfg->fusion_layer) % 2)
        return xv_error(XV_ERR_INVALID_ARG,
                        "text: the NLVR layout needs an even number of fusion layers (num_hidden_layers %d - "
                        "fusion_layer %d is odd)",
                        cfg->layers, cfg->fusion_layer);
    b->cfg = *cfg;
    const int H = cfg->hidden;
    const float eps = cfg->ln_eps;
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.embeddings.word_embeddings.weight", prefix));
    b->word = xv_params_add(p, name, XV_SHAPE(cfg->vocab, H));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.embeddings.position_embeddings.weight", prefix));
    b->pos = xv_params_add(p, name, XV_SHAPE(cfg->max_positions, H));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.embeddings.token_type_embeddings.weight", prefix));
    b->type = xv_params_add(p, name, XV_SHAPE(cfg->type_vocab, H));
    if (!b->word || !b->pos || !b->type) return XV_ERR_NOMEM;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.embeddings.LayerNorm", prefix));
    XV_TRY(xv_nn_ln_new(p, &b->emb_ln, name, H, eps));

    b->layers = calloc((size_t)cfg->layers, sizeof *b->layers);
    if (!b->layers) return xv_error(XV_ERR_NOMEM, "out of memory for %d BERT layers", cfg->layers);
    for (int i = 0; i < cfg->layers; i++) {
        xv_bert_layer *L = &b->layers[i];
        char lp[200];
        XV_TRY(xv_nn_name(lp, sizeof lp, "%s.encoder.layer.%d", prefix, i));
        XV_TRY(attn_init(p, lp, "attention", H, H, &L->q, &L->k, &L->v, &L->attn_out, &L->attn_ln, eps));
        L->cross = i >= cfg->fusion_layer;
        if (L->cross && paired && (i - cfg->fusion_layer) % 2)
            XV_TRY(paired_cross_init(p, lp, H, eps, &b->layers[i - 1], L));
        else if (L->cross)
            XV_TRY(attn_init(p, lp, "crossattention", H, cfg->encoder_width, &L->cq, &L->ck, &L->cv,
                             &L->cross_out, &L->cross_ln, eps));
        XV_TRY(xv_nn_name(name, sizeof name, "%s.intermediate.dense", lp));
        XV_TRY(xv_nn_linear_new(p, &L->inter, name, H, cfg->intermediate, true));
        XV_TRY(xv_nn_name(name, sizeof name, "%s.output.dense", lp));
        XV_TRY(xv_nn_linear_new(p, &L->out, name, cfg->intermediate, H, true));
        XV_TRY(xv_nn_name(name, sizeof name, "%s.output.LayerNorm", lp));
        XV_TRY(xv_nn_ln_new(p, &L->out_ln, name, H, eps));
    }
    return XV_OK;
}

xv_status xv_bert_init(xv_bert *b, const xv_bert_config *cfg, xv_params *p, const char *prefix) {
    return init_layers(b, cfg, p, prefix, false);
}

xv_status xv_bert_init_paired(xv_bert *b, const xv_bert_config *cfg, xv_params *p, const char *prefix) {
    return init_layers(b, cfg, p, prefix, true);
}

void xv_bert_free(xv_bert *b) {
    free(b->layers);
    memset(b, 0, sizeof *b);
}

/* Embeddings of ids I32 [B, L] at positions first .. first + L - 1. */
static xv_tensor *embed_at(xv_graph *g, const xv_bert *b, xv_tensor *ids, int64_t first) {
    if (!ids) return NULL;
    if (ids->dtype != XV_I32 || ids->ndim != 2)
        return xv_graph_fail(g, XV_ERR_SHAPE, "text: token ids must be I32 [B, L]");
    const int64_t B = ids->shape[0], L = ids->shape[1];
    if (first + L > b->cfg.max_positions)
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: length %lld exceeds max_position_embeddings %d",
                             (long long)(first + L), b->cfg.max_positions);
    xv_tensor *pos_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(L));
    xv_tensor *type_ids = xv_tensor_zeros(g, XV_I32, XV_SHAPE(B, L)); /* token type always 0 */
    if (!pos_ids || !type_ids) return NULL;
    for (int64_t t = 0; t < L; t++) pos_ids->idata[t] = (int32_t)(first + t);
    xv_tensor *e = xv_embedding(g, b->word, ids, b->cfg.pad_id);
    e = xv_add(g, e, xv_embedding(g, b->type, type_ids, -1)); /* same order as the official sum */
    e = xv_add(g, e, xv_embedding(g, b->pos, pos_ids, -1));   /* [L, H] broadcast over B */
    e = xv_nn_ln(g, &b->emb_ln, e);
    return xv_dropout(g, e, b->cfg.hidden_dropout);
}

xv_tensor *xv_bert_embed(xv_graph *g, const xv_bert *b, xv_tensor *ids) { return embed_at(g, b, ids, 0); }

/* dropout(dense(h)) + res; one fused op where dropout is the identity. */
static xv_tensor *dense_residual(xv_graph *g, const xv_linear_p *l, xv_tensor *h, xv_tensor *res, float p) {
    if (!xv_graph_training(g) || p == 0) return xv_nn_linear_add(g, l, h, res);
    return xv_add(g, xv_dropout(g, xv_nn_linear(g, l, h), p), res);
}

/* Attention of x's queries over keys k and values v [B, Lk, H] (already
 * projected), then output dense + residual + LayerNorm. */
static xv_tensor *attend(xv_graph *g, const xv_bert *b, const xv_linear_p *q, const xv_linear_p *o, const xv_ln_p *ln,
                         xv_tensor *x, xv_tensor *k, xv_tensor *v, xv_tensor *key_mask, xv_tensor *group_mask,
                         xv_tensor **probs_out) {
    xv_attn_args a = {0};
    a.heads = b->cfg.heads;
    a.scale = (float)(1.0 / sqrt((double)(b->cfg.hidden / b->cfg.heads)));
    a.key_mask = key_mask;
    a.group_mask = group_mask;
    a.dropout = b->cfg.attn_dropout;
    a.probs_out = probs_out;
    xv_tensor *attended = xv_attention(g, xv_nn_linear(g, q, x), k, v, &a);
    return xv_nn_ln(g, ln, dense_residual(g, o, attended, x, b->cfg.hidden_dropout));
}

static xv_tensor *attention_block(xv_graph *g, const xv_bert *b, const xv_linear_p *q, const xv_linear_p *k,
                                  const xv_linear_p *v, const xv_linear_p *o, const xv_ln_p *ln, xv_tensor *x,
                                  xv_tensor *kv_src, xv_tensor *key_mask, xv_tensor *group_mask,
                                  xv_tensor **probs_out) {
    return attend(g, b, q, o, ln, x, xv_nn_linear(g, k, kv_src), xv_nn_linear(g, v, kv_src), key_mask, group_mask,
                  probs_out);
}

/* The feed-forward half of a layer: intermediate GELU, output dense + residual + LayerNorm. */
static xv_tensor *feed_forward(xv_graph *g, const xv_bert *b, const xv_bert_layer *L, xv_tensor *x) {
    xv_tensor *h = xv_nn_linear_gelu(g, &L->inter, x);
    return xv_nn_ln(g, &L->out_ln, dense_residual(g, &L->out, h, x, b->cfg.hidden_dropout));
}

/* One layer on x with the additive masks already built: the text mask is
 * either per key (text_mask [B, L]) or per query and key (self_mask [B, L, L],
 * the decoder's causal form); *cross_probs (optional) gets the
 * cross-attention probabilities. */
static xv_tensor *layer_run(xv_graph *g, const xv_bert *b, const xv_bert_layer *L, xv_tensor *x,
                            xv_tensor *text_mask, xv_tensor *self_mask, xv_tensor *image, xv_tensor *image_mask,
                            xv_tensor **cross_probs) {
    x = attention_block(g, b, &L->q, &L->k, &L->v, &L->attn_out, &L->attn_ln, x, x, text_mask, self_mask, NULL);
    if (L->cross)
        x = attention_block(g, b, &L->cq, &L->ck, &L->cv, &L->cross_out, &L->cross_ln, x, image, image_mask, NULL,
                            cross_probs);
    return feed_forward(g, b, L, x);
}

/* Layers [from, to) on x with the additive masks already built. */
static xv_tensor *layers_run(xv_graph *g, const xv_bert *b, int from, int to, xv_tensor *x, xv_tensor *text_mask,
                             xv_tensor *self_mask, xv_tensor *image, xv_tensor *image_mask) {
    xv_relay r;
    if (!xv_relay_begin(&r, g)) return NULL;
    xv_graph *cg = g;
    for (int i = from; i < to && xv_relay_ok(&r, cg, x); i++) {
        cg = xv_relay_next(&r, &x);
        x = layer_run(cg, b, &b->layers[i], x, text_mask, self_mask, image, image_mask, NULL);
    }
    xv_tensor *out = xv_relay_ok(&r, cg, x) ? xv_relay_keep(&r, cg, x) : NULL;
    xv_relay_end(&r);
    return out;
}

struct layers_args {
    const xv_bert *b;
    int from, to;
};

static xv_tensor *layers_share(xv_graph *g, void *user, xv_tensor *const *in) {
    const struct layers_args *c = user;
    return layers_run(g, c->b, c->from, c->to, in[0], in[1], in[2], in[3], in[4]);
}

/* Decoder self-attention mask [B, L, L]: query q sees key k iff k <= q and k
 * is not padding; others get -10000 once (the official extended mask). */
static xv_tensor *causal_mask(xv_graph *g, xv_tensor *atts) {
    const int64_t B = atts->shape[0], L = atts->shape[1];
    xv_tensor *m = xv_tensor_new(g, XV_F32, XV_SHAPE(B, L, L));
    if (!m) return NULL;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t q = 0; q < L; q++)
            for (int64_t k = 0; k < L; k++)
                m->data[(bi * L + q) * L + k] = k <= q && atts->idata[bi * L + k] ? 0.0f : TEXT_MASK_VALUE;
    return m;
}

/* The additive masks of layers [from, to): text_mask (per key) or, causal,
 * self_mask (per query and key); image_mask NULL when every image token is
 * visible. Checks the inputs first; false (the graph failed) on error. */
typedef struct {
    xv_tensor *text, *self, *image;
} layer_masks;

static bool build_masks(xv_graph *g, const xv_bert *b, xv_tensor *x, int from, int to, xv_tensor *text_atts,
                        bool causal, xv_tensor *image, xv_tensor *image_atts, layer_masks *m) {
    *m = (layer_masks){0};
    if (!x || !text_atts) return false;
    const xv_bert_config *c = &b->cfg;
    if (from < 0 || to > c->layers || from > to) {
        xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: layer range [%d, %d) outside [0, %d)", from, to, c->layers);
        return false;
    }
    if (x->ndim != 3 || x->shape[2] != c->hidden || text_atts->dtype != XV_I32 || text_atts->ndim != 2 ||
        text_atts->shape[0] != x->shape[0] || text_atts->shape[1] != x->shape[1]) {
        xv_graph_fail(g, XV_ERR_SHAPE, "text: hidden states [B, L, %d] need an I32 mask [B, L]", c->hidden);
        return false;
    }
    if (causal) m->self = causal_mask(g, text_atts);
    else m->text = xv_nn_key_mask(g, text_atts, TEXT_MASK_VALUE);
    if (to > c->fusion_layer && to > from) {
        if (!image) {
            xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: layers >= %d cross-attend, but no image tokens",
                          c->fusion_layer);
            return false;
        }
        if (image->ndim != 3 || image->shape[0] != x->shape[0] || image->shape[2] != c->encoder_width) {
            xv_graph_fail(g, XV_ERR_SHAPE, "text: image tokens must be [%lld, T, %d]", (long long)x->shape[0],
                          c->encoder_width);
            return false;
        }
        if (image_atts) {
            if (image_atts->dtype != XV_I32 || image_atts->ndim != 2 || image_atts->shape[0] != image->shape[0] ||
                image_atts->shape[1] != image->shape[1]) {
                xv_graph_fail(g, XV_ERR_SHAPE, "text: image mask must be I32 [B, T] like the image tokens");
                return false;
            }
            m->image = xv_nn_key_mask(g, image_atts, IMAGE_MASK_VALUE);
        }
    }
    return xv_graph_status(g) == XV_OK;
}

static xv_tensor *layers_masked(xv_graph *g, const xv_bert *b, xv_tensor *x, int from, int to, xv_tensor *text_atts,
                                bool causal, xv_tensor *image, xv_tensor *image_atts) {
    layer_masks m;
    if (!build_masks(g, b, x, from, to, text_atts, causal, image, image_atts, &m)) return NULL;
    struct layers_args lc = {b, from, to};
    xv_tensor *in[5] = {x, m.text, m.self, image, m.image};
    /* Sequences are independent: in inference, one stream of them per thread. */
    return xv_batch_split(g, layers_share, &lc, in, 5);
}

xv_tensor *xv_bert_layers(xv_graph *g, const xv_bert *b, xv_tensor *x, int from, int to, xv_tensor *text_atts,
                          xv_tensor *image, xv_tensor *image_atts) {
    return layers_masked(g, b, x, from, to, text_atts, false, image, image_atts);
}

xv_tensor *xv_bert_decode(xv_graph *g, const xv_bert *b, xv_tensor *ids, xv_tensor *text_atts, xv_tensor *image,
                          xv_tensor *image_atts) {
    return layers_masked(g, b, xv_bert_embed(g, b, ids), 0, b->cfg.layers, text_atts, true, image, image_atts);
}

/* ---------------------------------------------------------------- decoding with a cache */

void xv_bert_cache_free(xv_bert_cache *c) {
    free(c->self_k);
    memset(c, 0, sizeof *c);
}

xv_status xv_bert_cache_begin(xv_graph *g, const xv_bert *b, xv_tensor *image, xv_tensor *image_atts,
                              xv_bert_cache *c) {
    memset(c, 0, sizeof *c);
    const int n = b->cfg.layers;
    c->self_k = calloc((size_t)(4 * n), sizeof *c->self_k);
    if (!c->self_k) return xv_error(XV_ERR_NOMEM, "text: out of memory for a decoder cache");
    c->self_v = c->self_k + n, c->cross_k = c->self_k + 2 * n, c->cross_v = c->self_k + 3 * n;
    if (!image || image->ndim != 3 || image->shape[2] != b->cfg.encoder_width) {
        xv_bert_cache_free(c);
        return xv_error(XV_ERR_SHAPE, "text: the decoder cache needs encoder states [R, T, %d]", b->cfg.encoder_width);
    }
    c->rows = image->shape[0], c->n_layers = n;
    if (image_atts) c->image_mask = xv_nn_key_mask(g, image_atts, IMAGE_MASK_VALUE);
    for (int i = b->cfg.fusion_layer; i < n; i++) {
        c->cross_k[i] = xv_nn_linear(g, &b->layers[i].ck, image);
        c->cross_v[i] = xv_nn_linear(g, &b->layers[i].cv, image);
    }
    xv_status st = xv_graph_status(g);
    if (st != XV_OK) xv_bert_cache_free(c);
    return st;
}

xv_status xv_bert_cache_select(xv_graph *g, xv_bert_cache *c, xv_tensor *rows) {
    for (int i = 0; c->len > 0 && i < c->n_layers; i++) {
        c->self_k[i] = xv_gather_rows(g, c->self_k[i], rows);
        c->self_v[i] = xv_gather_rows(g, c->self_v[i], rows);
    }
    return xv_graph_status(g);
}

/* The new tokens' self-attention mask [1, n, len + n] when they are more than
 * one: query q (position len + q) sees keys <= len + q. NULL for one token. */
static xv_tensor *step_mask(xv_graph *g, int64_t len, int64_t n) {
    if (n == 1) return NULL;
    xv_tensor *m = xv_tensor_new(g, XV_F32, XV_SHAPE(1, n, len + n));
    for (int64_t q = 0; m && q < n; q++)
        for (int64_t k = 0; k < len + n; k++) m->data[q * (len + n) + k] = k <= len + q ? 0.0f : TEXT_MASK_VALUE;
    return m;
}

/* Keys or values [R, len + n, H]: the cached ones, then the new tokens'. */
static xv_tensor *append(xv_graph *g, xv_tensor *cached, xv_tensor *fresh) {
    if (!cached) return fresh;
    xv_tensor *both[2] = {cached, fresh};
    return xv_concat(g, both, 2, 1);
}

xv_tensor *xv_bert_decode_step(xv_graph *g, const xv_bert *b, xv_tensor *ids, xv_bert_cache *c) {
    if (!ids) return NULL;
    if (ids->ndim != 2 || ids->shape[0] != c->rows)
        return xv_graph_fail(g, XV_ERR_SHAPE, "text: decoder step ids must be I32 [%lld, n]", (long long)c->rows);
    const int64_t n = ids->shape[1];
    xv_tensor *x = embed_at(g, b, ids, c->len), *mask = step_mask(g, c->len, n);
    if (n > 1 && !mask) return NULL;
    for (int i = 0; i < b->cfg.layers && x; i++) {
        const xv_bert_layer *L = &b->layers[i];
        c->self_k[i] = append(g, c->self_k[i], xv_nn_linear(g, &L->k, x));
        c->self_v[i] = append(g, c->self_v[i], xv_nn_linear(g, &L->v, x));
        x = attend(g, b, &L->q, &L->attn_out, &L->attn_ln, x, c->self_k[i], c->self_v[i], NULL, mask, NULL);
        if (L->cross)
            x = attend(g, b, &L->cq, &L->cross_out, &L->cross_ln, x, c->cross_k[i], c->cross_v[i], c->image_mask,
                       NULL, NULL);
        x = feed_forward(g, b, L, x);
    }
    if (x) c->len += n;
    return x;
}

xv_tensor *xv_bert_layer_probed(xv_graph *g, const xv_bert *b, int i, xv_tensor *x, xv_tensor *text_atts,
                                xv_tensor *image, xv_tensor *image_atts, xv_tensor **cross_probs) {
    if (!g) return NULL;
    if (i < b->cfg.fusion_layer || i >= b->cfg.layers)
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: layer %d has no cross-attention (layers %d..%d have)", i,
                             b->cfg.fusion_layer, b->cfg.layers - 1);
    if (!xv_graph_grad_enabled(g))
        return xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: probing the cross-attention of layer %d needs a graph "
                             "that records gradients", i);
    layer_masks m;
    if (!build_masks(g, b, x, i, i + 1, text_atts, false, image, image_atts, &m)) return NULL;
    return layer_run(g, b, &b->layers[i], x, m.text, NULL, image, m.image, cross_probs);
}

xv_tensor *xv_bert_forward(xv_graph *g, const xv_bert *b, xv_bert_mode mode, xv_tensor *in, xv_tensor *text_atts,
                           xv_tensor *image, xv_tensor *image_atts) {
    switch (mode) {
    case XV_BERT_TEXT:
        return xv_bert_layers(g, b, xv_bert_embed(g, b, in), 0, b->cfg.fusion_layer, text_atts, NULL, NULL);
    case XV_BERT_FUSION:
        return xv_bert_layers(g, b, in, b->cfg.fusion_layer, b->cfg.layers, text_atts, image, image_atts);
    case XV_BERT_MULTI_MODAL:
        return xv_bert_layers(g, b, xv_bert_embed(g, b, in), 0, b->cfg.layers, text_atts, image, image_atts);
    }
    return xv_graph_fail(g, XV_ERR_INVALID_ARG, "text: unknown mode %d", (int)mode);
}
