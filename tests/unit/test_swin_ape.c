/* The Swin absolute position embedding (config "ape", off in X-VLM): the
 * config key, the parameter under its official name, a zero embedding
 * changing nothing, the gradient reaching it (central differences), and the
 * save/load round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "train/pretrain_init.h"
#include "testutil.h"

static const char *CFG =
    "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 8, \"depths\": [1, 1],"
    " \"num_heads\": [1, 2], \"vision_width\": 16, \"patch_size\": 8, \"swin_patch_size\": 4%s},"
    " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 32, \"vocab_size\": 40, \"max_position_embeddings\": 16, \"fusion_layer\": 1,"
    " \"encoder_width\": 16}, \"embed_dim\": 8}";

static xv_status parse(const char *ape, xv_model_config *c) {
    char buf[1024];
    snprintf(buf, sizeof buf, CFG, ape);
    return xv_config_parse_json(buf, "ape.json", c);
}

static void test_config(void) {
    xv_model_config c, d;
    CHECK_OK(parse("", &c));
    CHECK(!c.vision.ape, "absent = off, as X-VLM builds Swin");
    char *js = xv_config_to_json(&c);
    CHECK(js && !strstr(js, "\"ape\""), "the writer leaves the default out");
    free(js);
    CHECK_OK(parse(", \"ape\": true", &c));
    CHECK(c.vision.ape, "ape true");
    js = xv_config_to_json(&c);
    CHECK(js && strstr(js, "\"ape\":"), "the writer keeps ape: true");
    CHECK(js && xv_config_parse_json(js, "roundtrip", &d) == XV_OK && d.vision.ape, "round trip");
    free(js);
    CHECK(parse(", \"ape\": 1", &c) == XV_ERR_FORMAT && strstr(xv_error_message(), "\"ape\" must be true or false"),
          "non-boolean refused: %s", xv_error_message());
}

/* Vision tokens of `m` for images (eval mode, no recording). */
static xv_tensor *vision(xv_graph *g, const xv_model *m, const float *px) {
    xv_tensor *im = xv_tensor_wrap_f32(g, (float *)px, XV_SHAPE(2, 3, 32, 32));
    return xv_model_vision(g, m, im, NULL);
}

/* Weights of `from` copied into `to` by name (both have the same parameters apart from ape). */
static void copy_weights(const xv_model *from, xv_model *to) {
    for (int i = 0; i < from->params.n; i++) {
        const xv_tensor *p = from->params.items[i];
        xv_tensor *q = xv_params_find(&to->params, p->name);
        CHECK(q && q->numel == p->numel, "%s in both models", p->name);
        if (q && q->numel == p->numel) memcpy(q->data, p->data, sizeof(float) * (size_t)p->numel);
    }
}

static void test_model(void) {
    xv_model_config c0, c1;
    CHECK_OK(parse("", &c0));
    CHECK_OK(parse(", \"ape\": true", &c1));
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *a = NULL, *b = NULL;
    CHECK_OK(xv_model_create(&c0, &parts, &a));
    CHECK_OK(xv_model_create(&c1, &parts, &b));
    if (!a || !b) return;
    CHECK(!xv_params_find(&a->params, "vision_encoder.absolute_pos_embed"), "no embedding without ape");
    xv_tensor *e = xv_params_find(&b->params, "vision_encoder.absolute_pos_embed");
    /* 32 px / patch 4 = 8 x 8 patch tokens of embed_dim 8. */
    CHECK(e && e->ndim == 3 && e->shape[0] == 1 && e->shape[1] == 64 && e->shape[2] == 8,
          "absolute_pos_embed [1, 64, 8]");
    CHECK(b->params.n == a->params.n + 1, "one parameter more");
    CHECK_OK(xv_model_init_random(a, 3));
    CHECK_OK(xv_model_init_random(b, 3));
    copy_weights(a, b);
    if (!e) return;
    float *px = malloc(sizeof(float) * 2 * 3 * 32 * 32);
    xv_test_fill_uniform(px, 2 * 3 * 32 * 32, -2, 2, 9);
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);

    /* A zero embedding adds exact zeros: the same tokens as without ape. */
    memset(e->data, 0, sizeof(float) * (size_t)e->numel);
    xv_tensor *ya = vision(g, a, px), *yb = vision(g, b, px);
    CHECK(ya && yb && ya->numel == yb->numel && !memcmp(ya->data, yb->data, sizeof(float) * (size_t)ya->numel),
          "zero embedding = no embedding");
    /* A non-zero one moves the tokens, differently per position. */
    xv_test_fill_uniform(e->data, e->numel, -0.5f, 0.5f, 4);
    yb = vision(g, b, px);
    double diff = 0;
    for (int64_t k = 0; ya && yb && k < ya->numel; k++) diff += fabs(ya->data[k] - yb->data[k]);
    CHECK(diff > 1e-3, "the embedding changes the tokens (sum |diff| %g)", diff);

    /* Gradient: L = sum r·tokens; dL/d(ape) by backward vs central differences. */
    xv_graph_set_grad(g, true);
    xv_params_set_requires_grad(&b->params, true);
    xv_graph_reset(g);
    xv_params_zero_grad(&b->params);
    yb = vision(g, b, px);
    float *r = malloc(sizeof(float) * (size_t)yb->numel);
    xv_test_fill_uniform(r, yb->numel, -1, 1, 5);
    CHECK_OK(xv_backward_with(g, yb, r));
    CHECK(e->grad != NULL, "the embedding receives a gradient");
    xv_graph_set_grad(g, false);
    int bad = 0;
    for (int t = 0; e->grad && t < 12; t++) {
        int64_t k = (t * 37 + 5) % e->numel;
        const float keep = e->data[k], h = 1e-2f;
        double l[2];
        for (int s = 0; s < 2; s++) {
            e->data[k] = keep + (s ? -h : h);
            xv_graph_reset(g);
            xv_tensor *y = vision(g, b, px);
            l[s] = 0;
            for (int64_t q = 0; y && q < y->numel; q++) l[s] += (double)r[q] * y->data[q];
        }
        e->data[k] = keep;
        double num = (l[0] - l[1]) / (2 * h), ana = e->grad[k];
        /* fp32 forward through LayerNorms and attention: central differences
         * with h = 1e-2 agree to ~1e-3 absolute, 1 % relative (testutil's bounds). */
        if (fabs(num - ana) > 2e-3 + 1e-2 * fmax(fabs(num), fabs(ana))) {
            bad++;
            fprintf(stderr, "ape grad[%lld]: numeric %.6g analytic %.6g\n", (long long)k, num, ana);
        }
    }
    CHECK(bad == 0, "%d of 12 embedding gradients differ from central differences", bad);

    /* Save and load: the embedding comes back under its name. */
    char path[256];
    xv_test_tmp_path("xv_ape_XXXXXX", path, sizeof path);
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd >= 0) close(fd);
    CHECK_OK(xv_model_save(b, path));
    xv_model *l = NULL;
    CHECK_OK(xv_model_load(&c1, path, true, &l));
    xv_tensor *le = l ? xv_params_find(&l->params, "vision_encoder.absolute_pos_embed") : NULL;
    CHECK(le && !memcmp(le->data, e->data, sizeof(float) * (size_t)e->numel), "loaded embedding");
    xv_model *l0 = NULL;
    CHECK(xv_model_load(&c0, path, true, &l0) != XV_OK && strstr(xv_error_message(), "absolute_pos_embed"),
          "a model without ape refuses the file, naming the tensor: %s", xv_error_message());
    xv_model_free(l0);
    xv_model_free(l);
    unlink(path);
    free(r);
    free(px);
    xv_graph_free(g);
    xv_model_free(a);
    xv_model_free(b);
}

/* "ape_init": "sincos": parsed, written back, refused without ape or with
 * another value, and a fresh model's table is the 2-D sine-cosine one. */
static void test_sincos_init(void) {
    xv_model_config c, d;
    CHECK_OK(parse(", \"ape\": true, \"ape_init\": \"sincos\"", &c));
    CHECK(c.vision.ape_sincos, "ape_init sincos");
    char *js = xv_config_to_json(&c);
    CHECK(js && xv_config_parse_json(js, "roundtrip", &d) == XV_OK && d.vision.ape_sincos, "round trip");
    free(js);
    CHECK(parse(", \"ape_init\": \"sincos\"", &d) == XV_ERR_FORMAT && strstr(xv_error_message(), "needs"),
          "sincos without ape refused: %s", xv_error_message());
    CHECK(parse(", \"ape\": true, \"ape_init\": \"learned\"", &d) == XV_ERR_FORMAT, "unknown ape_init refused");
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return;
    CHECK_OK(xv_pretrain_init_weights(m, 5));
    /* 32 px / patch 4 = an 8 x 8 grid, C = 8: two frequencies (1, 1/100) per axis, sin then cos. */
    const xv_tensor *t = m->vision.ape;
    double worst = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            for (int half = 0; half < 2; half++)
                for (int k = 0; k < 2; k++) {
                    const double pos = half ? x : y, w = k ? 0.01 : 1.0;
                    const float *row = t->data + (y * 8 + x) * 8 + half * 4;
                    double e1 = fabs(row[k] - sin(pos * w)), e2 = fabs(row[2 + k] - cos(pos * w));
                    worst = fmax(worst, fmax(e1, e2));
                }
    CHECK(worst < 1e-6, "sine-cosine table off by %g", worst); /* float rounding of values <= 1 */
    xv_model_free(m);
}

int main(void) {
    test_config();
    test_model();
    test_sincos_init();
    return xv_test_finish("test_swin_ape");
}
