/* The language-model pieces of VQA and captioning: per-token cross-entropy
 * with label smoothing (values against double loops, backward against finite
 * differences) and the causal BERT decoder (a token never sees later or
 * padded tokens; gradients through the causal self-attention against finite
 * differences; the cached decoding of generation equals full-prefix passes,
 * also after the rows are reordered as beam search does). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bert_lm.h"
#include "testutil.h"

#define IGNORE (-100)

/* -(1-eps)·log p_t - (eps/C)·sum_{c != t} log p_c in double. */
static double ref_token_loss(const float *x, int C, int t, double eps) {
    double m = x[0], s = 0;
    for (int c = 1; c < C; c++) m = x[c] > m ? x[c] : m;
    for (int c = 0; c < C; c++) s += exp(x[c] - m);
    double lse = m + log(s), l = (1 - eps) * (lse - x[t]);
    for (int c = 0; c < C; c++)
        if (c != t) l += eps / C * (lse - x[c]);
    return l;
}

typedef struct {
    int32_t *targets;
    int n;
    float eps;
} tok_ctx;

static xv_tensor *fd_token_ce(xv_graph *g, xv_tensor **in, void *ctx) {
    tok_ctx *c = ctx;
    return xv_token_cross_entropy(g, in[0], xv_tensor_wrap_i32(g, c->targets, XV_SHAPE(c->n)), IGNORE, c->eps);
}

static void test_token_cross_entropy(void) {
    enum { N = 6, C = 7 };
    float x[N * C];
    xv_test_fill_uniform(x, N * C, -3, 3, 11);
    int32_t t[N] = {2, IGNORE, 0, 6, IGNORE, 3};
    const float eps[2] = {0.0f, 0.1f};
    for (int e = 0; e < 2; e++) {
        xv_graph *g = xv_graph_new(0);
        xv_tensor *L = xv_token_cross_entropy(g, xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C)),
                                              xv_tensor_wrap_i32(g, t, XV_SHAPE(N)), IGNORE, eps[e]);
        CHECK(L && L->ndim == 1 && L->shape[0] == N, "one loss per row");
        double worst = 0;
        for (int n = 0; L && n < N; n++) {
            double ref = t[n] == IGNORE ? 0 : ref_token_loss(x + n * C, C, t[n], eps[e]);
            worst = fmax(worst, fabs(L->data[n] - ref));
            if (t[n] == IGNORE) CHECK(L->data[n] == 0.0f, "ignored row %d: exactly 0", n);
        }
        /* Values ~1-5: float exps (~1e-7 relative) and one float rounding. */
        CHECK(worst < 2e-6, "eps %g: max diff to the double reference %g", eps[e], worst);
        xv_graph_free(g);

        /* The output is a vector: the checker weighs it with random r. Same
         * error budget as the mean losses of test_ops_loss (values ~1-5,
         * h = 1e-2: rounding ~6e-5 after / 2h, truncation < 1e-5). */
        tok_ctx c = {t, N, eps[e]};
        xv_fd_opts o = xv_fd_defaults();
        o.atol = 2e-4;
        o.rtol = 1e-3;
        o.max_checks = N * C;
        xv_fd_input in = {XV_SHAPE(N, C), x, true};
        CHECK(xv_fd_check(e ? "fd token_cross_entropy eps 0.1" : "fd token_cross_entropy", fd_token_ce, &c, &in, 1,
                          &o) == 0,
              "finite differences, eps %g", eps[e]);
    }
    xv_graph *g = xv_graph_new(0);
    int32_t bad[N] = {2, 7, 0, 0, 0, 0};
    CHECK(!xv_token_cross_entropy(g, xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C)), xv_tensor_wrap_i32(g, bad, XV_SHAPE(N)),
                                  IGNORE, 0.1f) &&
              strstr(xv_error_message(), "target 7 of row 1"),
          "a target outside the classes is refused by row: %s", xv_error_message());
    xv_graph_reset(g);
    CHECK(!xv_token_cross_entropy(g, xv_tensor_wrap_f32(g, x, XV_SHAPE(N, C)), xv_tensor_wrap_i32(g, t, XV_SHAPE(N)),
                                  IGNORE, 1.0f),
          "smoothing 1 is refused");
    xv_graph_free(g);
}

/* ---------------------------------------------------------------- causal decoder */

enum { H = 8, LAYERS = 2, V = 30, B = 2, L = 5, T = 3, ENC = 6 };

static xv_params params;
static xv_bert_lm lm;

static void build_decoder(void) {
    xv_bert_config c = {.hidden = H, .layers = LAYERS, .heads = 2, .intermediate = 12, .vocab = V,
                        .max_positions = 16, .type_vocab = 2, .fusion_layer = 0, .encoder_width = ENC,
                        .pad_id = 0, .ln_eps = 1e-12f, .init_range = 0.02f};
    xv_params_init(&params);
    CHECK_OK(xv_bert_lm_init(&lm, &c, &params, "text_decoder"));
    for (int i = 0; i < params.n; i++)
        xv_test_fill_uniform(params.items[i]->data, params.items[i]->numel, -0.5f, 0.5f, 100 + (uint64_t)i);
    CHECK(xv_params_find(&params, "text_decoder.cls.predictions.decoder.weight") == lm.bert.word,
          "the LM head's matrix is the decoder's word embeddings");
}

static int32_t ids[B * L] = {1, 5, 9, 2, 0, 1, 7, 7, 3, 2}; /* [CLS] = 1, [SEP] = 2, [PAD] = 0 */
static int32_t atts[B * L] = {1, 1, 1, 1, 0, 1, 1, 1, 1, 1};

static xv_tensor *decode(xv_graph *g, xv_tensor *enc, int32_t *tok) {
    return xv_bert_lm_hidden(g, &lm, xv_tensor_wrap_i32(g, tok, XV_SHAPE(B, L)), xv_tensor_wrap_i32(g, atts, XV_SHAPE(B, L)),
                             enc, NULL);
}

static void test_causality(const float *enc_data) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *enc = xv_tensor_wrap_f32(g, (float *)enc_data, XV_SHAPE(B, T, ENC));
    xv_tensor *h0 = decode(g, enc, ids);
    int32_t changed[B * L];
    memcpy(changed, ids, sizeof changed);
    changed[3] = 17;     /* row 0, position 3: positions 0-2 must not move */
    changed[L + 4] = 11; /* row 1, position 4: positions 0-3 must not move */
    xv_tensor *h1 = decode(g, enc, changed);
    CHECK(h0 && h1, "decoder forward: %s", xv_error_message());
    if (h0 && h1) {
        CHECK(!memcmp(h0->data, h1->data, sizeof(float) * 3 * H), "row 0: earlier positions ignore a later token");
        CHECK(!memcmp(h0->data + L * H, h1->data + L * H, sizeof(float) * 4 * H), "row 1 likewise");
        CHECK(memcmp(h0->data + 3 * H, h1->data + 3 * H, sizeof(float) * H), "the changed position itself moves");
    }
    /* Row 0's padded token (position 4) is no key for anyone: changing it
     * leaves positions 0-3 alone. */
    memcpy(changed, ids, sizeof changed);
    changed[4] = 23;
    xv_tensor *h2 = decode(g, enc, changed);
    CHECK(h2 && !memcmp(h0->data, h2->data, sizeof(float) * 4 * H), "a padded token is never attended to");
    xv_graph_free(g);
}

static xv_tensor *fd_decoder(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    xv_tensor *h = decode(g, in[0], ids);
    return xv_bert_lm_logits(g, &lm, h);
}

/* Decoding with a cache: a 3-token prompt, then one token per step, the rows
 * swapped before the last step (as beam search reorders beams); every step's
 * hidden states equal a full pass over the whole prefix (no padding) with
 * the image's cross-attention K/V computed once. The rows are two beams of
 * one image, as beam search only moves rows among an image's beams. The step graphs alternate,
 * as in generate.c: a step's keys stay alive until the next has read them. */
static void test_cache(const float *enc_data) {
    xv_graph *keep = xv_graph_new(0), *step[2] = {xv_graph_new(0), xv_graph_new(0)}, *g = xv_graph_new(0);
    xv_graph *all[4] = {keep, step[0], step[1], g};
    for (int i = 0; i < 4; i++) xv_graph_set_grad(all[i], false);
    /* Both rows are beams of one image (the first), so that rows may swap. */
    const int32_t beams_of_0[B] = {0, 0};
    xv_tensor *enc = xv_gather_rows(keep, xv_tensor_wrap_f32(keep, (float *)enc_data, XV_SHAPE(B, T, ENC)),
                                    xv_tensor_wrap_i32(keep, (int32_t *)beams_of_0, XV_SHAPE(B)));
    xv_bert_cache c;
    CHECK_OK(xv_bert_cache_begin(keep, &lm.bert, enc, NULL, &c));
    int32_t seq[B][L] = {{1, 5, 9, 4, 6}, {1, 7, 7, 3, 8}};
    const int32_t swap[B] = {1, 0};
    int len = 3;
    for (int s = 0; s < 3; s++) {
        xv_graph *sg = step[s % 2];
        xv_graph_reset(sg);
        const int n = s == 0 ? 3 : 1, first = len - n;
        if (s == 2) { /* rows swap their pasts; the new tokens continue the swapped rows */
            xv_tensor *rows = xv_tensor_new(sg, XV_I32, XV_SHAPE(B));
            memcpy(rows->idata, swap, sizeof swap);
            CHECK_OK(xv_bert_cache_select(sg, &c, rows));
            int32_t tmp[L];
            memcpy(tmp, seq[0], sizeof tmp);
            memcpy(seq[0], seq[1], sizeof tmp);
            memcpy(seq[1], tmp, sizeof tmp);
        }
        xv_tensor *ids_new = xv_tensor_new(sg, XV_I32, XV_SHAPE(B, n));
        for (int b = 0; b < B; b++) memcpy(ids_new->idata + b * n, seq[b] + first, sizeof(int32_t) * (size_t)n);
        xv_tensor *h = xv_bert_decode_step(sg, &lm.bert, ids_new, &c);
        /* the reference: the whole prefix */
        xv_graph_reset(g);
        xv_tensor *ids_all = xv_tensor_new(g, XV_I32, XV_SHAPE(B, len)), *ones = xv_tensor_new(g, XV_I32, XV_SHAPE(B, len));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < len; t++) ids_all->idata[b * len + t] = seq[b][t], ones->idata[b * len + t] = 1;
        xv_tensor *ref = xv_bert_lm_hidden(g, &lm, ids_all, ones, enc, NULL);
        CHECK(h && ref && c.len == len, "step %d: %s", s, xv_error_message());
        if (!h || !ref) break;
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < n; t++)
                for (int j = 0; j < H; j++) {
                    double d = fabs(h->data[(b * n + t) * H + j] - ref->data[(b * len + first + t) * H + j]);
                    worst = d > worst ? d : worst;
                }
        CHECK(worst < 1e-5, "step %d (%d new tokens at %d): cached hidden states differ from a full pass by %.3g", s,
              n, first, worst);
        len++;
    }
    /* The cache's image must match its rows. */
    xv_graph_reset(g);
    xv_tensor *wrong = xv_tensor_new(g, XV_I32, XV_SHAPE(B + 1, 1));
    for (int i = 0; i < B + 1; i++) wrong->idata[i] = 3;
    CHECK(!xv_bert_decode_step(g, &lm.bert, wrong, &c) && xv_graph_status(g) == XV_ERR_SHAPE,
          "a step with more rows than the cache is refused");
    xv_bert_cache_free(&c);
    for (int i = 0; i < 4; i++) xv_graph_free(all[i]);
}

int main(void) {
    test_token_cross_entropy();
    build_decoder();
    float enc[B * T * ENC];
    xv_test_fill_uniform(enc, B * T * ENC, -1, 1, 5);
    test_causality(enc);
    test_cache(enc);
    /* Gradients into the encoder states pass every layer's causal
     * self-attention (fusion_layer 0: layer 1 reads layer 0's cross-attended
     * states). Logits ~1 through LayerNorms: defaults of the checker. */
    xv_fd_input in = {XV_SHAPE(B, T, ENC), enc, true};
    xv_fd_opts o = xv_fd_defaults();
    CHECK(xv_fd_check("fd causal decoder", fd_decoder, NULL, &in, 1, &o) == 0, "finite differences");
    xv_bert_lm_free(&lm);
    xv_params_free(&params);
    return xv_test_finish("test_lm_ops");
}
