/* NLVR2 and text assignment on a small random model whose sizes differ from
 * the fixtures' (hidden 12, 3 heads, fusion_layer 1, two pairs of fusion
 * layers, 16 patches): the paired layout (shared cross-attention key/value as
 * one tensor under both names, queries separate), the gradients of both steps
 * against finite differences (the shared tensors' gradient must be the sum of
 * both layers' contributions), the official renaming rules and the pairing
 * draw. */
#include <stdlib.h>
#include <string.h>

#include "model/nlvr.h"
#include "testutil.h"

static const char *SMALL =
    "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 8, \"depths\": [2, 1],"
    " \"num_heads\": [1, 2], \"vision_width\": 16, \"patch_size\": 8},"
    " \"text\": {\"hidden_size\": 12, \"num_hidden_layers\": 5, \"num_attention_heads\": 3,"
    " \"intermediate_size\": 20, \"vocab_size\": 40, \"max_position_embeddings\": 16, \"fusion_layer\": 1},"
    " \"embed_dim\": 8}";

static xv_model *small_model(void) {
    xv_model_config c;
    xv_status st = xv_config_parse_json(SMALL, "small", &c);
    CHECK(st == XV_OK, "small config: %s", xv_error_message());
    xv_model_parts parts = {.layout = XV_LAYOUT_FINETUNE, .nlvr = true, .ta = true};
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return NULL;
    /* Weights of order 0.3 (not the 0.02 init) so that every path carries a
     * gradient well above the finite-difference noise. */
    for (int i = 0; i < m->params.n; i++) {
        xv_tensor *t = m->params.items[i];
        /* small biases: with large ones every image token looks alike and
         * the cross-attention scores stop mattering */
        float r = strstr(t->name, ".bias") ? 0.02f : 0.4f;
        xv_test_fill_uniform(t->data, t->numel, -r, r, 100 + (uint64_t)i);
        if (t->ndim == 1 && strstr(t->name, "LayerNorm.weight"))
            for (int64_t k = 0; k < t->numel; k++) t->data[k] += 1.0f;
    }
    return m;
}

static void test_layout(xv_model *m) {
    xv_params *p = &m->params;
    const char *k1 = "text_encoder.encoder.layer.1.crossattention.self.key.weight",
               *k2 = "text_encoder.encoder.layer.2.crossattention.self.key.weight",
               *v3 = "text_encoder.encoder.layer.3.crossattention.self.value.bias",
               *v4 = "text_encoder.encoder.layer.4.crossattention.self.value.bias",
               *q1 = "text_encoder.encoder.layer.1.crossattention.self.query.weight",
               *q2 = "text_encoder.encoder.layer.2.crossattention.self.query.weight",
               *k3 = "text_encoder.encoder.layer.3.crossattention.self.key.weight";
    CHECK(xv_params_find(p, k1) && xv_params_find(p, k1) == xv_params_find(p, k2), "pair (1, 2) shares the key");
    CHECK(xv_params_find(p, v3) && xv_params_find(p, v3) == xv_params_find(p, v4), "pair (3, 4) shares the value");
    CHECK(xv_params_find(p, q1) != xv_params_find(p, q2), "queries are separate");
    CHECK(xv_params_find(p, k2) != xv_params_find(p, k3), "pairs do not share with each other");
    CHECK(p->n_alias == 2 * 4, "8 alias names (key/value weight/bias of two odd layers), got %d", p->n_alias);
    CHECK(!xv_params_find(p, "text_encoder.encoder.layer.0.crossattention.self.key.weight"),
          "text layers have no cross-attention");

    /* An odd number of fusion layers cannot be paired. */
    xv_model_config c = m->cfg;
    c.text.layers = 4;
    xv_model *bad = NULL;
    xv_status st = xv_model_create(&c, &m->parts, &bad);
    CHECK(st != XV_OK && strstr(xv_error_message(), "even number of fusion layers"), "odd fusion layers refused: %s",
          xv_error_message());
    xv_model_free(bad);
}

/* ---- finite differences of a whole step w.r.t. chosen parameter entries ---- */

typedef struct {
    xv_model *m;
    bool ta;
    float images[4 * 3 * 32 * 32];
    int32_t ids[2 * 5], atts[2 * 5], targets[2];
    int32_t left[4], right[4], labels[4];
} step_ctx;

static double step_loss(step_ctx *c, bool backward) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, backward);
    double loss = NAN;
    if (!c->ta) {
        xv_nlvr_batch b = {.images = xv_tensor_wrap_f32(g, c->images, XV_SHAPE(4, 3, 32, 32)),
                           .text_ids = xv_tensor_wrap_i32(g, c->ids, XV_SHAPE(2, 5)),
                           .text_atts = xv_tensor_wrap_i32(g, c->atts, XV_SHAPE(2, 5)),
                           .targets = xv_tensor_wrap_i32(g, c->targets, XV_SHAPE(2))};
        xv_nlvr_out o;
        CHECK_OK(xv_nlvr_forward(g, c->m, &b, &o));
        if (o.loss) {
            loss = o.loss->data[0];
            if (backward) CHECK_OK(xv_backward(g, o.loss));
        }
    } else {
        int32_t ids[4 * 5], atts[4 * 5];
        for (int i = 0; i < 20; i++) ids[i] = c->ids[i % 10], atts[i] = c->atts[i % 10];
        xv_ta_batch b = {.images = xv_tensor_wrap_f32(g, c->images, XV_SHAPE(4, 3, 32, 32)),
                         .text_ids = xv_tensor_wrap_i32(g, ids, XV_SHAPE(4, 5)),
                         .text_atts = xv_tensor_wrap_i32(g, atts, XV_SHAPE(4, 5)),
                         .left_idx = xv_tensor_wrap_i32(g, c->left, XV_SHAPE(4)),
                         .right_idx = xv_tensor_wrap_i32(g, c->right, XV_SHAPE(4)),
                         .labels = xv_tensor_wrap_i32(g, c->labels, XV_SHAPE(4))};
        xv_ta_out o;
        CHECK_OK(xv_ta_forward(g, c->m, &b, &o));
        if (o.loss) {
            loss = o.loss->data[0];
            if (backward) CHECK_OK(xv_backward(g, o.loss));
        }
    }
    xv_graph_free(g);
    return loss;
}

static void fd_param(step_ctx *c, const char *name) {
    xv_tensor *t = xv_params_find(&c->m->params, name);
    CHECK(t != NULL, "%s exists", name);
    if (!t) return;
    xv_params_zero_grad(&c->m->params);
    step_loss(c, true);
    CHECK(t->grad != NULL, "%s got a gradient", name);
    if (!t->grad) return;
    const double h = 1e-2;
    int bad = 0;
    double worst = 0, largest = 0;
    for (int64_t k = 0; k < t->numel; k += 1 + t->numel / 4) {
        float keep = t->data[k];
        t->data[k] = keep + (float)h;
        double up = step_loss(c, false);
        t->data[k] = keep - (float)h;
        double down = step_loss(c, false);
        t->data[k] = keep;
        double num = (up - down) / (2 * h), ana = t->grad[k], err = fabs(num - ana);
        if (err > worst) worst = err;
        largest = fmax(largest, fabs(num));
        /* fp32 forward, h = 1e-2: differences carry ~5e-6 of rounding noise */
        bad += err > 2e-5 + 1e-2 * fmax(fabs(num), fabs(ana));
    }
    printf("  fd %-62s worst |num - ana| %.2e (largest gradient %.2e)\n", name, worst, largest);
    /* A gradient 10x the tolerance: a missing contribution (say one layer of
     * a shared pair) would show. */
    CHECK(largest > 2e-4, "%s: gradients too small (%.2e) for the check to mean anything", name, largest);
    CHECK(bad == 0, "%s (%s step): %d entries disagree with finite differences", name, c->ta ? "ta" : "nlvr", bad);
}

static void test_gradients(xv_model *m) {
    static step_ctx c;
    c.m = m;
    xv_test_fill_uniform(c.images, 4 * 3 * 32 * 32, -1.5f, 1.5f, 5);
    const int32_t ids[10] = {1, 7, 9, 3, 0, 1, 4, 4, 8, 2}, atts[10] = {1, 1, 1, 1, 0, 1, 1, 1, 1, 1};
    memcpy(c.ids, ids, sizeof ids);
    memcpy(c.atts, atts, sizeof atts);
    c.targets[0] = 1, c.targets[1] = 0;
    const int32_t left[4] = {0, 3, 2, 0}, right[4] = {2, 1, 3, 0}, labels[4] = {0, 1, 2, 2};
    memcpy(c.left, left, sizeof left), memcpy(c.right, right, sizeof right), memcpy(c.labels, labels, sizeof labels);
    const char *nlvr_params[] = {
        "text_encoder.encoder.layer.1.crossattention.self.key.weight", /* shared with layer 2 */
        "text_encoder.encoder.layer.3.crossattention.self.value.bias", /* shared with layer 4 */
        "text_encoder.encoder.layer.2.crossattention.self.query.weight",
        "text_encoder.encoder.layer.0.attention.self.value.weight",
        "cls_head.0.weight",
        "vision_encoder.patch_embed.proj.weight",
    };
    for (size_t i = 0; i < sizeof nlvr_params / sizeof *nlvr_params; i++) fd_param(&c, nlvr_params[i]);
    c.ta = true;
    const char *ta_params[] = {
        "text_encoder.encoder.layer.4.crossattention.self.value.weight", /* shared with layer 3 */
        "text_encoder.encoder.layer.3.crossattention.output.dense.weight",
        "ta_head.weight",
        "vision_encoder.layers.1.blocks.0.mlp.fc2.weight", /* through the gathered image rows */
    };
    for (size_t i = 0; i < sizeof ta_params / sizeof *ta_params; i++) fd_param(&c, ta_params[i]);
    /* vision_proj only pairs the images (no gradient, as officially). */
    xv_params_zero_grad(&m->params);
    step_loss(&c, true);
    float gmax = 0;
    for (int64_t k = 0; m->vision_proj.w->grad && k < m->vision_proj.w->numel; k++)
        gmax = fmaxf(gmax, fabsf(m->vision_proj.w->grad[k]));
    CHECK(gmax == 0, "vision_proj got a gradient %g in the text-assignment step", gmax);
}

static void test_rename(void) {
    char out[2][256];
    CHECK(xv_nlvr_rename("text_encoder.bert.encoder.layer.1.output.dense.weight", 2, out) == 1 &&
              !strcmp(out[0], "text_encoder.encoder.layer.1.output.dense.weight"),
          "text layer: prefix stripped only");
    CHECK(xv_nlvr_rename("text_encoder.bert.encoder.layer.3.crossattention.self.key.bias", 2, out) == 2 &&
              !strcmp(out[0], "text_encoder.encoder.layer.4.crossattention.self.key.bias") &&
              !strcmp(out[1], "text_encoder.encoder.layer.5.crossattention.self.key.bias"),
          "fusion layer 3 (F = 2) -> layers 4 and 5: %s %s", out[0], out[1]);
    CHECK(xv_nlvr_rename("text_encoder.bert.encoder.layer.11.output.LayerNorm.bias", 6, out) == 2 &&
              !strcmp(out[0], "text_encoder.encoder.layer.16.output.LayerNorm.bias") &&
              !strcmp(out[1], "text_encoder.encoder.layer.17.output.LayerNorm.bias"),
          "base: 11 -> 16, 17");
    CHECK(xv_nlvr_rename("text_encoder.roberta.embeddings.word_embeddings.weight", 6, out) == 1 &&
              !strcmp(out[0], "text_encoder.embeddings.word_embeddings.weight"),
          "roberta. stripped");
    CHECK(xv_nlvr_rename("text_encoder.cls.predictions.bias", 6, out) == 1 &&
              !strcmp(out[0], "text_encoder.cls.predictions.bias"),
          "no bert.: unchanged");
    CHECK(xv_nlvr_rename("text_encoder.encoder.layer.7.output.dense.bias", 6, out) == 1 &&
              !strcmp(out[0], "text_encoder.encoder.layer.7.output.dense.bias"),
          "an NLVR-layout key loads verbatim");
    CHECK(xv_nlvr_rename("vision_proj.weight", 6, out) == 1 && !strcmp(out[0], "vision_proj.weight"), "other keys");
    CHECK(xv_nlvr_rename("text_encoder.bert.encoder.layer.x.output.dense.bias", 6, out) == -1, "bad layer number");
}

static void test_pairs(void) {
    enum { N = 5, DRAWS = 600 };
    float w[N * N];
    xv_test_fill_uniform(w, N * N, 0.05f, 1.0f, 3);
    for (int i = 0; i < N; i++) w[i * N + i] = 0;
    xv_rng rng, rng2;
    xv_rng_seed(&rng, 11);
    xv_rng_seed(&rng2, 11);
    int count[3] = {0}, bad = 0;
    for (int d = 0; d < DRAWS; d++) {
        int32_t l[N], r[N], y[N], l2[N], r2[N], y2[N];
        CHECK_OK(xv_ta_draw_pairs(w, N, &rng, l, r, y));
        CHECK_OK(xv_ta_draw_pairs(w, N, &rng2, l2, r2, y2));
        bad += memcmp(l, l2, sizeof l) || memcmp(r, r2, sizeof r) || memcmp(y, y2, sizeof y);
        for (int b = 0; b < N; b++) {
            count[y[b]]++;
            bool ok = y[b] == 0   ? l[b] == b && r[b] != b
                      : y[b] == 1 ? r[b] == b && l[b] != b
                                  : l[b] != b && r[b] != b && l[b] != r[b];
            bad += !ok;
        }
    }
    CHECK(bad == 0, "%d draws broke the pairing rules or were not deterministic", bad);
    for (int k = 0; k < 3; k++) /* 3000 draws: 1/3 each within ~4 standard deviations */
        CHECK(fabs(count[k] / (double)(N * DRAWS) - 1.0 / 3) < 0.035, "label %d drawn %d times of %d", k, count[k],
              N * DRAWS);
    int32_t l[2], r[2], y[2];
    CHECK(xv_ta_draw_pairs(w, 2, &rng, l, r, y) != XV_OK, "two images refused (label 2 needs three)");
}

int main(void) {
    xv_model *m = small_model();
    if (m) {
        test_layout(m);
        test_gradients(m);
    }
    xv_model_free(m);
    test_rename();
    test_pairs();
    return xv_test_finish("test_nlvr");
}
