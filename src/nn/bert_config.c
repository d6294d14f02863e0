#include "nn/bert_config.h"

#include <string.h>

void xv_bert_config_defaults(xv_bert_config *t) {
    memset(t, 0, sizeof *t);
    t->hidden = 768;
    t->layers = 12;
    t->heads = 12;
    t->intermediate = 3072;
    t->vocab = 30522;
    t->max_positions = 512;
    t->type_vocab = 2;
    t->fusion_layer = -1; /* required: X-VLM specific, no transformers default */
    t->pad_id = 0;
    t->ln_eps = 1e-12f;
    t->hidden_dropout = 0.1f;
    t->attn_dropout = 0.1f;
    t->init_range = 0.02f;
}

xv_status xv_bert_config_validate(const xv_bert_config *t) {
    if (t->hidden < 1 || t->layers < 1 || t->heads < 1 || t->intermediate < 1 || t->vocab < 1 ||
        t->max_positions < 1 || t->type_vocab < 1 || t->encoder_width < 1)
        return xv_error(XV_ERR_INVALID_ARG,
                        "text: hidden_size %d, num_hidden_layers %d, num_attention_heads %d, intermediate_size %d, "
                        "vocab_size %d, max_position_embeddings %d, type_vocab_size %d and encoder_width %d "
                        "must all be >= 1",
                        t->hidden, t->layers, t->heads, t->intermediate, t->vocab, t->max_positions, t->type_vocab,
                        t->encoder_width);
    /* Bounded before anything is allocated: an absurd config is refused with its
     * key and limit instead of growing memory until the machine gives out. The
     * limits are ~30x BERT-large's and the whole model must fit 64 GiB. */
    static const struct {
        const char *key;
        int limit;
    } limits[] = {{"hidden_size", 1 << 16},      {"num_hidden_layers", 1 << 10}, {"num_attention_heads", 1 << 12},
                  {"intermediate_size", 1 << 18}, {"vocab_size", 1 << 24},       {"max_position_embeddings", 1 << 16},
                  {"type_vocab_size", 1 << 10},  {"encoder_width", 1 << 16}};
    const int values[] = {t->hidden, t->layers, t->heads, t->intermediate, t->vocab, t->max_positions, t->type_vocab,
                          t->encoder_width};
    for (size_t k = 0; k < sizeof values / sizeof *values; k++)
        if (values[k] > limits[k].limit)
            return xv_error(XV_ERR_INVALID_ARG, "text: %s %d is beyond the limit %d", limits[k].key, values[k],
                            limits[k].limit);
    const double h = t->hidden, params = (double)t->vocab * h + (double)t->max_positions * h +
                                         (double)t->layers * (4 * h * h + 2 * h * t->intermediate) +
                                         (double)(t->layers - t->fusion_layer) * 4 * h * h;
    if (params * 4 > 64.0 * (1ull << 30))
        return xv_error(XV_ERR_INVALID_ARG, "text: ~%.0f GiB of float32 parameters (over 64 GiB): refused",
                        params * 4 / (1ull << 30));
    if (t->hidden % t->heads)
        return xv_error(XV_ERR_INVALID_ARG, "text: %d attention heads do not divide hidden_size %d", t->heads,
                        t->hidden);
    if (t->fusion_layer < 0 || t->fusion_layer > t->layers)
        return xv_error(XV_ERR_INVALID_ARG, "text: fusion_layer %d outside [0, num_hidden_layers %d]",
                        t->fusion_layer, t->layers);
    if (t->pad_id < 0 || t->pad_id >= t->vocab)
        return xv_error(XV_ERR_INVALID_ARG, "text: pad_token_id %d outside the vocabulary of %d", t->pad_id,
                        t->vocab);
    if (!(t->ln_eps > 0)) return xv_error(XV_ERR_INVALID_ARG, "text: layer_norm_eps must be > 0");
    if (!(t->hidden_dropout >= 0 && t->hidden_dropout < 1) || !(t->attn_dropout >= 0 && t->attn_dropout < 1))
        return xv_error(XV_ERR_INVALID_ARG, "text: dropout probabilities must be in [0, 1)");
    if (!(t->init_range > 0 && t->init_range < 10))
        return xv_error(XV_ERR_INVALID_ARG, "text: initializer_range must be in (0, 10)");
    return XV_OK;
}
