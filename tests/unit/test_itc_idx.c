/* ITC with image ids (the fine-tuning form, model_retrieval.py): captions of
 * the same image are all positives, each with weight 1/(number of them), in
 * both directions. Checked against the loss written out by hand in double. */
#include <math.h>
#include <string.h>

#include "model/losses.h"
#include "testutil.h"

int main(void) {
    xv_model_config c;
    xv_model *m = NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    CHECK_OK(xv_config_parse_json(xv_test_tiny_model_json, "tiny", &c));
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return xv_test_finish("test_itc_idx");
    m->temp->data[0] = 0.5f;
    enum { B = 4, E = 3 };
    /* texts 0 and 1 describe image 0 (idx 5) and image 1 (idx 5 too: the same
     * picture twice in the batch); texts 2, 3 their own images */
    float img[B * E] = {1, 0, 0, 0.8f, 0.6f, 0, 0, 1, 0, 0, 0, 1};
    float txt[B * E] = {0.6f, 0.8f, 0, 1, 0, 0, 0, 0.6f, 0.8f, 0, 0, 1};
    int32_t idx[B] = {5, 5, 9, 11};
    xv_graph *g = xv_graph_new(0);
    xv_tensor *ti = xv_tensor_wrap_f32(g, img, XV_SHAPE(B, E));
    xv_tensor *tt = xv_tensor_wrap_f32(g, txt, XV_SHAPE(B, E));
    xv_tensor *tx = xv_tensor_wrap_i32(g, idx, XV_SHAPE(B));
    xv_tensor *loss = xv_itc_loss(g, m, ti, tt, tx, NULL);
    CHECK_OK(xv_graph_status(g));
    double ref = 0;
    for (int dir = 0; dir < 2; dir++)
        for (int i = 0; i < B; i++) {
            double s[B], mx = -1e30, z = 0;
            int npos = 0;
            for (int j = 0; j < B; j++) {
                const float *a = dir == 0 ? img + i * E : txt + i * E, *b = dir == 0 ? txt + j * E : img + j * E;
                s[j] = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / 0.5;
                mx = fmax(mx, s[j]);
                npos += idx[i] == idx[j];
            }
            for (int j = 0; j < B; j++) z += exp(s[j] - mx);
            for (int j = 0; j < B; j++)
                if (idx[i] == idx[j]) ref -= (s[j] - mx - log(z)) / npos / B / 2;
        }
    /* fp32 logits of magnitude <= 2 and a 4-way log-softmax: |error| ~ 1e-6 */
    CHECK(loss && fabs(loss->data[0] - ref) < 1e-5, "itc with idx %.7f vs %.7f", loss ? loss->data[0] : NAN, ref);
    /* without idx the diagonal alone is the target: a different value here,
     * since text 1 is image 0's best match */
    xv_tensor *plain = xv_itc_loss(g, m, ti, tt, NULL, NULL);
    CHECK(plain && fabs(plain->data[0] - ref) > 1e-3, "idx changes the targets (%.6f vs %.6f)",
          plain ? plain->data[0] : NAN, ref);
    xv_graph_free(g);
    xv_model_free(m);
    return xv_test_finish("test_itc_idx");
}
