/* Model config: the project's config.json, the official YAML + JSON files,
 * stage geometry, and refusal of configs the official code cannot build. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/config.h"
#include "testutil.h"

/* A tiny config in the fixture layout; %s slots let a test replace values. */
static const char *TINY =
    "{\"vision\": {\"type\": \"swin\", \"image_res\": %d, \"window_size\": %d, \"embed_dim\": 32,"
    " \"depths\": [2, 2, 2, 2], \"num_heads\": [%d, 2, 4, 8], \"vision_width\": %d, \"patch_size\": 32,"
    " \"swin_patch_size\": 4, \"drop_path_rate\": 0.1},"
    " \"text\": {\"hidden_size\": 64, \"num_hidden_layers\": 4, \"num_attention_heads\": %d,"
    " \"intermediate_size\": 128, \"vocab_size\": 1000, \"max_position_embeddings\": 64,"
    " \"type_vocab_size\": 2, \"fusion_layer\": %d, \"encoder_width\": 256, \"layer_norm_eps\": 1e-12,"
    " \"hidden_act\": \"gelu\", \"pad_token_id\": 0},"
    " \"embed_dim\": 32, \"temp\": 0.07, \"temp_clamp\": [0.001, 0.5], \"head_layer_norm_eps\": 1e-05}";

static xv_status parse_tiny(int res, int win, int heads0, int width, int text_heads, int fusion,
                            xv_model_config *c) {
    char buf[2048];
    snprintf(buf, sizeof buf, TINY, res, win, heads0, width, text_heads, fusion);
    return xv_config_parse_json(buf, "tiny.json", c);
}

static void test_tiny_json(void) {
    xv_model_config c;
    CHECK_OK(parse_tiny(224, 7, 1, 256, 2, 2, &c));
    CHECK(c.vision.n_stages == 4 && c.vision.depths[3] == 2 && c.vision.heads[3] == 8, "stages");
    CHECK(c.text.hidden == 64 && c.text.fusion_layer == 2 && c.text.encoder_width == 256, "text");
    CHECK(c.embed_dim == 32 && c.temp == 0.07f && c.temp_min == 0.001f && c.temp_max == 0.5f, "model keys");
    CHECK(c.text.ln_eps == 1e-12f && c.vision.ln_eps == 1e-5f && c.head_ln_eps == 1e-5f, "eps");
    CHECK(xv_config_num_patches(&c) == 49, "49 patches at 224");

    /* Round trip through the writer. */
    char *js = xv_config_to_json(&c);
    xv_model_config d;
    CHECK(js != NULL, "to_json");
    CHECK_OK(xv_config_parse_json(js, "roundtrip", &d));
    CHECK(memcmp(&c, &d, sizeof c) == 0, "round trip keeps every field");
    free(js);
}

static void test_geometry(void) {
    xv_model_config c;
    CHECK_OK(parse_tiny(224, 7, 1, 256, 2, 2, &c));
    int res[4] = {56, 28, 14, 7}, shift[4] = {3, 3, 3, 0}, nw[4] = {64, 16, 4, 1};
    for (int s = 0; s < 4; s++) {
        xv_swin_stage_geom g = xv_swin_stage(&c.vision, s);
        CHECK(g.res == res[s] && g.window == 7 && g.shift == shift[s] && g.n_windows == nw[s],
              "224/7 stage %d: res %d window %d shift %d nW %d", s, g.res, g.window, g.shift, g.n_windows);
        CHECK(g.dim == 32 << s, "dim");
    }
    /* 384/12: last stage equals the window (one window, no shift). */
    CHECK_OK(parse_tiny(384, 12, 1, 256, 2, 2, &c));
    xv_swin_stage_geom g3 = xv_swin_stage(&c.vision, 3);
    CHECK(g3.res == 12 && g3.window == 12 && g3.shift == 0 && g3.n_windows == 1, "384 last stage");
    CHECK(xv_swin_stage(&c.vision, 0).shift == 6, "384 shift 6");
    CHECK(xv_config_num_patches(&c) == 144, "144 patches at 384");
    /* 480/15: 120, 60, 30, 15 tokens, shift 7; the last stage is one window. */
    CHECK_OK(parse_tiny(480, 15, 1, 256, 2, 2, &c));
    CHECK(xv_swin_stage(&c.vision, 0).shift == 7 && xv_swin_stage(&c.vision, 0).n_windows == 64 &&
              xv_swin_stage(&c.vision, 3).n_windows == 1 && xv_swin_stage(&c.vision, 3).shift == 0,
          "480/15 geometry");
    CHECK(xv_config_num_patches(&c) == 225, "225 patches at 480");
    /* 64/8: stages 16, 8, 4, 2 — the last two are smaller than the window. */
    CHECK_OK(parse_tiny(64, 8, 1, 256, 2, 2, &c));
    int w64[4] = {8, 8, 4, 2}, s64[4] = {4, 0, 0, 0};
    for (int s = 0; s < 4; s++) {
        xv_swin_stage_geom g = xv_swin_stage(&c.vision, s);
        CHECK(g.window == w64[s] && g.shift == s64[s] && g.n_windows == (s == 0 ? 4 : 1),
              "64/8 stage %d: window %d shift %d", s, g.window, g.shift);
    }
}

static void expect_error(xv_status st, xv_status code, const char *needle, const char *what) {
    CHECK(st == code, "%s: status %d (expected %d): %s", what, (int)st, (int)code, xv_error_message());
    CHECK(strstr(xv_error_message(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, xv_error_message(),
          needle);
}

static void test_refusals(void) {
    xv_model_config c;
    expect_error(parse_tiny(224, 6, 1, 256, 2, 2, &c), XV_ERR_INVALID_ARG, "window_size 6", "window 6 at 224");
    expect_error(parse_tiny(224, 7, 3, 256, 2, 2, &c), XV_ERR_INVALID_ARG, "3 heads do not divide", "swin heads");
    expect_error(parse_tiny(224, 7, 1, 512, 2, 2, &c), XV_ERR_INVALID_ARG, "vision_width 512", "vision width");
    expect_error(parse_tiny(224, 7, 1, 256, 3, 2, &c), XV_ERR_INVALID_ARG, "3 attention heads", "bert heads");
    expect_error(parse_tiny(224, 7, 1, 256, 2, 5, &c), XV_ERR_INVALID_ARG, "fusion_layer 5", "fusion layer");
    /* 112 px: stage 2 has 7x7 tokens and cannot be merged. */
    expect_error(parse_tiny(112, 7, 1, 256, 2, 2, &c), XV_ERR_INVALID_ARG, "even size", "odd stage");
    expect_error(parse_tiny(226, 7, 1, 256, 2, 2, &c), XV_ERR_INVALID_ARG, "multiple of the patch", "image_res");
    expect_error(xv_config_parse_json("{\"vision\": {}}", "x.json", &c), XV_ERR_MISSING, "\"text\"",
                 "missing text");
    expect_error(xv_config_parse_json("{\"vision\": {\"image_res\": 224}, \"text\": {}}", "x.json", &c),
                 XV_ERR_MISSING, "window_size", "missing window");
    expect_error(xv_config_parse_json("{\"vision\": [", "x.json", &c), XV_ERR_FORMAT, "x.json", "bad JSON");
    expect_error(xv_config_load("/nonexistent/config.json", &c), XV_ERR_IO, "/nonexistent/config.json",
                 "missing file");
    char buf[2048];
    snprintf(buf, sizeof buf, TINY, 224, 7, 1, 256, 2, 2);
    char *p = strstr(buf, "[2, 2, 2, 2]");
    memcpy(p, "[2,2,2.5, 2]", 12); /* same length as the original */
    expect_error(xv_config_parse_json(buf, "x.json", &c), XV_ERR_FORMAT, "\"depths\"[2]", "fractional depth");
    snprintf(buf, sizeof buf, TINY, 224, 7, 1, 256, 2, 2);
    p = strstr(buf, "\"swin\"");
    memcpy(p, "\"deit\"", 6);
    expect_error(xv_config_parse_json(buf, "x.json", &c), XV_ERR_UNSUPPORTED, "deit", "vision type");
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Official layout: configs/Task.yaml naming 'configs/swin.json' relative to the repository root. */
static void test_yaml(void) {
    char root[64];
    CHECK(xv_test_scratch_dir("xv_cfg", root, sizeof root), "mkdtemp");
    char dir[64], yml[96], sj[96], bj[96];
    CHECK(snprintf(dir, sizeof dir, "%s/configs", root) < (int)sizeof dir, "path");
    CHECK(mkdir(dir, 0700) == 0, "mkdir");
    CHECK(snprintf(yml, sizeof yml, "%s/Pretrain.yaml", dir) < (int)sizeof yml, "path");
    CHECK(snprintf(sj, sizeof sj, "%s/swin_b_224.json", dir) < (int)sizeof sj, "path");
    CHECK(snprintf(bj, sizeof bj, "%s/bert.json", dir) < (int)sizeof bj, "path");
    write_file(sj, "{\"ckpt\": \"x.pth\", \"vision_width\": 1024, \"image_res\": 224, \"window_size\": 7,"
                   " \"embed_dim\": 128, \"depths\": [2, 2, 18, 2], \"num_heads\": [4, 8, 16, 32]}");
    write_file(bj, "{\"hidden_size\": 768, \"num_hidden_layers\": 12, \"num_attention_heads\": 12,"
                   " \"intermediate_size\": 3072, \"vocab_size\": 30522, \"fusion_layer\": 6,"
                   " \"encoder_width\": 1024, \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12}");
    write_file(yml, "## Data\ntrain_file: [\n  'a', 'b',\n]\n"
                    "images: {image_key: \"binary\", batch_size: 128}\n"
                    "use_clip_vit: False\nuse_swin: True\n"
                    "vision_config: 'configs/swin_b_224.json'\nimage_res: 224\npatch_size: 32\n"
                    "use_roberta: False\ntext_config: 'configs/bert.json'  # a comment\n"
                    "embed_dim: 256\ntemp: 0.07\n"
                    "optimizer: {opt: adamW, lr: 1e-4, weight_decay: 0.01, lr_mult: 2}\n");
    xv_model_config c;
    CHECK_OK(xv_config_load(yml, &c));
    CHECK(c.vision.vision_width == 1024 && c.vision.depths[2] == 18 && c.vision.heads[3] == 32, "swin-B");
    CHECK(c.text.hidden == 768 && c.text.fusion_layer == 6 && c.text.encoder_width == 1024, "bert-base");
    CHECK(c.embed_dim == 256 && c.temp == 0.07f && c.vision.region_stride == 32, "task keys");
    CHECK(c.vision.drop_path_rate == 0.1f && c.text.max_positions == 512, "defaults");

    write_file(yml, "use_swin: True\nvision_config: 'configs/swin_b_224.json'\nimage_res: 384\n"
                    "patch_size: 32\ntext_config: 'configs/bert.json'\n");
    expect_error(xv_config_load(yml, &c), XV_ERR_INVALID_ARG, "image_res 384", "yaml/json res mismatch");
    write_file(yml, "use_clip_vit: True\nvision_config: 'configs/swin_b_224.json'\n");
    expect_error(xv_config_load(yml, &c), XV_ERR_UNSUPPORTED, "use_clip_vit", "clip");
    write_file(yml, "use_swin: True\nvision_config: 'configs/none.json'\ntext_config: 'configs/bert.json'\n");
    expect_error(xv_config_load(yml, &c), XV_ERR_IO, "configs/none.json", "missing vision json");
    /* YAML 1.2 (ruamel's default): "yes" is a string, which the official `if config['use_swin']` would take
     * as true even for "no"; refused rather than guessed. */
    write_file(yml, "use_swin: yes\nvision_config: 'configs/swin_b_224.json'\n");
    expect_error(xv_config_load(yml, &c), XV_ERR_FORMAT, "Pretrain.yaml:1: \"use_swin\" must be true or false",
                 "yes is not a YAML 1.2 boolean");
    write_file(yml, "use_swin: True\nimage_res: [1\n");
    expect_error(xv_config_load(yml, &c), XV_ERR_FORMAT, "Pretrain.yaml:", "broken yaml");

    unlink(yml);
    unlink(sj);
    unlink(bj);
    rmdir(dir);
    rmdir(root);
}

static void test_fixture_config(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny/config.json", fx);
    xv_model_config c;
    CHECK_OK(xv_config_load(path, &c));
    CHECK(c.vision.embed_dim == 32 && c.vision.vision_width == 256 && c.text.layers == 4 && c.embed_dim == 32,
          "fixture tiny config");
}

int main(void) {
    test_tiny_json();
    test_geometry();
    test_refusals();
    test_yaml();
    test_fixture_config();
    return xv_test_finish("test_config");
}
