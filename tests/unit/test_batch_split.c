/* The inference batch split (nn/batch_split.h): shares in batch order, one
 * call per worker with a single thread inside, inputs cut without copies
 * (F32 and I32, NULL kept), the whole batch in one call wherever the split
 * does not apply, a worker's error moved to the main graph; and on a small
 * X-VLM, the vision, text and fusion encoders give the same results split
 * over two threads as in one stream. */
#include <omp.h>
#include <string.h>

#include "model/losses.h"
#include "model/model.h"
#include "nn/batch_split.h"
#include "testutil.h"
#include "xvlm.h"

typedef struct {
    int calls;
    int max_threads_inside; /* largest omp_get_max_threads() seen in a call */
} probe;

/* y[b, j] = x[b, j] · ids[b] (+ 1 when in[2] is non-NULL); fails on a negative id. */
static xv_tensor *toy(xv_graph *g, void *ctx, xv_tensor *const *in) {
    probe *p = ctx;
    int mt = omp_get_max_threads();
#pragma omp critical
    {
        p->calls++;
        if (mt > p->max_threads_inside) p->max_threads_inside = mt;
    }
    xv_tensor *x = in[0], *ids = in[1];
    xv_tensor *y = xv_tensor_new(g, XV_F32, x->shape, x->ndim);
    if (!y) return NULL;
    int64_t row = x->numel / x->shape[0];
    for (int64_t b = 0; b < x->shape[0]; b++) {
        if (ids->idata[b] < 0) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "toy: id %d is negative", ids->idata[b]);
        for (int64_t j = 0; j < row; j++)
            y->data[b * row + j] = x->data[b * row + j] * (float)ids->idata[b] + (in[2] ? 1.0f : 0.0f);
    }
    return y;
}

static void check_toy(void) {
    enum { B = 5, R = 3 };
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *x = xv_tensor_new(g, XV_F32, XV_SHAPE(B, R));
    xv_tensor *ids = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
    for (int i = 0; i < B * R; i++) x->data[i] = (float)i;
    for (int b = 0; b < B; b++) ids->idata[b] = b + 1;

    xvlm_set_threads(2);
    probe p = {0};
    xv_tensor *y = xv_batch_split(g, toy, &p, (xv_tensor *[]){x, ids, NULL}, 3);
    CHECK(y && y->shape[0] == B && y->shape[1] == R, "split result shape");
    bool exact = y != NULL;
    for (int i = 0; y && i < B * R; i++) exact &= y->data[i] == (float)i * (float)(i / R + 1);
    CHECK(exact, "shares come back in batch order");
    CHECK(p.calls == 2, "two threads, batch 5: %d calls (want one per worker)", p.calls);
    CHECK(p.max_threads_inside == 1, "ops inside a worker see %d threads (want 1)", p.max_threads_inside);

    /* Where the split does not apply, one call on the whole batch. */
    p = (probe){0};
    xv_graph_set_grad(g, true);
    y = xv_batch_split(g, toy, &p, (xv_tensor *[]){x, ids, x}, 3);
    CHECK(y && p.calls == 1 && y->data[R] == (float)R * 2 + 1, "recording: %d calls", p.calls);
    xv_graph_set_grad(g, false);
    p = (probe){0};
    xvlm_set_threads(1);
    y = xv_batch_split(g, toy, &p, (xv_tensor *[]){x, ids, NULL}, 3);
    CHECK(y && p.calls == 1, "one thread: %d calls", p.calls);
    xvlm_set_threads(2);
    p = (probe){0};
    xv_tensor *x1 = xv_tensor_new(g, XV_F32, XV_SHAPE(1, R));
    for (int j = 0; j < R; j++) x1->data[j] = 1;
    y = xv_batch_split(g, toy, &p, (xv_tensor *[]){x1, ids, NULL}, 1);
    CHECK(y && p.calls == 1, "batch 1 on two threads: %d calls", p.calls);

    /* A batch mismatch is refused before any call. */
    p = (probe){0};
    CHECK(!xv_batch_split(g, toy, &p, (xv_tensor *[]){x, x1, NULL}, 3) && p.calls == 0 &&
              xv_graph_status(g) == XV_ERR_SHAPE,
          "inputs with different batches refused");
    xv_graph_reset(g);

    /* An error in the second worker's share reaches the main graph with its message. */
    ids->idata[4] = -7;
    p = (probe){0};
    y = xv_batch_split(g, toy, &p, (xv_tensor *[]){x, ids, NULL}, 3);
    CHECK(!y && xv_graph_status(g) == XV_ERR_INVALID_ARG && strstr(xvlm_last_error(), "id -7 is negative"),
          "worker error moved to the main graph: %s", xvlm_last_error());
    xv_graph_free(g);
}

/* ---------------------------------------------------------------- a small model */

static double max_rel_diff(const xv_tensor *a, const xv_tensor *b) {
    if (!a || !b || a->numel != b->numel) return INFINITY;
    double d = 0, m = 1;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs((double)a->data[i] - b->data[i]);
        if (!(e <= d)) d = e;
        if (fabs(a->data[i]) > m) m = fabs(a->data[i]);
    }
    return d / m;
}

typedef struct {
    xv_tensor *vision, *text, *fusion, *box;
} encoders;

static encoders run_encoders(xv_graph *g, const xv_model *m, xv_tensor *img, xv_tensor *ids, xv_tensor *atts,
                             xv_tensor *iatts) {
    encoders e;
    e.vision = xv_model_vision(g, m, img, NULL);
    e.text = xv_model_text(g, m, ids, atts, NULL);
    e.fusion = xv_model_fusion(g, m, e.text, atts, e.vision, iatts);
    e.box = xv_bbox_predict(g, m, e.vision, e.text, atts, NULL);
    CHECK(xv_graph_status(g) == XV_OK, "encoders: %s", xvlm_last_error());
    return e;
}

static void check_model(void) {
    const char *cfg =
        "{\"vision\": {\"image_res\": 64, \"window_size\": 4, \"embed_dim\": 16, \"depths\": [2, 2, 2],"
        " \"num_heads\": [2, 2, 4], \"vision_width\": 64, \"patch_size\": 16},"
        " \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 4, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 48, \"vocab_size\": 90, \"max_position_embeddings\": 16,"
        " \"fusion_layer\": 2}, \"embed_dim\": 8}";
    xv_model_config c;
    xv_model *m = xv_test_random_model(cfg, 5, &c);
    if (!m) return;
    enum { B = 3, L = 7 };
    const int T = 1 + xv_config_num_patches(&c);
    xv_graph *in = xv_graph_new(0);
    xv_tensor *img = xv_tensor_new(in, XV_F32, XV_SHAPE(B, 3, 64, 64));
    xv_tensor *ids = xv_tensor_new(in, XV_I32, XV_SHAPE(B, L));
    xv_tensor *atts = xv_tensor_new(in, XV_I32, XV_SHAPE(B, L));
    xv_tensor *iatts = xv_tensor_new(in, XV_I32, XV_SHAPE(B, T));
    xv_test_fill_uniform(img->data, img->numel, -2, 2, 3);
    for (int i = 0; i < B * L; i++) {
        ids->idata[i] = i % L == 0 ? 1 : 2 + (i * 37) % 80;
        atts->idata[i] = i % L < L - i / L; /* padded rows */
    }
    for (int i = 0; i < B * T; i++) iatts->idata[i] = i % T == 0 || i % 3 != 0;

    /* One stream (the ops thread themselves) against two split streams. */
    xvlm_set_threads(1);
    xv_graph *g1 = xv_graph_new(0);
    xv_graph_set_grad(g1, false);
    encoders a = run_encoders(g1, m, img, ids, atts, iatts);
    xvlm_set_threads(2);
    xv_graph *g2 = xv_graph_new(0);
    xv_graph_set_grad(g2, false);
    encoders b = run_encoders(g2, m, img, ids, atts, iatts);
    /* Every op computes each row / window the same way in both; only BLAS
     * may take another kernel for the smaller row count of a share (OpenBLAS
     * has small-matrix kernels), which changes the order of a dot product:
     * a few fp32 roundings on O(1) LayerNorm outputs, far below 1e-6. */
    double dv = max_rel_diff(a.vision, b.vision), dt = max_rel_diff(a.text, b.text);
    double df = max_rel_diff(a.fusion, b.fusion), db = max_rel_diff(a.box, b.box);
    printf("split vs one stream: vision %.2e, text %.2e, fusion %.2e, box %.2e\n", dv, dt, df, db);
    CHECK(dv <= 1e-6 && dt <= 1e-6 && df <= 1e-6 && db <= 1e-6, "split results differ");
    /* A second forward on a reset graph reuses the workers and gives the same bits. */
    xv_graph_reset(g1);
    xv_tensor *keep_v = xv_tensor_new(g1, XV_F32, b.vision->shape, b.vision->ndim);
    xv_tensor *keep_f = xv_tensor_new(g1, XV_F32, b.fusion->shape, b.fusion->ndim);
    memcpy(keep_v->data, b.vision->data, sizeof(float) * (size_t)b.vision->numel);
    memcpy(keep_f->data, b.fusion->data, sizeof(float) * (size_t)b.fusion->numel);
    xv_graph_reset(g2);
    encoders b2 = run_encoders(g2, m, img, ids, atts, iatts);
    CHECK(max_rel_diff(keep_v, b2.vision) == 0 && max_rel_diff(keep_f, b2.fusion) == 0,
          "repeated split forward is bitwise equal");
    xv_graph_free(g1);
    xv_graph_free(g2);
    xv_graph_free(in);
    xv_model_free(m);
}

int main(void) {
    check_toy();
    check_model();
    return xv_test_finish("test_batch_split");
}
