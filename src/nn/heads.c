#include "nn/heads.h"

xv_status xv_mlp_head_init(xv_mlp_head *h, xv_params *p, const char *prefix, int in, int out, float ln_eps) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.0", prefix));
    XV_TRY(xv_nn_linear_new(p, &h->fc0, name, in, 2 * in, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.1", prefix));
    XV_TRY(xv_nn_ln_new(p, &h->ln1, name, 2 * in, ln_eps));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.3", prefix));
    return xv_nn_linear_new(p, &h->fc3, name, 2 * in, out, true);
}

xv_tensor *xv_mlp_head_forward(xv_graph *g, const xv_mlp_head *h, xv_tensor *x) {
    x = xv_gelu(g, xv_nn_ln(g, &h->ln1, xv_nn_linear(g, &h->fc0, x)));
    return xv_nn_linear(g, &h->fc3, x);
}

xv_status xv_mlm_head_init(xv_mlm_head *h, xv_params *p, const char *prefix, int hidden, float ln_eps,
                           xv_tensor *word_embeddings) {
    char name[256];
    XV_TRY(xv_nn_name(name, sizeof name, "%s.bias", prefix));
    h->bias = xv_params_add(p, name, XV_SHAPE(word_embeddings->shape[0]));
    if (!h->bias) return XV_ERR_NOMEM;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.transform.dense", prefix));
    XV_TRY(xv_nn_linear_new(p, &h->dense, name, hidden, hidden, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.transform.LayerNorm", prefix));
    XV_TRY(xv_nn_ln_new(p, &h->ln, name, hidden, ln_eps));
    h->decoder_w = word_embeddings;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.decoder.weight", prefix));
    XV_TRY(xv_params_alias(p, name, word_embeddings));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.decoder.bias", prefix));
    return xv_params_alias(p, name, h->bias);
}

xv_tensor *xv_mlm_head_forward(xv_graph *g, const xv_mlm_head *h, xv_tensor *x) {
    x = xv_nn_ln(g, &h->ln, xv_nn_linear_gelu(g, &h->dense, x));
    return xv_linear(g, x, h->decoder_w, h->bias);
}
