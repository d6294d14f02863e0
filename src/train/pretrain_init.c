#include "train/pretrain_init.h"

#include <math.h>
#include <string.h>

/* U(-bound, bound) over a tensor from its own reserved counters. */
static void uniform_fill(xv_rng *r, xv_tensor *t, double bound) {
    if (!t) return;
    const uint64_t base = xv_rng_reserve(r, (uint64_t)t->numel);
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = (float)((2.0 * xv_rng_uniform_at(r->key, base + (uint64_t)i) - 1.0) * bound);
}

/* nn.Linear / nn.Conv2d defaults: weight and bias ~ U(±1/sqrt(fan_in)). */
static void torch_default(xv_rng *r, xv_tensor *w, xv_tensor *b) {
    const int64_t fan_in = w->numel / w->shape[0];
    const double bound = 1.0 / sqrt((double)fan_in);
    uniform_fill(r, w, bound);
    uniform_fill(r, b, bound);
}

/* MAE's fixed 2-D sine-cosine table over the side x side patch grid: the
 * first half of the channels encodes the row, the second the column, each as
 * sin then cos of the position at C/4 frequencies 1/10000^(k/(C/4)). */
static void sincos_fill(xv_tensor *ape, int side) {
    const int64_t C = ape->shape[2];
    const int64_t quarter = C / 4;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            float *row = ape->data + ((int64_t)y * side + x) * C;
            memset(row, 0, sizeof(float) * (size_t)C); /* C not a multiple of 4: the rest stays 0 */
            for (int half = 0; half < 2; half++) {
                const double pos = half == 0 ? y : x;
                for (int64_t k = 0; k < quarter; k++) {
                    const double w = pow(10000.0, -(double)k / (double)quarter);
                    row[half * 2 * quarter + k] = (float)sin(pos * w);
                    row[half * 2 * quarter + quarter + k] = (float)cos(pos * w);
                }
            }
        }
}

xv_status xv_pretrain_init_weights(xv_model *m, uint64_t seed) {
    XV_TRY(xv_model_init_random(m, seed)); /* every matrix N(0, 0.02) */
    /* BERT's std is its config's initializer_range: rescale the text matrices
     * (the same draws, so the fill stays thread-count independent). */
    const float scale = m->cfg.text.init_range / 0.02f;
    for (int i = 0; i < m->params.n && scale != 1.0f; i++) {
        xv_tensor *t = m->params.items[i];
        if (t->ndim >= 2 && !strncmp(t->name, "text_encoder.", 13))
            for (int64_t k = 0; k < t->numel; k++) t->data[k] *= scale;
    }
    xv_rng root, r;
    xv_rng_seed(&root, seed);
    r = xv_rng_split(&root, 0x746f726368); /* "torch": a stream apart from init_random's */
    torch_default(&r, m->vision.patch_w, m->vision.patch_b);
    if (m->vision.ape && m->cfg.vision.ape_sincos)
        sincos_fill(m->vision.ape, m->cfg.vision.image_res / m->cfg.vision.patch);
    if (m->parts.itc) {
        torch_default(&r, m->vision_proj.w, m->vision_proj.b);
        torch_default(&r, m->text_proj.w, m->text_proj.b);
    }
    const xv_mlp_head *heads[2] = {m->parts.itm ? &m->itm_head : NULL, m->parts.bbox ? &m->bbox_head : NULL};
    for (int h = 0; h < 2; h++)
        if (heads[h]) {
            torch_default(&r, heads[h]->fc0.w, heads[h]->fc0.b);
            torch_default(&r, heads[h]->fc3.w, heads[h]->fc3.b);
        }
    return XV_OK;
}
