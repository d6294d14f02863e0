/* Model weights: official names and counts, save/load round trips (borrowed
 * from the mapping and copied), both text layouts, tied weights, and every
 * kind of broken model file refused with an error naming the tensor. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/relpos_interp.h"
#include "model/model.h"
#include "testutil.h"

/* A small model: 32 px, patch 4, window 4, two Swin stages (8x8 then 4x4
 * tokens), BERT of 2 layers with cross-attention from layer 1. */
static const char *SMALL =
    "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 8, \"depths\": [2, 1],"
    " \"num_heads\": [1, 2], \"vision_width\": 16, \"patch_size\": 8},"
    " \"text\": {\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 32, \"vocab_size\": 50, \"max_position_embeddings\": 16, \"fusion_layer\": 1},"
    " \"embed_dim\": 8}";

static xv_model_config small_config(int hidden, int layers) {
    char buf[1024];
    snprintf(buf, sizeof buf, SMALL, hidden, layers);
    xv_model_config c;
    xv_status st = xv_config_parse_json(buf, "small", &c);
    CHECK(st == XV_OK, "small config: %s", xv_error_message());
    return c;
}

static char g_dir[64];
static char *path(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

/* Rewrite `src` into `dst`: tensors named in `drop` are left out; `rename`
 * maps prefix a -> b; `reshape` gives one tensor a new (compatible-size) shape
 * by flattening; `extra` adds one more F32 tensor of 4 values. */
typedef struct {
    const char *drop[8];
    const char *rename_from, *rename_to;
    const char *flatten;
    const char *extra;
    const char *as_f16; /* store this tensor as F16 (exact for these values) */
    const char *as_i64; /* store this tensor as I64 */
    const char *perturb; /* change one value of this tensor */
} edit;

static void rewrite(const char *src, const char *dst, const edit *e) {
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(src, &f));
    xv_st_writer *w = NULL;
    CHECK_OK(xv_st_writer_new(&w));
    if (!f || !w) return;
    for (int i = 0; i < xv_st_count(f); i++) {
        const xv_st_tensor *t = xv_st_at(f, i);
        bool skip = false;
        for (int d = 0; d < 8; d++) skip |= e->drop[d] && !strcmp(e->drop[d], t->name);
        if (skip) continue;
        char name[512];
        snprintf(name, sizeof name, "%s", t->name);
        if (e->rename_from && !strncmp(t->name, e->rename_from, strlen(e->rename_from)))
            snprintf(name, sizeof name, "%s%s", e->rename_to, t->name + strlen(e->rename_from));
        int64_t shape[8];
        int ndim = t->ndim;
        memcpy(shape, t->shape, sizeof(int64_t) * (size_t)ndim);
        if (e->flatten && !strcmp(e->flatten, t->name)) {
            shape[0] = t->numel;
            ndim = 1;
        }
        if (e->as_f16 && !strcmp(e->as_f16, t->name)) {
            uint16_t *h = calloc((size_t)t->numel, 2);
            for (int64_t k = 0; k < t->numel; k++) h[k] = k % 2 ? 0x3C00 /* 1.0 */ : 0xC000 /* -2.0 */;
            CHECK_OK(xv_st_writer_add(w, name, XV_ST_F16, shape, ndim, h, false));
            free(h);
            continue;
        }
        if (e->as_i64 && !strcmp(e->as_i64, t->name)) {
            int64_t *v = calloc((size_t)t->numel, 8);
            CHECK_OK(xv_st_writer_add(w, name, XV_ST_I64, shape, ndim, v, false));
            free(v);
            continue;
        }
        if (e->perturb && !strcmp(e->perturb, t->name)) {
            float *v = malloc(t->nbytes);
            memcpy(v, t->data, t->nbytes);
            v[0] += 1.0f;
            CHECK_OK(xv_st_writer_add(w, name, XV_ST_F32, shape, ndim, v, false));
            free(v);
            continue;
        }
        CHECK_OK(xv_st_writer_add(w, name, t->dtype, shape, ndim, t->data, true));
    }
    if (e->extra) {
        float v[4] = {1, 2, 3, 4};
        CHECK_OK(xv_st_writer_add(w, e->extra, XV_ST_F32, XV_SHAPE(4), v, false));
    }
    CHECK_OK(xv_st_writer_write(w, dst));
    xv_st_writer_free(w);
    xv_st_close(f);
}

static void expect_refused(const xv_model_config *c, const char *file, xv_status code, const char *n1,
                           const char *n2, const char *what) {
    xv_model *m = NULL;
    xv_status st = xv_model_load(c, file, false, &m);
    CHECK(st == code && m == NULL, "%s: status %d (expected %d): %s", what, (int)st, (int)code, xv_error_message());
    CHECK(strstr(xv_error_message(), n1) != NULL, "%s: \"%s\" lacks \"%s\"", what, xv_error_message(), n1);
    if (n2) CHECK(strstr(xv_error_message(), n2) != NULL, "%s: \"%s\" lacks \"%s\"", what, xv_error_message(), n2);
    printf("  refused (%s): %s\n", what, xv_error_message());
    xv_model_free(m);
}

static bool same_values(const xv_model *a, const xv_model *b) {
    if (a->params.n != b->params.n) return false;
    for (int i = 0; i < a->params.n; i++) {
        const xv_tensor *x = a->params.items[i], *y = xv_params_find(&b->params, x->name);
        if (!y || x->numel != y->numel || memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel)) return false;
    }
    return true;
}

/* Parameter count of the small model, from the formulas of §1 / §8.4. */
static int64_t expected_count(const xv_model_config *c) {
    const int64_t H = c->text.hidden, I = c->text.intermediate, V = c->text.vocab, E = c->embed_dim,
                  Cv = c->vision.vision_width;
    int64_t n = 8 * 3 * 4 * 4 + 8 + 2 * 8; /* patch embed conv + norm */
    for (int s = 0; s < c->vision.n_stages; s++) {
        xv_swin_stage_geom g = xv_swin_stage(&c->vision, s);
        int64_t C = g.dim, W = g.window;
        n += c->vision.depths[s] * (12 * C * C + 13 * C + (2 * W - 1) * (2 * W - 1) * g.heads);
        if (s + 1 < c->vision.n_stages) n += 8 * C * C + 8 * C; /* reduction 4C->2C, norm 4C */
    }
    n += 2 * Cv;                                           /* final norm */
    n += (V + c->text.max_positions + c->text.type_vocab) * H + 2 * H; /* embeddings */
    int64_t self = 4 * (H * H + H) + 2 * H + 2 * H * I + I + H + 2 * H;
    int64_t cross = 2 * (H * H + H) + 2 * (Cv * H + H) + 2 * H;
    n += c->text.layers * self + (c->text.layers - c->text.fusion_layer) * cross;
    n += H * H + H + 2 * H + V;                            /* MLM transform + bias */
    n += Cv * E + E + H * E + E + 1;                       /* projections + temp */
    n += 2 * (H * 2 * H + 2 * H + 4 * H + 2 * H * 2 + 2) + 2 * 2 * H + 2; /* itm (2) + bbox (4) heads */
    return n;
}

int main(void) {
    CHECK(xv_test_scratch_dir("xv_model_load", g_dir, sizeof g_dir), "mkdtemp");
    xv_model_config c = small_config(16, 2);
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return xv_test_finish("test_model_load");
    CHECK_OK(xv_model_init_random(m, 7));
    CHECK(xv_params_count(&m->params) == expected_count(&c), "parameter count %lld, formula %lld",
          (long long)xv_params_count(&m->params), (long long)expected_count(&c));
    CHECK(xv_params_find(&m->params, "vision_encoder.layers.0.blocks.1.attn.relative_position_bias_table") != NULL &&
              xv_params_find(&m->params, "vision_encoder.layers.1.blocks.0.attn.relative_position_bias_table")
                      ->shape[0] == 49,
          "stage 1 (4x4 tokens = window) table has (2·4-1)^2 rows");
    CHECK(xv_params_find(&m->params, "text_encoder.bert.encoder.layer.0.crossattention.self.key.weight") == NULL &&
              xv_params_find(&m->params, "text_encoder.bert.encoder.layer.1.crossattention.self.key.weight")->shape[1] ==
                  16,
          "cross-attention only from fusion_layer on, keys from the vision width");
    CHECK(xv_params_find(&m->params, "text_encoder.cls.predictions.decoder.weight") == m->text.word, "tied decoder");
    CHECK(xv_params_find(&m->params, "text_encoder.cls.predictions.decoder.bias") == m->mlm.bias, "tied bias");
    CHECK(m->temp->ndim == 0 && m->temp->data[0] == 0.07f, "temp is a 0-dim parameter at config temp");
    CHECK(m->text.word->data[0] == 0.0f && m->text.word->data[16] != 0.0f, "padding row zero, others random");

    /* Round trips. */
    char good[128];
    snprintf(good, sizeof good, "%s", path("good.safetensors"));
    CHECK_OK(xv_model_save(m, good));
    xv_model *b = NULL;
    CHECK_OK(xv_model_load(&c, good, false, &b));
    CHECK(b && same_values(m, b), "borrowed load reproduces every parameter");
    CHECK(b && b->mapped != NULL && b->temp->data[0] == 0.07f, "weights borrowed; temp owned");
    xv_model_free(b);
    CHECK_OK(xv_model_load(&c, good, true, &b));
    CHECK(b && same_values(m, b) && b->mapped == NULL, "copied load");
    xv_model_free(b);

    /* Buffers of the official state_dict are accepted and ignored; the tied
     * decoder names may be absent. */
    edit e1 = {.drop = {"text_encoder.cls.predictions.decoder.weight", "text_encoder.cls.predictions.decoder.bias"},
               .extra = "vision_encoder.layers.0.blocks.1.attn_mask"};
    rewrite(good, path("e1.safetensors"), &e1);
    CHECK_OK(xv_model_load(&c, path("e1.safetensors"), false, &b));
    CHECK(b && same_values(m, b), "without the tied names");
    xv_model_free(b);
    /* Only the decoder name of the tied pair stored. */
    edit e1b = {.drop = {"text_encoder.bert.embeddings.word_embeddings.weight", "text_encoder.cls.predictions.bias"}};
    rewrite(good, path("e1b.safetensors"), &e1b);
    CHECK_OK(xv_model_load(&c, path("e1b.safetensors"), false, &b));
    CHECK(b && same_values(m, b), "tied weights under the decoder names only");
    xv_model_free(b);

    /* Fine-tuning layout (text_encoder.* without bert.), here without the MLM head. */
    edit e2 = {.rename_from = "text_encoder.bert.", .rename_to = "text_encoder.",
               .drop = {"text_encoder.cls.predictions.bias", "text_encoder.cls.predictions.decoder.weight",
                        "text_encoder.cls.predictions.decoder.bias", "text_encoder.cls.predictions.transform.dense.weight",
                        "text_encoder.cls.predictions.transform.dense.bias",
                        "text_encoder.cls.predictions.transform.LayerNorm.weight",
                        "text_encoder.cls.predictions.transform.LayerNorm.bias"}};
    rewrite(good, path("e2.safetensors"), &e2);
    CHECK_OK(xv_model_load(&c, path("e2.safetensors"), false, &b));
    CHECK(b && b->parts.layout == XV_LAYOUT_FINETUNE && !b->parts.mlm && b->parts.itm && b->parts.itc,
          "fine-tuning layout detected, no MLM head");
    CHECK(b && xv_params_find(&b->params, "text_encoder.encoder.layer.1.crossattention.self.query.weight") != NULL &&
              xv_params_count(&b->params) == expected_count(&c) - (16 * 16 + 16 + 2 * 16 + 50),
          "fine-tuning names and count");
    xv_model_free(b);
    /* An MLM head with a tensor missing. */
    edit e3 = {.drop = {"text_encoder.cls.predictions.transform.dense.weight"}};
    rewrite(good, path("e3.safetensors"), &e3);
    expect_refused(&c, path("e3.safetensors"), XV_ERR_MISSING, "text_encoder.cls.predictions.transform.dense.weight",
                   "[16,16]", "partial MLM head");

    /* Broken files: one edit each, the error it must give (status, two words of
     * the message). */
    static const struct {
        edit e;
        xv_status code;
        const char *n1, *n2, *what;
    } broken[] = {
        {{.drop = {"vision_encoder.layers.0.blocks.1.attn.qkv.weight"}}, XV_ERR_MISSING,
         "vision_encoder.layers.0.blocks.1.attn.qkv.weight", "[24,8]", "missing tensor"},
        {{.flatten = "text_proj.weight"}, XV_ERR_SHAPE, "text_proj.weight has shape [128]", "expects [8,16]",
         "wrong shape"},
        {{.extra = "text_encoder.bert.pooler.dense.bias"}, XV_ERR_FORMAT,
         "unexpected tensor text_encoder.bert.pooler.dense.bias", "[4]", "unexpected tensor"},
        {{.perturb = "text_encoder.cls.predictions.decoder.weight"}, XV_ERR_FORMAT,
         "text_encoder.cls.predictions.decoder.weight", "differ", "tied tensors differ"},
        {{.as_i64 = "itm_head.3.bias"}, XV_ERR_FORMAT, "itm_head.3.bias", "I64", "integer weights"},
        {{.rename_from = "text_encoder.bert.encoder.layer.0.", .rename_to = "text_encoder.encoder.layer.0."},
         XV_ERR_FORMAT, "mixes", NULL, "mixed layouts"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.safetensors", i + 1);
        rewrite(good, path(name), &broken[i].e);
        expect_refused(&c, path(name), broken[i].code, broken[i].n1, broken[i].n2, broken[i].what);
    }

    /* F16 weights are converted. */
    edit f16 = {.as_f16 = "bbox_head.3.weight"};
    rewrite(good, path("f16.safetensors"), &f16);
    CHECK_OK(xv_model_load(&c, path("f16.safetensors"), false, &b));
    CHECK(b && b->bbox_head.fc3.w->data[0] == -2.0f && b->bbox_head.fc3.w->data[1] == 1.0f, "F16 converted");
    xv_model_free(b);

    /* Config and weights that disagree. */
    xv_model_config wide = small_config(32, 2), deep = small_config(16, 3), shallow = small_config(16, 1);
    expect_refused(&wide, good, XV_ERR_SHAPE, "[50,16]", "expects [50,32]", "hidden size mismatch");
    expect_refused(&deep, good, XV_ERR_MISSING, "text_encoder.bert.encoder.layer.2.", "missing", "more layers");
    expect_refused(&shallow, good, XV_ERR_FORMAT, "unexpected tensor text_encoder.bert.encoder.layer.1.", NULL,
                   "fewer layers");
    /* Another window: every table resampled as the official loader does, the
     * rest loaded as stored. */
    xv_model_config win = c;
    win.vision.window = 2; /* tables of (2·2-1)² rows: the stored ones have 49 */
    CHECK_OK(xv_model_load(&win, good, false, &b));
    int resized = 0;
    for (int i = 0; b && i < b->params.n; i++) {
        const xv_tensor *x = b->params.items[i], *y = xv_params_find(&m->params, x->name);
        if (!strstr(x->name, "relative_position_bias_table")) {
            CHECK(y && !memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel), "%s loaded as stored", x->name);
            continue;
        }
        float want[9 * 2];
        CHECK(x->shape[0] == 9 && x->shape[1] <= 2, "%s resized to 3x3", x->name);
        CHECK_OK(xv_relpos_interp(y->data, 49, (int)x->shape[1], want, 9));
        CHECK(!memcmp(want, x->data, sizeof(float) * (size_t)x->numel), "%s equals the interpolation", x->name);
        resized++;
    }
    CHECK(resized == 3, "3 tables resized (got %d)", resized);
    /* ... and back: a 3x3 table is too small for the cubic spline. */
    if (b) CHECK_OK(xv_model_save(b, path("win2.safetensors")));
    xv_model_free(b);
    expect_refused(&c, path("win2.safetensors"), XV_ERR_SHAPE, "relative_position_bias_table", "too small",
                   "window grown from 2");

    /* A damaged file: truncated in the middle of the data. */
    {
        uint8_t *buf = NULL;
        size_t n = 0;
        CHECK_OK(xv_fs_read_file(good, INT64_C(1) << 30, &buf, &n));
        CHECK_OK(xv_fs_write_file(path("trunc.safetensors"), buf, n / 2, XV_FS_NO_FSYNC));
        free(buf);
        xv_model *t = NULL;
        CHECK(xv_model_load(&c, path("trunc.safetensors"), false, &t) != XV_OK && !t, "truncated file refused");
        printf("  refused (truncated): %s\n", xv_error_message());
        CHECK(xv_model_load(&c, path("absent.safetensors"), false, &t) != XV_OK && !t, "absent file refused");
    }
    /* load_dir reads config.json next to the weights. */
    {
        char *js = xv_config_to_json(&c);
        FILE *f = fopen(path("config.json"), "w");
        fputs(js, f);
        fclose(f);
        free(js);
        rename(good, path("weights.safetensors"));
        CHECK_OK(xv_model_load_dir(g_dir, false, &b));
        CHECK(b && same_values(m, b), "load_dir");
        xv_model_free(b);
    }

    xv_model_free(m);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0, "cleanup");
    return xv_test_finish("test_model_load");
}
