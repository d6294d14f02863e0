/* A hand-built Grad-CAM case whose map must peak on a chosen patch: a tiny
 * random X-VLM (4 patches) whose probed cross-attention layer is rewired so
 * that every query attends (almost) only to the tokens of patch P*:
 *   query = constant c (weights 0, bias c), key = x·d with d solving
 *   d·x_t = [t == P*] over the image's 5 tokens (so scores are c'·[t == P*]);
 *   value = a constant vector v (weights 0, bias v), so G = dΛ/dA is the
 *   same for every patch (g·v per head) and the map is A·max(G, 0):
 * the map is all zero when G <= 0 in every head, else it peaks on P* with
 * nearly all its mass there. One of v and -v must give the peak. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "model/gradcam.h"
#include "model/model.h"
#include "testutil.h"

enum { TARGET = 2, T = 5 };

static xv_tensor *param(xv_model *m, const char *what) {
    char name[160];
    snprintf(name, sizeof name, "text_encoder.bert.encoder.layer.2.crossattention.self.%s", what);
    xv_tensor *t = xv_params_find(&m->params, name);
    CHECK(t != NULL, "%s", name);
    return t;
}

/* d [C] with x_t·d = [t == TARGET] for the patch tokens t = 1 .. T-1 (minimum
 * norm: d = Xᵀ (X Xᵀ)⁻¹ e). Token 0 is the mean of the patches, so x_0·d = 1/4. */
static void solve_direction(const float *tokens, int C, double *d) {
    enum { N = T - 1 };
    const float *X = tokens + C; /* the patches */
    double G[N][N + 1];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += (double)X[i * C + c] * X[j * C + c];
            G[i][j] = s;
        }
        G[i][N] = i + 1 == TARGET;
    }
    for (int k = 0; k < N; k++) /* Gauss-Jordan (X Xᵀ is positive definite: no pivoting needed) */
        for (int i = 0; i < N; i++) {
            if (i == k) continue;
            double f = G[i][k] / G[k][k];
            for (int j = k; j <= N; j++) G[i][j] -= f * G[k][j];
        }
    for (int c = 0; c < C; c++) {
        d[c] = 0;
        for (int i = 0; i < N; i++) d[c] += X[i * C + c] * G[i][N] / G[i][i];
    }
}

int main(void) {
    xv_model_config cfg;
    xv_model *m = NULL;
    const xv_model_parts parts = xv_model_parts_pretrain();
    CHECK_OK(xv_config_parse_json(xv_test_tiny_model_json, "tiny", &cfg));
    CHECK_OK(xv_model_create(&cfg, &parts, &m));
    if (!m) return xv_test_finish("test_gradcam_handbuilt");
    CHECK_OK(xv_model_init_random(m, 11));
    const int R = cfg.vision.image_res, C = cfg.vision.vision_width, H = cfg.text.hidden;
    CHECK(xv_config_num_patches(&cfg) == T - 1 && cfg.text.layers == 3, "4 patches, 3 layers");
    float *px = malloc(sizeof(float) * 3 * R * R);
    xv_test_fill_uniform(px, 3 * R * R, -1, 1, 5);
    /* the image's tokens, as Grad-CAM will compute them */
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *img = xv_tensor_wrap_f32(g, px, XV_SHAPE(1, 3, R, R));
    xv_tensor *tok = xv_model_vision(g, m, img, NULL);
    CHECK_OK(xv_graph_status(g));
    double *d = malloc(sizeof(double) * (size_t)C);
    solve_direction(tok->data, C, d);
    for (int t = 0; t < T; t++) {
        double s = 0, want = t == 0 ? 0.25 : t == TARGET;
        for (int c = 0; c < C; c++) s += d[c] * tok->data[t * C + c];
        CHECK(fabs(s - want) < 1e-3, "d·x_%d = %g (want %g)", t, s, want);
    }
    /* query = 4 everywhere, key_j = 10·d·x: score = Σ_j q_j k_j / sqrt(8) = 4·8·10/2.83 ≈ 113 on P* */
    xv_tensor *qw = param(m, "query.weight"), *qb = param(m, "query.bias"), *kw = param(m, "key.weight"),
              *kb = param(m, "key.bias"), *vw = param(m, "value.weight"), *vb = param(m, "value.bias");
    memset(qw->data, 0, sizeof(float) * (size_t)qw->numel);
    for (int j = 0; j < H; j++) qb->data[j] = 4.0f;
    for (int j = 0; j < H; j++)
        for (int c = 0; c < C; c++) kw->data[j * C + c] = (float)(10.0 * d[c]);
    memset(kb->data, 0, sizeof(float) * (size_t)kb->numel);
    memset(vw->data, 0, sizeof(float) * (size_t)vw->numel);
    float v[64];
    xv_test_fill_uniform(v, H, -1, 1, 9);
    const int32_t ids[4] = {2, 7, 9, 11}, atts[4] = {1, 1, 1, 1};
    int peaked = 0;
    for (int sign = -1; sign <= 1; sign += 2) {
        for (int j = 0; j < H; j++) vb->data[j] = (float)sign * v[j];
        xv_graph *gg = xv_graph_new(0);
        xv_gradcam_batch b = {
            .image = xv_tensor_wrap_f32(gg, px, XV_SHAPE(1, 3, R, R)),
            .text_ids = xv_tensor_wrap_i32(gg, (int32_t *)ids, XV_SHAPE(1, 4)),
            .text_atts = xv_tensor_wrap_i32(gg, (int32_t *)atts, XV_SHAPE(1, 4)),
            .block_num = 2,
        };
        xv_gradcam_out o;
        CHECK_OK(xv_gradcam(gg, m, &b, &o));
        if (xv_graph_status(gg) == XV_OK && o.map) {
            const float *mp = o.map->data;
            double total = 0, top = 0;
            int arg = 0;
            for (int p = 0; p < T - 1; p++) {
                total += mp[p];
                if (mp[p] > mp[arg]) arg = p;
            }
            top = mp[arg];
            /* the attention really sits on P* (key column TARGET) */
            const float *a = o.attn_probs->data; /* [1, heads, L, T]; CLS row of head 0 */
            CHECK(a[TARGET] > 0.999f, "sign %d: attention on the chosen patch %g", sign, a[TARGET]);
            if (total > 0) {
                CHECK(arg == TARGET - 1 && top > 0.99 * total, "sign %d: peak at patch %d (want %d), %.3g of %.3g",
                      sign, arg, TARGET - 1, top, total);
                peaked++;
            } else {
                CHECK(total == 0, "sign %d: a map without positive gradient is zero (%g)", sign, total);
            }
        }
        xv_graph_free(gg);
    }
    CHECK(peaked >= 1, "one of the two value signs makes the map peak on the chosen patch");
    free(px), free(d);
    xv_graph_free(g);
    xv_model_free(m);
    return xv_test_finish("test_gradcam_handbuilt");
}
