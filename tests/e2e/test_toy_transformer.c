/* A 2-layer transformer built only from the library's ops learns a toy
 * sequence task (reverse a sequence of tokens). This checks that forward,
 * backward and the tape compose into something that actually learns. */
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "testutil.h"

enum { VOCAB = 8, LEN = 8, DIM = 32, HEADS = 2, FFN = 64, LAYERS = 2, BATCH = 16 };

typedef struct {
    xv_tensor *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob, *ln1g, *ln1b, *f1w, *f1b, *f2w, *f2b, *ln2g, *ln2b;
} block;

typedef struct {
    xv_params p;
    xv_tensor *tok, *pos, *outw, *outb;
    block b[LAYERS];
} toy;

static xv_tensor *param(toy *m, const char *name, const int64_t *shape, int nd, float std, float fill,
                        xv_rng *r) {
    xv_tensor *t = xv_params_add(&m->p, name, shape, nd);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = std > 0 ? std * xv_rng_normal(r) : fill;
    return t;
}

static void toy_init(toy *m, uint64_t seed) {
    xv_rng r;
    xv_rng_seed(&r, seed);
    xv_params_init(&m->p);
    float s = 0.1f;
    m->tok = param(m, "tok", XV_SHAPE(VOCAB, DIM), s, 0, &r);
    m->pos = param(m, "pos", XV_SHAPE(LEN, DIM), s, 0, &r);
    for (int l = 0; l < LAYERS; l++) {
        char n[64];
        block *b = &m->b[l];
/* A parameter named l<l>.<field>; a linear layer's weight (normal, std s)
 * and zero bias; a LayerNorm's unit gain and zero bias. */
#define P(field, ...)                                                                  \
    snprintf(n, sizeof n, "l%d." #field, l);                                           \
    b->field = param(m, n, __VA_ARGS__, &r)
#define LINEAR(w, bias, out, in)                                                       \
    P(w, XV_SHAPE(out, in), s, 0);                                                     \
    P(bias, XV_SHAPE(out), 0, 0)
#define LAYERNORM(gain, bias)                                                          \
    P(gain, XV_SHAPE(DIM), 0, 1);                                                      \
    P(bias, XV_SHAPE(DIM), 0, 0)
        LINEAR(qw, qb, DIM, DIM);
        LINEAR(kw, kb, DIM, DIM);
        LINEAR(vw, vb, DIM, DIM);
        LINEAR(ow, ob, DIM, DIM);
        LAYERNORM(ln1g, ln1b);
        LINEAR(f1w, f1b, FFN, DIM);
        LINEAR(f2w, f2b, DIM, FFN);
        LAYERNORM(ln2g, ln2b);
#undef LAYERNORM
#undef LINEAR
#undef P
    }
    m->outw = param(m, "outw", XV_SHAPE(VOCAB, DIM), s, 0, &r);
    m->outb = param(m, "outb", XV_SHAPE(VOCAB), 0, 0, &r);
}

/* Post-LN block as in BERT. */
static xv_tensor *block_forward(xv_graph *g, block *b, xv_tensor *x) {
    xv_attn_args a = {.heads = HEADS, .scale = 1.0f / 4.0f /* 1/sqrt(16) */};
    xv_tensor *q = xv_linear(g, x, b->qw, b->qb), *k = xv_linear(g, x, b->kw, b->kb),
              *v = xv_linear(g, x, b->vw, b->vb);
    xv_tensor *att = xv_linear(g, xv_attention(g, q, k, v, &a), b->ow, b->ob);
    xv_tensor *h = xv_layernorm(g, xv_add(g, x, att), b->ln1g, b->ln1b, 1e-5f);
    xv_tensor *f = xv_linear(g, xv_gelu(g, xv_linear(g, h, b->f1w, b->f1b)), b->f2w, b->f2b);
    return xv_layernorm(g, xv_add(g, h, f), b->ln2g, b->ln2b, 1e-5f);
}

static xv_tensor *toy_loss(xv_graph *g, toy *m, int32_t *ids, int32_t *targets) {
    xv_tensor *idt = xv_tensor_wrap_i32(g, ids, XV_SHAPE(BATCH, LEN));
    xv_tensor *tgt = xv_tensor_wrap_i32(g, targets, XV_SHAPE(BATCH * LEN));
    xv_tensor *x = xv_add(g, xv_embedding(g, m->tok, idt, -1), m->pos); /* pos broadcast over batch */
    for (int l = 0; l < LAYERS; l++) x = block_forward(g, &m->b[l], x);
    xv_tensor *logits = xv_linear(g, x, m->outw, m->outb);
    return xv_cross_entropy(g, xv_reshape(g, logits, XV_SHAPE(BATCH * LEN, VOCAB)), tgt, -100);
}

/* Plain Adam, enough for a toy; the project's AdamW lives in src/train. */
static void adam_step(xv_params *p, float **m1, float **m2, int t, float lr) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    for (int i = 0; i < p->n; i++) {
        xv_tensor *w = p->items[i];
        if (!w->grad) continue;
        for (int64_t j = 0; j < w->numel; j++) {
            float gj = w->grad[j];
            m1[i][j] = b1 * m1[i][j] + (1 - b1) * gj;
            m2[i][j] = b2 * m2[i][j] + (1 - b2) * gj * gj;
            w->data[j] -= lr * (m1[i][j] / c1) / (sqrtf(m2[i][j] / c2) + eps);
        }
    }
}

int main(void) {
    toy m;
    toy_init(&m, 1);
    float *m1[64], *m2[64];
    for (int i = 0; i < m.p.n; i++) {
        m1[i] = calloc((size_t)m.p.items[i]->numel, sizeof(float));
        m2[i] = calloc((size_t)m.p.items[i]->numel, sizeof(float));
    }
    xv_graph *g = xv_graph_new(0);
    xv_rng data;
    xv_rng_seed(&data, 7);
    int32_t ids[BATCH * LEN], tgt[BATCH * LEN];
    float first = 0, last = 0;
    const int steps = 400;
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < BATCH; b++)
            for (int t = 0; t < LEN; t++) ids[b * LEN + t] = (int32_t)xv_rng_below(&data, VOCAB);
        for (int b = 0; b < BATCH; b++)
            for (int t = 0; t < LEN; t++) tgt[b * LEN + t] = ids[b * LEN + (LEN - 1 - t)];
        xv_graph_reset(g);
        xv_params_zero_grad(&m.p);
        xv_tensor *loss = toy_loss(g, &m, ids, tgt);
        CHECK_OK(xv_backward(g, loss));
        if (!loss) break;
        if (step == 1) first = loss->data[0];
        /* Average the last 20 steps: a single batch is noisy. */
        if (step > steps - 20) last += loss->data[0] / 20;
        adam_step(&m.p, m1, m2, step, 3e-3f);
    }
    printf("toy reversal: loss %.4f -> %.4f (chance ln 8 = 2.079)\n", first, last);
    CHECK(first > 1.8f, "initial loss near chance: %f", first);
    /* Threshold: 0.1 nats per token means >90 %% of positions right; chance is 2.08. */
    CHECK(last < 0.1f, "final loss %f should be below 0.1", last);
    xv_graph_free(g);
    for (int i = 0; i < m.p.n; i++) {
        free(m1[i]);
        free(m2[i]);
    }
    xv_params_free(&m.p);
    return xv_test_finish("test_toy_transformer");
}
