/* X-VLM base (Swin-B 224, BERT-base split 6/6) from configs/xvlm_base_224.json:
 * the parameter count of the fact sheet (215,637,241 unique values, tied MLM
 * decoder counted once), then one pretraining forward of 8 images and 8 texts
 * (max_tokens 40, 8 masks) with random weights: finite losses; time and peak
 * memory are printed. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/fs.h"
#include "core/threads.h"
#include "model/pretrain.h"
#include "testutil.h"

static double peak_rss_mib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

int main(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    if (!src) return xv_test_skip("XV_SOURCE_DIR not set");
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/xvlm_base_224.json", src);
    xv_model_config c;
    CHECK_OK(xv_config_load(path, &c));
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    double t0 = xv_monotonic_seconds();
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (!m) return xv_test_finish("test_xvlm_base");
    int64_t n = xv_params_count(&m->params);
    CHECK(n == 215637241, "parameter count %lld, fact sheet 215,637,241", (long long)n);
    int64_t swin = 0;
    for (int i = 0; i < m->params.n; i++)
        if (!strncmp(m->params.items[i]->name, "vision_encoder.", 15)) swin += m->params.items[i]->numel;
    CHECK(swin == 86743224, "Swin-B parameters %lld, fact sheet 86,743,224", (long long)swin);
    CHECK_OK(xv_model_init_random(m, 1));
    double t1 = xv_monotonic_seconds();

    enum { B = 8, L = 40, M = 8 };
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_pretrain_batch b = {.n_images = B, .res = 224, .n_texts = B, .text_len = L, .max_masks = M};
    b.image = xv_tensor_new(g, XV_F32, XV_SHAPE(B, 3, 224, 224))->data; /* arrays in the graph's arena */
    b.text_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b.text_atts = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b.text_ids_masked = xv_tensor_new(g, XV_I32, XV_SHAPE(B, L))->idata;
    b.masked_pos = xv_tensor_new(g, XV_I32, XV_SHAPE(B, M))->idata;
    b.masked_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(B, M))->idata;
    xv_test_fill_uniform(b.image, (int64_t)B * 3 * 224 * 224, -1.8f, 2.1f, 3);
    xv_rng r;
    xv_rng_seed(&r, 4);
    for (int i = 0; i < B; i++) {
        int len = 12 + 3 * i;
        for (int t = 0; t < L; t++) {
            int id = t == 0 ? 101 : t < len ? 1000 + (int)xv_rng_below(&r, 29000) : 0;
            b.text_ids[i * L + t] = id;
            b.text_atts[i * L + t] = t < len;
            b.text_ids_masked[i * L + t] = id;
        }
        for (int k = 0; k < M; k++) {
            int p = 1 + k;
            bool real = k < 3 + i % 4;
            b.masked_pos[i * M + k] = real ? p : 0;
            b.masked_ids[i * M + k] = real ? b.text_ids[i * L + p] : -100;
            if (real) b.text_ids_masked[i * L + p] = 103;
        }
    }
    const xv_itm_negatives neg = {.rng = &r}; /* drawn from the ITC similarities */
    xv_pretrain_out o;
    double t2 = xv_monotonic_seconds();
    CHECK_OK(xv_pretrain_forward(g, m, &b, &neg, &o));
    double t3 = xv_monotonic_seconds();
    if (o.loss_total) {
        CHECK(isfinite(o.loss_itc->data[0]) && isfinite(o.loss_itm->data[0]) && isfinite(o.loss_mlm->data[0]),
              "finite losses");
        /* Random init: MLM over 30522 classes starts near log(30522) = 10.3. */
        CHECK(fabs(o.loss_mlm->data[0] - log(30522.0)) < 2.0, "MLM loss %g near log V", o.loss_mlm->data[0]);
        printf("base: loss_itc %.4f loss_itm %.4f loss_mlm %.4f\n", o.loss_itc->data[0], o.loss_itm->data[0],
               o.loss_mlm->data[0]);
    }
    printf("base: %lld parameters; create+init %.1f s; forward of %d images + %d texts (ITC, ITM, MLM) %.1f s "
           "with %d threads; main-graph arena %.0f MiB; peak RSS %.0f MiB\n",
           (long long)n, t1 - t0, B, B, t3 - t2, xv_get_threads(),
           xv_graph_arena(g)->peak / 1048576.0, peak_rss_mib());
    xv_graph_free(g);
    xv_model_free(m);
    return xv_test_finish("test_xvlm_base");
}
