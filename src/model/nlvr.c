/* NLVR2 and text assignment: the paired fusion stack, the two heads, the
 * pairing draw. Loading from a pretraining checkpoint is in nlvr_convert.c. */
#include "model/nlvr.h"

#include <math.h>
#include <string.h>

/* The official fixed temperature of the text-assignment pairing (not `temp`). */
#define TA_PAIRING_TEMP 0.07f

xv_tensor *xv_nlvr_text(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts, xv_tensor *left,
                        xv_tensor *right, xv_tensor **embedding_out, xv_tensor **layer_out) {
    if (!xv_model_paired(&m->parts))
        return xv_graph_fail(g, XV_ERR_UNSUPPORTED,
                             "NLVR: the model's text encoder has no paired fusion layers (no cls_head / ta_head)");
    const xv_bert_config *c = &m->cfg.text;
    xv_tensor *x = xv_bert_embed(g, &m->text, ids);
    if (embedding_out) *embedding_out = x;
    /* One layer at a time: each fusion layer reads its own image. */
    for (int i = 0; i < c->layers; i++) {
        xv_tensor *image = i < c->fusion_layer ? NULL : (i - c->fusion_layer) % 2 ? right : left;
        x = xv_bert_layers(g, &m->text, x, i, i + 1, atts, image, NULL);
        if (layer_out) layer_out[i] = x;
    }
    return x;
}

static xv_tensor **layer_slots(xv_graph *g, const xv_model *m) {
    return xv_graph_calloc(g, sizeof(xv_tensor *) * (size_t)m->cfg.text.layers);
}

/* I32 [n] with values in [0, hi). */
static xv_status check_index(const xv_tensor *t, int64_t n, int64_t hi, const char *what) {
    if (!t || t->dtype != XV_I32 || t->ndim != 1 || t->shape[0] != n)
        return xv_error(XV_ERR_SHAPE, "%s must be I32 [%lld]", what, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (t->idata[i] < 0 || t->idata[i] >= hi)
            return xv_error(XV_ERR_INVALID_ARG, "%s[%lld] = %d outside [0, %lld)", what, (long long)i, t->idata[i],
                            (long long)hi);
    return XV_OK;
}

static xv_status check_text(const xv_tensor *ids, const xv_tensor *atts, int64_t n, const char *task) {
    if (!ids || !atts || ids->dtype != XV_I32 || ids->ndim != 2 || ids->shape[0] != n || atts->dtype != XV_I32 ||
        !xv_same_shape(ids, atts))
        return xv_error(XV_ERR_SHAPE, "%s: text_ids and text_atts must be I32 [%lld, L]", task, (long long)n);
    return XV_OK;
}

xv_status xv_nlvr_forward(xv_graph *g, const xv_model *m, const xv_nlvr_batch *b, xv_nlvr_out *out) {
    memset(out, 0, sizeof *out);
    if (!m->parts.nlvr) return xv_error(XV_ERR_UNSUPPORTED, "NLVR: the model has no cls_head");
    if (!b->images || !b->targets || b->targets->ndim != 1)
        return xv_error(XV_ERR_INVALID_ARG, "NLVR batch: images and targets I32 [B] are required");
    const int64_t B = b->targets->shape[0];
    if (b->images->ndim != 4 || b->images->shape[0] != 2 * B)
        return xv_error(XV_ERR_SHAPE, "NLVR batch: images must be [2B, 3, R, R] = [%lld, ...] for %lld targets",
                        (long long)(2 * B), (long long)B);
    XV_TRY(check_index(b->targets, B, 2, "NLVR targets"));
    XV_TRY(check_text(b->text_ids, b->text_atts, B, "NLVR batch"));

    out->vision_embeds = xv_model_vision(g, m, b->images, NULL);
    xv_tensor *left = xv_slice(g, out->vision_embeds, 0, 0, B), *right = xv_slice(g, out->vision_embeds, 0, B, B);
    out->layer_out = layer_slots(g, m);
    if (!out->layer_out) return xv_graph_status(g);
    xv_tensor *h = xv_nlvr_text(g, m, b->text_ids, b->text_atts, left, right, &out->text_embedding_output,
                                out->layer_out);
    out->cross_cls = xv_nn_token(g, h, 0);
    out->logits = xv_mlp_head_forward(g, &m->cls_head, out->cross_cls);
    out->loss = xv_cross_entropy(g, out->logits, b->targets, -100);
    out->pred_class = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
    out->accuracy = xv_tensor_new(g, XV_F32, XV_SHAPE(1));
    XV_TRY(xv_graph_status(g));
    int64_t hits = 0;
    for (int64_t i = 0; i < B; i++) {
        const float *z = out->logits->data + 2 * i;
        out->pred_class->idata[i] = z[1] > z[0]; /* torch.argmax: the first of equal maxima */
        hits += out->pred_class->idata[i] == b->targets->idata[i];
    }
    out->accuracy->data[0] = (float)hits / (float)B;
    return XV_OK;
}

/* ---- text assignment ---- */

/* One draw from w[0..n) (non-negative) with entries a and b excluded. */
static int draw(const float *w, int n, int a, int b, xv_rng *rng) {
    double total = 0;
    for (int j = 0; j < n; j++)
        if (j != a && j != b) total += w[j];
    double u = xv_rng_uniform_double(rng) * total, acc = 0;
    int last = -1;
    for (int j = 0; j < n; j++) {
        if (j == a || j == b || !(w[j] > 0)) continue;
        acc += w[j];
        last = j;
        if (u < acc) break;
    }
    return last; /* rounding at the top end: the last candidate */
}

xv_status xv_ta_draw_pairs(const float *weights, int N, xv_rng *rng, int32_t *left, int32_t *right,
                           int32_t *labels) {
    if (N < 3)
        return xv_error(XV_ERR_INVALID_ARG,
                        "text assignment: a batch of %d images; pairs of two other images need at least 3", N);
    for (int b = 0; b < N; b++) {
        const float *w = weights + (int64_t)b * N;
        int positive = 0;
        for (int j = 0; j < N; j++) positive += j != b && w[j] > 0;
        if (positive < 2)
            return xv_error(XV_ERR_INVALID_ARG, "text assignment: row %d of the pairing weights has %d non-zero "
                            "entries off the diagonal (2 needed)", b, positive);
        if (xv_rng_uniform_double(rng) > 1.0 / 3.0) {
            int j = draw(w, N, b, b, rng);
            bool own_left = xv_rng_uniform_double(rng) > 0.5;
            left[b] = own_left ? b : j;
            right[b] = own_left ? j : b;
            labels[b] = own_left ? 0 : 1;
        } else { /* two without replacement: the second excludes the first */
            left[b] = draw(w, N, b, b, rng);
            right[b] = draw(w, N, b, left[b], rng);
            labels[b] = 2;
        }
    }
    return XV_OK;
}

/* image_feat, sim and pairing weights of the batch, recorded nowhere (the
 * official code computes them under no_grad). */
static xv_status pairing_weights(xv_graph *g, const xv_model *m, xv_tensor *vision_embeds, xv_ta_out *out) {
    bool recording = xv_graph_grad_enabled(g);
    xv_graph_set_grad(g, false);
    out->image_feat = xv_l2_normalize(g, xv_nn_linear(g, &m->vision_proj, xv_nn_token(g, vision_embeds, 0)), 1e-12f);
    out->sim = xv_scale(g, xv_linear(g, out->image_feat, out->image_feat, NULL), 1.0f / TA_PAIRING_TEMP, 0.0f);
    out->weights = xv_softmax(g, out->sim, NULL);
    xv_graph_set_grad(g, recording);
    XV_TRY(xv_graph_status(g));
    const int64_t N = out->weights->shape[0];
    for (int64_t i = 0; i < N; i++) out->weights->data[i * N + i] = 0.0f;
    return XV_OK;
}

xv_status xv_ta_forward(xv_graph *g, const xv_model *m, const xv_ta_batch *b, xv_ta_out *out) {
    memset(out, 0, sizeof *out);
    if (!m->parts.ta) return xv_error(XV_ERR_UNSUPPORTED, "text assignment: the model has no ta_head");
    if (!b->images || b->images->ndim != 4)
        return xv_error(XV_ERR_INVALID_ARG, "text assignment batch: images F32 [N, 3, R, R] are required");
    const int64_t N = b->images->shape[0];
    XV_TRY(check_text(b->text_ids, b->text_atts, N, "text assignment batch"));
    const bool given = b->left_idx || b->right_idx || b->labels;
    if (given) {
        XV_TRY(check_index(b->left_idx, N, N, "text assignment left_idx"));
        XV_TRY(check_index(b->right_idx, N, N, "text assignment right_idx"));
        XV_TRY(check_index(b->labels, N, 3, "text assignment labels"));
    } else if (!b->rng) {
        return xv_error(XV_ERR_INVALID_ARG, "text assignment batch: no pairs given and no RNG to draw them");
    }

    out->vision_embeds = xv_model_vision(g, m, b->images, NULL);
    XV_TRY(xv_graph_status(g));
    XV_TRY(pairing_weights(g, m, out->vision_embeds, out));
    if (given) {
        out->left_idx = b->left_idx;
        out->right_idx = b->right_idx;
        out->labels = b->labels;
    } else {
        out->left_idx = xv_tensor_new(g, XV_I32, XV_SHAPE(N));
        out->right_idx = xv_tensor_new(g, XV_I32, XV_SHAPE(N));
        out->labels = xv_tensor_new(g, XV_I32, XV_SHAPE(N));
        XV_TRY(xv_graph_status(g));
        XV_TRY(xv_ta_draw_pairs(out->weights->data, (int)N, b->rng, out->left_idx->idata, out->right_idx->idata,
                                out->labels->idata));
    }
    /* Rows gathered: one image may feed several pairs (gradients add up). */
    xv_tensor *left = xv_gather_rows(g, out->vision_embeds, out->left_idx);
    xv_tensor *right = xv_gather_rows(g, out->vision_embeds, out->right_idx);
    out->layer_out = layer_slots(g, m);
    if (!out->layer_out) return xv_graph_status(g);
    xv_tensor *h = xv_nlvr_text(g, m, b->text_ids, b->text_atts, left, right, &out->text_embedding_output,
                                out->layer_out);
    out->cross_cls = xv_nn_token(g, h, 0);
    out->logits = xv_nn_linear(g, &m->ta_head, out->cross_cls);
    out->loss = xv_cross_entropy(g, out->logits, out->labels, -100);
    return xv_graph_status(g);
}
