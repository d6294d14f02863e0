/* --precision bf16 on the tiny golden model: `xvlm forward --precision bf16`
 * must reproduce every output tensor of both steps of the official fp32
 * forward within the bf16 tolerance below, must really differ from fp32 (the
 * bf16 products ran), and must be refused with a clear error where oneDNN
 * reports no AVX512-BF16 (ONEDNN_MAX_CPU_ISA lowers what it reports). The
 * fp32 path is unchanged: test_forward_tiny holds it to 1e-4 of the golden
 * outputs, and here the bf16 copies are given to exactly the Linear weights
 * and dropped again by fp32.
 *
 * Tolerance 2^-6 · max(1, max|ref|) per tensor. Each Linear product rounds
 * its weights and its input to bf16, a relative error of at most u = 2^-9
 * each (8 significant bits, nearest even), so each product term is off by up
 * to 2u; LayerNorm after every block rescales, so the error does not grow
 * with depth but is carried by each of the dozen products on the way from the
 * image to sim_i2t = feat·featᵀ / 0.07 (the temperature scales it by 14).
 * Measured worst: 1.03e-2 on sim_i2t, 5.5e-3 on the vision encoder output,
 * 3.6e-3 on the ITM logits; 2^-6 = 8u = 1.56e-2 is 1.5x the worst, while a
 * wrong weight, mask or layout is off by O(1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "model/model_source.h"
#include "model/precision.h"
#include "ops/gemm.h"
#include "golden.h"
#include "testutil.h"

#define BF16_TOL (1.0 / 64)

/* max|a - b| / max(1, max|a|) of tensor `name` in two output files. */
static double rel_diff(const char *path_a, const char *path_b, const char *name) {
    xv_st_file *fa = NULL, *fb = NULL;
    double worst = -1;
    if (xv_st_open(path_a, &fa) == XV_OK && xv_st_open(path_b, &fb) == XV_OK) {
        const xv_st_tensor *ta = xv_st_find(fa, name), *tb = xv_st_find(fb, name);
        float *a = ta ? malloc(sizeof(float) * (size_t)ta->numel) : NULL;
        float *b = tb ? malloc(sizeof(float) * (size_t)tb->numel) : NULL;
        if (a && b && ta->numel == tb->numel && xv_st_read_f32(fa, ta, a) == XV_OK && xv_st_read_f32(fb, tb, b) == XV_OK) {
            double d = 0, m = 1;
            for (int64_t i = 0; i < ta->numel; i++) {
                d = fmax(d, fabs((double)a[i] - b[i]));
                m = fmax(m, fabs((double)a[i]));
            }
            worst = d / m;
        }
        free(a);
        free(b);
    }
    xv_st_close(fa);
    xv_st_close(fb);
    return worst;
}

/* The bf16 copies go to the 2-D *.weight parameters that are not embedding
 * tables, and fp32 drops them all. */
static void check_converted_params(const char *dir) {
    xv_model *m = NULL;
    const xv_infer_opts infer = {0};
    CHECK(xv_model_open(dir, &infer, false, &m) == XV_OK, "open %s: %s", dir, xv_error_message());
    if (!m) return;
    CHECK(xv_params_set_precision(&m->params, XV_PRECISION_BF16) == XV_OK, "bf16: %s", xv_error_message());
    int linear = 0;
    for (int i = 0; i < m->params.n; i++) {
        const xv_tensor *t = m->params.items[i];
        bool want = t->ndim == 2 && strstr(t->name, ".weight") && !strstr(t->name, "embeddings");
        linear += want;
        CHECK((t->bf16 != NULL) == want, "%s: bf16 copy %s", t->name, t->bf16 ? "given" : "missing");
        if (t->bf16 && t->numel > 0)
            CHECK(fabsf(xv_bf16_to_f32(t->bf16[0]) - t->data[0]) <= fabsf(t->data[0]) / 256,
                  "%s: bf16[0] %g is not data[0] %g rounded", t->name, xv_bf16_to_f32(t->bf16[0]), t->data[0]);
    }
    CHECK(linear > 50 && xv_params_bf16_count(&m->params) == linear, "%d bf16 copies for %d Linear weights",
          xv_params_bf16_count(&m->params), linear);
    CHECK(xv_params_set_precision(&m->params, XV_PRECISION_FP32) == XV_OK && xv_params_bf16_count(&m->params) == 0,
          "fp32 left %d bf16 copies", xv_params_bf16_count(&m->params));
    xv_model_free(m);
}

int main(void) {
    const char *fx = xv_fixtures_dir();
    const char *bin = getenv("XV_BIN");
    if (!fx) return xv_test_skip("fixtures absent");
    if (!bin) return xv_test_skip("XV_BIN not set");
    char dir[1024], ref_path[1200], fp32_path[512], bf16_path[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s/tiny", fx);
    snprintf(ref_path, sizeof ref_path, "%s/outputs.safetensors", dir);

    /* Refused, with the reason, where oneDNN reports no AVX512-BF16. */
    snprintf(cmd, sizeof cmd,
             "ONEDNN_MAX_CPU_ISA=AVX512_CORE '%s' forward --model '%s' --inputs '%s/inputs.safetensors' --out /dev/null "
             "--precision bf16 2>&1 | grep -q 'bf16 precision needs'",
             bin, dir, dir);
    CHECK(xv_test_run(cmd) == 0, "bf16 on a CPU without AVX512-BF16 was not refused with its reason");
    if (xv_gemm_bf16_ready() != XV_OK) return xv_test_skip(xv_error_message());

    check_converted_params(dir);

    CHECK(golden_forward_cli("tiny", "fp32", "", fp32_path, sizeof fp32_path, ref_path, sizeof ref_path),
          "xvlm forward failed");
    CHECK(golden_forward_cli("tiny", "bf16", "--precision bf16", bf16_path, sizeof bf16_path, ref_path,
                             sizeof ref_path),
          "xvlm forward --precision bf16 failed");
    int n1 = xv_test_compare_st(ref_path, bf16_path, "image.", "grad.", BF16_TOL);
    int n2 = xv_test_compare_st(ref_path, bf16_path, "region.", "grad.", BF16_TOL);
    CHECK(n1 == 17 && n2 == 19, "bf16 outputs compared: %d image, %d region (expected 17 and 19)", n1, n2);
    /* The bf16 products ran: fp32 summation order alone moves these by < 1e-5. */
    const char *moved[] = {"image.vision_embeds", "image.itm_logits", "region.bbox_pred"};
    for (int i = 0; i < 3; i++) {
        double d = rel_diff(fp32_path, bf16_path, moved[i]);
        printf("%s: bf16 vs fp32 %.3e of max(1, max|fp32|)\n", moved[i], d);
        CHECK(d > 1e-4, "%s: bf16 differs from fp32 by only %.3e: were the bf16 products used?", moved[i], d);
    }
    unlink(fp32_path);
    unlink(bf16_path);
    return xv_test_finish("test_forward_bf16");
}
