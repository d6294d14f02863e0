/* Nothing may depend on the tiny fixture's sizes: random models of other
 * shapes run both pretraining steps (image-text and region + boxes) forward
 * and backward with finite results — 384 px / window 12, 192 / 6, 64 / 8
 * (the last stages smaller than the window: one window, no shift), and a
 * three-stage Swin. On the 64 / 8 model, directional finite differences of
 * loss_total check the composed backward of every kind of parameter; the
 * same run twice gives bitwise equal results. */
#include <stdlib.h>
#include <string.h>

#include "model/pretrain.h"
#include "testutil.h"

typedef struct {
    const char *name;
    int res, window, n_stages, region_stride;
    const char *depths, *heads;
    int embed, width;
} shape_case;

static const shape_case CASES[] = {
    {"384/12", 384, 12, 4, 32, "[2, 2, 2, 2]", "[1, 1, 2, 2]", 8, 64},
    {"192/6", 192, 6, 4, 32, "[2, 2, 2, 2]", "[1, 2, 2, 4]", 8, 64},
    {"64/8", 64, 8, 4, 32, "[2, 2, 2, 2]", "[1, 2, 2, 4]", 8, 64},
    {"96/6 three stages", 96, 6, 3, 16, "[2, 2, 1]", "[2, 2, 4]", 8, 32},
};

#define VOCAB 120
#define LEN 9
#define MASKS 3

static xv_model *make_model(const shape_case *sc, uint64_t seed) {
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"vision\": {\"image_res\": %d, \"window_size\": %d, \"embed_dim\": %d, \"depths\": %s,"
             " \"num_heads\": %s, \"vision_width\": %d, \"patch_size\": %d},"
             " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
             " \"intermediate_size\": 24, \"vocab_size\": %d, \"max_position_embeddings\": 12,"
             " \"fusion_layer\": 1}, \"embed_dim\": 8}",
             sc->res, sc->window, sc->embed, sc->depths, sc->heads, sc->width, sc->region_stride, VOCAB);
    xv_model_config c;
    xv_status st = xv_config_parse_json(buf, sc->name, &c);
    CHECK(st == XV_OK, "%s: config: %s", sc->name, xv_error_message());
    if (st != XV_OK) return NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (m) CHECK_OK(xv_model_init_random(m, seed));
    return m;
}

/* Batch arrays live in the graph's arena, as long as the tensors that borrow them. */
static int32_t *i32(xv_graph *g, int64_t n) { return xv_tensor_new(g, XV_I32, XV_SHAPE(n))->idata; }
static float *f32(xv_graph *g, int64_t n) { return xv_tensor_new(g, XV_F32, XV_SHAPE(n))->data; }

/* A random batch: B texts, N images; region batches carry masks, groups and boxes. */
static void make_batch(xv_graph *g, const xv_model *m, bool region, xv_rng *r, xv_pretrain_batch *b,
                       xv_itm_negatives *neg) {
    const int B = region ? 3 : 2, N = 2, R = m->cfg.vision.image_res, P = xv_config_num_patches(&m->cfg);
    *b = (xv_pretrain_batch){.n_images = N, .res = R, .n_texts = B, .text_len = LEN, .max_masks = MASKS};
    b->image = f32(g, (int64_t)N * 3 * R * R);
    xv_test_fill_uniform(b->image, (int64_t)N * 3 * R * R, -2, 2, xv_rng_u64(r));
    b->text_ids = i32(g, B * LEN);
    b->text_atts = i32(g, B * LEN);
    b->text_ids_masked = i32(g, B * LEN);
    for (int i = 0; i < B; i++) {
        int len = LEN - 2 * i; /* padded rows */
        for (int t = 0; t < LEN; t++) {
            int id = t == 0 ? 101 : t < len ? 1 + (int)xv_rng_below(r, VOCAB - 1) : 0;
            b->text_ids[i * LEN + t] = id;
            b->text_ids_masked[i * LEN + t] = (t == 2 || t == 4) && t < len ? 103 : id;
            b->text_atts[i * LEN + t] = t < len;
        }
    }
    b->masked_pos = i32(g, B * MASKS);
    b->masked_ids = i32(g, B * MASKS);
    for (int i = 0; i < B; i++) {
        int pos[MASKS] = {2, 4, 0};
        for (int k = 0; k < MASKS; k++) {
            b->masked_pos[i * MASKS + k] = pos[k];
            b->masked_ids[i * MASKS + k] = k < 2 ? b->text_ids[i * LEN + pos[k]] : -100;
        }
    }
    int32_t *neg_image = i32(g, B), *neg_text = i32(g, B);
    for (int i = 0; i < B; i++) {
        neg_image[i] = (i + 1) % B;
        neg_text[i] = (i + B - 1) % B;
    }
    *neg = (xv_itm_negatives){.image_idx = neg_image, .text_idx = neg_text};
    if (!region) return; /* N = B: one image per text */
    b->idx_to_group_img = i32(g, B);
    b->n_atts = 1 + P;
    b->image_atts = i32(g, B * (1 + P));
    b->target_bbox = f32(g, B * 4);
    b->is_image = i32(g, B);
    for (int i = 0; i < B; i++) {
        b->idx_to_group_img[i] = i % N;
        b->is_image[i] = i == 0;
        for (int p = 0; p <= P; p++) b->image_atts[i * (1 + P) + p] = i == 0 || p == 0 || p % (i + 1) == 0;
        float box[4] = {0.5f, 0.5f, 1.0f, 1.0f};
        if (i) {
            box[0] = 0.3f + 0.1f * i;
            box[1] = 0.6f - 0.1f * i;
            box[2] = 0.2f + 0.05f * i;
            box[3] = 0.3f;
        }
        memcpy(b->target_bbox + 4 * i, box, sizeof box);
    }
}

static bool all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* loss_total of one step on a fresh graph (grads recorded when `grads`). */
static double step_loss(xv_model *m, bool region, bool grads, bool training, xv_pretrain_out *keep, xv_graph **gout) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, grads);
    xv_graph_set_training(g, training);
    xv_rng r;
    xv_rng_seed(&r, 99); /* same batch every call */
    xv_pretrain_batch b;
    xv_itm_negatives neg;
    make_batch(g, m, region, &r, &b, &neg);
    xv_pretrain_out o;
    xv_status st = xv_pretrain_forward(g, m, &b, &neg, &o);
    CHECK(st == XV_OK, "forward: %s", xv_error_message());
    double L = st == XV_OK ? o.loss_total->data[0] : NAN;
    if (st == XV_OK && grads) {
        xv_params_zero_grad(&m->params);
        CHECK_OK(xv_backward(g, o.loss_total));
    }
    if (keep) *keep = o;
    if (gout) *gout = g;
    else xv_graph_free(g);
    return L;
}

static void check_case(const shape_case *sc) {
    xv_model *m = make_model(sc, 11);
    if (!m) return;
    const int P = xv_config_num_patches(&m->cfg), Cv = m->cfg.vision.vision_width;
    for (int region = 0; region < 2; region++) {
        xv_pretrain_out o;
        xv_graph *g;
        double L = step_loss(m, region, true, false, &o, &g);
        CHECK(isfinite(L), "%s %s: loss %g", sc->name, region ? "region" : "image", L);
        if (isfinite(L)) {
            CHECK(o.vision_embeds->shape[1] == 1 + P && o.vision_embeds->shape[2] == Cv, "%s: vision [N, 1+%d, %d]",
                  sc->name, P, Cv);
            CHECK(all_finite(o.vision_embeds->data, o.vision_embeds->numel) &&
                      all_finite(o.mlm_logits->data, o.mlm_logits->numel) &&
                      all_finite(o.itm_logits->data, o.itm_logits->numel),
                  "%s: finite outputs", sc->name);
            CHECK(!region || (o.bbox_pred && all_finite(o.bbox_pred->data, o.bbox_pred->numel) &&
                              o.region_vision_embeds->shape[0] == 3),
                  "%s: box outputs", sc->name);
            int with_grad = 0, finite = 1;
            for (int i = 0; i < m->params.n; i++) {
                const xv_tensor *t = m->params.items[i];
                if (!t->grad) continue;
                with_grad++;
                finite &= all_finite(t->grad, t->numel);
            }
            /* The image step reaches every parameter but bbox_head's 6 tensors. */
            CHECK(finite && with_grad >= m->params.n - (region ? 0 : 6), "%s: %d/%d gradients, finite %d", sc->name,
                  with_grad, m->params.n, finite);
        }
        xv_graph_free(g);
        printf("  %-18s %-6s loss_total %.6f\n", sc->name, region ? "region" : "image", L);
    }
    /* Training mode (dropout, drop-path) runs and changes the loss. */
    double Le = step_loss(m, true, false, false, NULL, NULL), Lt = step_loss(m, true, false, true, NULL, NULL);
    CHECK(isfinite(Lt) && Lt != Le, "%s: training-mode loss %g vs eval %g", sc->name, Lt, Le);
    xv_model_free(m);
}

/* Directional finite differences of loss_total along d = sign(g)·u, u in
 * [0.5, 1]: the analytic value Σ|g|·u is large, and a wrong gradient element
 * of either sign changes it. */
static void check_fd(void) {
    xv_model *m = make_model(&CASES[2], 5);
    if (!m) return;
    const char *names[] = {
        "vision_encoder.patch_embed.proj.weight",
        "vision_encoder.layers.0.blocks.1.attn.relative_position_bias_table", /* shifted 16x16, window 8 */
        "vision_encoder.layers.2.blocks.0.attn.relative_position_bias_table", /* 4x4: window clamped to 4 */
        "vision_encoder.layers.3.blocks.1.attn.relative_position_bias_table", /* 2x2 */
        "vision_encoder.layers.1.downsample.reduction.weight",
        "vision_encoder.norm.weight",
        "text_encoder.bert.embeddings.word_embeddings.weight", /* lookup + tied decoder */
        "text_encoder.bert.encoder.layer.2.crossattention.self.value.weight",
        "text_encoder.cls.predictions.bias",
        "vision_proj.weight",
        "temp",
        "itm_head.0.weight",
        "bbox_head.3.bias",
    };
    xv_graph *g;
    step_loss(m, true, true, false, NULL, &g);
    xv_graph_free(g);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        xv_tensor *t = xv_params_find(&m->params, names[k]);
        CHECK(t && t->grad, "%s has a gradient", names[k]);
        if (!t || !t->grad) continue;
        float *orig = malloc(sizeof(float) * (size_t)t->numel), *d = malloc(sizeof(float) * (size_t)t->numel);
        memcpy(orig, t->data, sizeof(float) * (size_t)t->numel);
        xv_test_fill_uniform(d, t->numel, 0.5f, 1.0f, 100 + k);
        double analytic = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            d[i] = t->grad[i] >= 0 ? d[i] : -d[i];
            analytic += (double)t->grad[i] * d[i];
        }
        /* Step: the loss moves by about 1e-3 (1e-4 of its value), small enough
         * for the central difference's O(eps²) term, large against the fp32
         * rounding of the loss. */
        const double eps = fmin(1e-3, fmax(1e-7, 1e-3 / fabs(analytic)));
        double Lp, Lm;
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = orig[i] + (float)(eps * d[i]);
        Lp = step_loss(m, true, false, false, NULL, NULL);
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = orig[i] - (float)(eps * d[i]);
        Lm = step_loss(m, true, false, false, NULL, NULL);
        memcpy(t->data, orig, sizeof(float) * (size_t)t->numel);
        double fd = (Lp - Lm) / (2 * eps);
        double err = fabs(fd - analytic);
        /* fp32 rounding of a loss of ~10 in each evaluation (measured ~1e-7 relative). */
        double noise = 2e-7 * fabs(Lp) / eps;
        printf("  fd %-72s analytic %.6e  numeric %.6e  rel %.2e  (noise %.1e)\n", names[k], analytic, fd,
               err / fmax(fabs(analytic), 1e-12), noise);
        CHECK(err <= 1e-2 * fabs(analytic) + noise, "%s: directional derivative %g vs finite difference %g", names[k],
              analytic, fd);
        free(orig);
        free(d);
    }
    /* Determinism: the same step twice gives bitwise the same outputs. */
    xv_pretrain_out a, b;
    xv_graph *ga, *gb;
    step_loss(m, true, false, false, &a, &ga);
    step_loss(m, true, false, false, &b, &gb);
    CHECK(a.mlm_logits && b.mlm_logits &&
              !memcmp(a.mlm_logits->data, b.mlm_logits->data, sizeof(float) * (size_t)a.mlm_logits->numel) &&
              a.loss_total->data[0] == b.loss_total->data[0],
          "repeatable");
    xv_graph_free(ga);
    xv_graph_free(gb);
    xv_model_free(m);
}

int main(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) check_case(&CASES[i]);
    check_fd();
    return xv_test_finish("test_model_shapes");
}
