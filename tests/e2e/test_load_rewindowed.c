/* A 224-px model (window 7) loaded with a 384-px / window-12 config: the
 * loader resamples every Swin relative-position table exactly as `xvlm
 * convert --image-res 384 --window 12` does (the official loader's
 * interpolation), so both give bit-identical weights, and the model then runs
 * at 384 px. The model is the tiny fixture checkpoint (tests/data/torch/
 * tiny_fixture.th: 4 stages, 8 tables of 13x13 -> 23x23 at windows 7 -> 12). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "testutil.h"

static char dir[64];

static const char *in_dir(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* The vision tokens of `m` for `images` [n,3,res,res] (inference). */
static float *vision_out(const xv_model *m, const float *images, int n, int64_t *numel) {
    const int res = m->cfg.vision.image_res;
    xv_graph *g = xv_graph_new(0);
    xv_tensor *img = xv_tensor_wrap_f32(g, (float *)images, XV_SHAPE(n, 3, res, res));
    xv_tensor *out = xv_model_vision(g, m, img, NULL);
    float *copy = NULL;
    if (xv_graph_status(g) == XV_OK) {
        *numel = out->numel;
        copy = malloc(sizeof(float) * (size_t)out->numel);
        if (copy) memcpy(copy, out->data, sizeof(float) * (size_t)out->numel);
        CHECK(out->ndim == 3 && out->shape[1] == 1 + 12 * 12, "384 px gives 1 + 12x12 tokens");
    }
    CHECK(copy, "forward: %s", xv_error_message());
    xv_graph_free(g);
    return copy;
}

int main(void) {
    const char *bin = getenv("XV_BIN"), *src = getenv("XV_SOURCE_DIR");
    if (!bin || !src) return xv_test_skip("XV_BIN / XV_SOURCE_DIR not set (run through ctest)");
    if (!xv_test_scratch_dir("xv_rewindow", dir, sizeof dir)) return 1;
    char cmd[4096];
    /* the fixture's BERT has 2 heads of 32 (not inferable from shapes) */
    snprintf(cmd, sizeof cmd, "%s convert %s/tests/data/torch/tiny_fixture.th %s/m224 --text-heads 2", bin, src, dir);
    CHECK(xv_test_run(cmd) == 0, "convert at 224 failed");
    snprintf(cmd, sizeof cmd,
             "%s convert %s/tests/data/torch/tiny_fixture.th %s/m384 --text-heads 2 --image-res 384 --window 12", bin,
             src, dir);
    CHECK(xv_test_run(cmd) == 0, "convert at 384 failed");

    xv_model_config c384;
    CHECK_OK(xv_config_load(in_dir("m384/config.json"), &c384));
    CHECK(c384.vision.image_res == 384 && c384.vision.window == 12, "the 384 config");
    xv_model *a = NULL, *b = NULL;
    CHECK_OK(xv_model_load(&c384, in_dir("m224/weights.safetensors"), true, &a)); /* interpolated here */
    CHECK_OK(xv_model_load_dir(in_dir("m384"), true, &b));                        /* by the converter */
    if (!a || !b) return xv_test_finish("test_load_rewindowed");

    xv_st_file *f224 = NULL;
    CHECK_OK(xv_st_open(in_dir("m224/weights.safetensors"), &f224));
    int tables = 0, differ = 0;
    for (int i = 0; i < a->params.n; i++) {
        const xv_tensor *x = a->params.items[i], *y = xv_params_find(&b->params, x->name);
        if (!y || x->numel != y->numel || memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel)) {
            if (differ++ < 3) CHECK(0, "%s differs from the converter's", x->name);
            continue;
        }
        if (strstr(x->name, "relative_position_bias_table")) {
            const xv_st_tensor *s = f224 ? xv_st_find(f224, x->name) : NULL;
            CHECK(s && s->shape[0] == 169 && x->shape[0] == 529, "%s: 13x13 -> 23x23", x->name);
            tables++;
        }
    }
    xv_st_close(f224);
    CHECK(differ == 0, "%d tensors differ (bitwise) from `xvlm convert --image-res 384 --window 12`", differ);
    CHECK(tables == 8, "8 tables resized, got %d", tables);

    /* A forward at 384 px runs, finite, and equals the converted model's. */
    const int n = 2, res = 384;
    float *px = malloc(sizeof(float) * (size_t)n * 3 * res * res);
    xv_rng r;
    xv_rng_seed(&r, 7);
    for (int64_t k = 0; k < (int64_t)n * 3 * res * res; k++) px[k] = xv_rng_normal(&r);
    int64_t na = 0, nb = 0;
    float *va = vision_out(a, px, n, &na), *vb = vision_out(b, px, n, &nb);
    int finite = 1;
    for (int64_t k = 0; va && k < na; k++) finite &= isfinite(va[k]) != 0;
    CHECK(va && finite, "finite vision tokens at 384 px");
    CHECK(va && vb && na == nb && !memcmp(va, vb, sizeof(float) * (size_t)na), "same tokens as the converted model");
    free(va), free(vb), free(px);
    xv_model_free(a);
    xv_model_free(b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    xv_test_run(cmd);
    return xv_test_finish("test_load_rewindowed");
}
