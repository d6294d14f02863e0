/* AdamW (transformers 4.12.5 formula) and the official parameter groups. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "testutil.h"
#include "train/adamw.h"
#include "train/clip.h"
#include "train/param_groups.h"

static xv_tensor *add_param(xv_params *ps, const char *name, int64_t n) {
    xv_tensor *t = xv_params_add(ps, name, (const int64_t[]){n}, 1);
    if (t) t->grad = calloc((size_t)n, sizeof(float));
    return t;
}

static void test_no_decay_names(void) {
    static const struct { const char *name; bool no_decay; } cases[] = {
        {"vision_encoder.layers.0.blocks.0.attn.relative_position_bias_table", true}, /* contains "bias" */
        {"vision_encoder.layers.0.blocks.0.attn.qkv.weight", false},
        {"vision_encoder.layers.0.blocks.0.attn.qkv.bias", true},
        {"vision_encoder.layers.0.blocks.1.norm1.weight", true},
        {"vision_encoder.layers.2.blocks.5.norm2.bias", true},
        {"vision_encoder.layers.1.downsample.norm.weight", true},
        {"vision_encoder.layers.1.downsample.reduction.weight", false},
        {"vision_encoder.patch_embed.norm.weight", true},
        {"vision_encoder.patch_embed.proj.weight", false},
        {"vision_encoder.norm.weight", true},
        {"temp", false},
        {"text_encoder.bert.embeddings.LayerNorm.weight", true},
        {"text_encoder.bert.embeddings.word_embeddings.weight", false},
        {"text_encoder.bert.embeddings.position_embeddings.weight", false},
        {"text_encoder.bert.encoder.layer.7.crossattention.output.LayerNorm.bias", true},
        {"text_encoder.bert.encoder.layer.7.intermediate.dense.weight", false},
        {"text_encoder.cls.predictions.bias", true},
        {"text_encoder.cls.predictions.transform.LayerNorm.weight", true},
        {"text_encoder.cls.predictions.transform.dense.weight", false},
        {"itm_head.0.weight", false},
        {"itm_head.1.weight", false}, /* build_mlp's LayerNorm is "1", not "LayerNorm": decayed */
        {"itm_head.1.bias", true},
        {"bbox_head.3.weight", false},
        {"vision_proj.weight", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(xv_param_no_decay(cases[i].name) == cases[i].no_decay, "%s: no_decay expected %d", cases[i].name,
              (int)cases[i].no_decay);
}

static void test_init_params(void) {
    xv_init_params_spec spec = xv_init_params_pretrain_default();
    xv_init_params ip;
    CHECK_OK(xv_init_params_build(&spec, &ip));
    /* 6 fusion layers x 10 cross-attention tensors + vision_proj(2) + text_proj(2) + temp + 2 heads x 6. */
    CHECK(ip.n == 60 + 5 + 12, "pretraining init_params: %d names", ip.n);
    static const char *const in[] = {
        "text_encoder.bert.encoder.layer.6.crossattention.self.query.weight",
        "text_encoder.bert.encoder.layer.11.crossattention.output.LayerNorm.bias",
        "text_encoder.bert.encoder.layer.9.crossattention.self.value.bias",
        "vision_proj.weight", "text_proj.bias", "temp", "itm_head.1.weight", "bbox_head.3.bias",
    };
    static const char *const out[] = {
        "text_encoder.bert.encoder.layer.6.attention.self.query.weight",
        "text_encoder.bert.encoder.layer.5.crossattention.self.query.weight",
        "text_encoder.bert.encoder.layer.12.crossattention.self.query.weight",
        "text_encoder.encoder.layer.6.crossattention.self.query.weight", /* fine-tuning layout */
        "text_encoder.cls.predictions.bias", "vision_encoder.norm.weight", "temp2", "itm_head.1",
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) CHECK(xv_init_params_contains(&ip, in[i]), "%s in", in[i]);
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        CHECK(!xv_init_params_contains(&ip, out[i]), "%s not in", out[i]);
    xv_init_params_free(&ip);

    /* The rule follows the config: fusion from layer 8, no ITM head. */
    spec.fusion_layer = 8;
    spec.matching = false;
    CHECK_OK(xv_init_params_build(&spec, &ip));
    CHECK(ip.n == 40 + 5 + 6, "fusion 8, no itm: %d names", ip.n);
    CHECK(!xv_init_params_contains(&ip, "text_encoder.bert.encoder.layer.7.crossattention.self.key.weight"), "layer 7");
    CHECK(!xv_init_params_contains(&ip, "itm_head.0.weight"), "no itm_head");
    xv_init_params_free(&ip);
    spec.fusion_layer = 13;
    CHECK(xv_init_params_build(&spec, &ip) == XV_ERR_INVALID_ARG, "fusion_layer beyond the layers refused");

    xv_init_params_spec nlvr = {.kind = XV_INIT_PARAMS_NLVR};
    CHECK_OK(xv_init_params_build(&nlvr, &ip));
    CHECK(ip.n == 6 && xv_init_params_contains(&ip, "cls_head.3.weight") && !xv_init_params_contains(&ip, "temp"),
          "NLVR: cls_head only");
    xv_init_params_free(&ip);
    xv_init_params_spec vqa = {.kind = XV_INIT_PARAMS_VQA, .vqa_widths_differ = true};
    CHECK_OK(xv_init_params_build(&vqa, &ip));
    CHECK(xv_init_params_contains(&ip, "text_decoder.bert.encoder.layer.2.crossattention.self.key.weight") &&
              xv_init_params_contains(&ip, "text_decoder.bert.encoder.layer.0.crossattention.self.value.bias") &&
              !xv_init_params_contains(&ip, "text_decoder.bert.encoder.layer.0.crossattention.self.query.weight") &&
              !xv_init_params_contains(&ip, "text_encoder.encoder.layer.6.crossattention.self.key.weight"),
          "VQA: decoder cross-attention key/value");
    xv_init_params_free(&ip);
    vqa.vqa_widths_differ = false;
    CHECK_OK(xv_init_params_build(&vqa, &ip));
    CHECK(!xv_init_params_contains(&ip, "text_decoder.bert.encoder.layer.2.crossattention.self.key.weight"),
          "VQA with equal widths: empty");
    xv_init_params_free(&ip);
}

static void test_groups(void) {
    xv_params ps;
    xv_params_init(&ps);
    const char *names[] = {
        "text_encoder.bert.encoder.layer.0.attention.self.query.weight", /* 0 decay, lr */
        "text_encoder.bert.embeddings.LayerNorm.weight",                  /* 1 no decay, lr */
        "text_encoder.bert.encoder.layer.6.crossattention.self.key.weight", /* 2 decay, large */
        "text_encoder.bert.encoder.layer.6.crossattention.output.LayerNorm.weight", /* 3 */
        "temp",                                                           /* 2 */
        "itm_head.1.weight",                                              /* 2: decayed LN weight */
        "vision_encoder.layers.0.blocks.0.attn.relative_position_bias_table", /* 1 */
        "vision_encoder.patch_embed.proj.weight",                         /* frozen below */
    };
    const int expect[] = {0, 1, 2, 3, 2, 2, 1};
    for (int i = 0; i < 8; i++) add_param(&ps, names[i], 2);
    ps.items[7]->requires_grad = false;
    xv_init_params_spec spec = xv_init_params_pretrain_default();
    xv_init_params ip;
    CHECK_OK(xv_init_params_build(&spec, &ip));
    xv_adamw_config cfg = xv_adamw_default();
    xv_adamw opt;
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, &ip));
    CHECK(opt.n == 7, "frozen parameter left out: %d slots", opt.n);
    for (int i = 0; i < 7; i++) {
        xv_adamw_slot *s = xv_adamw_find(&opt, names[i]);
        CHECK(s && s->group == expect[i], "%s: group %d, expected %d", names[i], s ? s->group : -1, expect[i]);
    }
    CHECK(xv_adamw_find(&opt, names[7]) == NULL, "frozen not found");
    CHECK(xv_adamw_group_lr(&opt, 0, 0.5) == 1e-4 * 0.5 && xv_adamw_group_lr(&opt, 2, 0.5) == (1e-4 * 2.0) * 0.5,
          "group lr = base * lr_mult * factor");
    CHECK(opt.group_wd[0] == 0.01 && opt.group_wd[1] == 0.0 && opt.group_wd[2] == 0.01 && opt.group_wd[3] == 0.0,
          "group weight decay");
    xv_adamw_free(&opt);
    /* Without init_params (fine-tuning models): two groups used. */
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
    CHECK(xv_adamw_find(&opt, "temp")->group == 0, "temp: decay, base lr without init_params");
    xv_adamw_free(&opt);
    xv_init_params_free(&ip);
    cfg.beta2 = 1.0;
    CHECK(xv_adamw_init(&opt, &ps, &cfg, NULL) == XV_ERR_INVALID_ARG, "beta2 1 refused");
    xv_params_free(&ps);
}

/* Three updates of one decayed parameter, expected values from the formulas in double. */
static void test_hand_three_steps(void) {
    enum { N = 5 };
    const float p0[N] = {0.5f, -1.25f, 2.0f, 0.0f, 0.75f};
    const float g[3][N] = {
        {0.1f, -0.2f, 0.0f, 0.3f, 1e-3f},
        {-0.4f, 0.05f, 0.0f, 0.3f, 2e-3f},
        {0.25f, 0.5f, 0.0f, -0.1f, -1e-3f},
    };
    const double lr = 1e-2, wd = 0.05, b1 = 0.9, b2 = 0.98, eps = 1e-8;
    const double factor[3] = {1.0, 0.5, 0.25};
    xv_params ps;
    xv_params_init(&ps);
    xv_tensor *t = add_param(&ps, "encoder.dense.weight", N);
    memcpy(t->data, p0, sizeof p0);
    xv_adamw_config cfg = {.lr = lr, .weight_decay = wd, .lr_mult = 1, .beta1 = b1, .beta2 = b2, .eps = eps,
                           .correct_bias = true};
    xv_adamw opt;
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
    double p[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) p[i] = p0[i];
    for (int s = 0; s < 3; s++) {
        memcpy(t->grad, g[s], sizeof g[s]);
        CHECK_OK(xv_adamw_step(&opt, factor[s]));
        int step = s + 1;
        double lr_t = lr * factor[s];
        double step_size = lr_t * sqrt(1 - pow(b2, step)) / (1 - pow(b1, step));
        for (int i = 0; i < N; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[s][i];
            v[i] = b2 * v[i] + (1 - b2) * (double)g[s][i] * g[s][i];
            p[i] -= step_size * m[i] / (sqrt(v[i]) + eps);
            p[i] -= lr_t * wd * p[i];
        }
    }
    xv_adamw_slot *sl = &opt.slots[0];
    CHECK(sl->step == 3, "step count %lld", (long long)sl->step);
    /* fp32 element arithmetic: ~6 roundings of <= 0.5 ulp per update, 3 updates,
     * on values of magnitude <= 2 (p), 0.5 (m), 0.25 (v): 20 ulp of the scale covers it. */
    for (int i = 0; i < N; i++) {
        CHECK(fabs(t->data[i] - p[i]) <= 20 * 1.2e-7 * fmax(fabs(p[i]), 1e-3), "p[%d] %.9g vs %.9g", i,
              t->data[i], p[i]);
        CHECK(fabs(sl->m[i] - m[i]) <= 20 * 6e-8 * 0.5, "m[%d] %.9g vs %.9g", i, sl->m[i], m[i]);
        CHECK(fabs(sl->v[i] - v[i]) <= 20 * 6e-8 * fmax(v[i], 1e-6), "v[%d] %.9g vs %.9g", i, sl->v[i], v[i]);
    }
    /* Element 2 has a zero gradient: only the decay moves it, p·Π(1 − lr_t·wd). */
    double decayed = 2.0 * (1 - lr * wd) * (1 - lr * 0.5 * wd) * (1 - lr * 0.25 * wd);
    CHECK(fabs(t->data[2] - decayed) <= 4 * 2.4e-7, "zero-grad element decays only: %.9g vs %.9g", t->data[2],
          decayed);
    xv_adamw_free(&opt);
    xv_params_free(&ps);
}

/* Numbers from tools/adamw_reference.py (torch 1.13 fp32 tensor ops, HF formula). */
static const float k_torch_ref[5][3][6] = {
    /* text_encoder.bert.encoder.layer.0.attention.self.query.weight */
    {{-0.488215417f, -0.220695838f, -0.244777963f, -0.194160327f, 0.025474254f, 0.196825117f}, /* p */
     {0.0f, -0.0412874967f, -0.0152687505f, 0.0231937487f, -0.000906248111f, -0.036762502f}, /* m */
     {0.0f, 0.00316558382f, 0.00289330678f, 0.00228340575f, 0.00383045292f, 0.00352430996f}}, /* v */
    /* text_encoder.bert.encoder.layer.0.attention.self.query.bias */
    {{0.125f, 0.176730528f, 0.40111652f}, /* p */
     {0.0f, 0.0231937487f, -0.000906248111f}, /* m */
     {0.0f, 0.00228340575f, 0.00383045292f}}, /* v */
    /* itm_head.0.weight */
    {{-0.357458055f, -0.0908844545f, -0.0977884009f, -0.250739306f}, /* p */
     {0.0f, -0.036762502f, 0.00170000084f, 0.0277187526f}, /* m */
     {0.0f, 0.00352430996f, 0.00197096635f, 0.00345079694f}}, /* v */
    /* itm_head.1.bias */
    {{0.25f, 0.115438372f}, /* p */
     {0.0f, 0.0277187526f}, /* m */
     {0.0f, 0.00345079694f}}, /* v */
    /* temp */
    {{-0.115812317f}, /* p */
     {0.0104937498f}, /* m */
     {0.0039024367f}}, /* v */
};

static void test_torch_reference(void) {
    /* Same inputs as the script: exact binary fractions. */
    static const struct { const char *name; int n; } defs[5] = {
        {"text_encoder.bert.encoder.layer.0.attention.self.query.weight", 6},
        {"text_encoder.bert.encoder.layer.0.attention.self.query.bias", 3},
        {"itm_head.0.weight", 4},
        {"itm_head.1.bias", 2},
        {"temp", 1},
    };
    const double factors[4] = {0.0, 0.5, 1.0, 0.875};
    xv_params ps;
    xv_params_init(&ps);
    for (int p = 0; p < 5; p++) {
        xv_tensor *t = add_param(&ps, defs[p].name, defs[p].n);
        for (int k = 0; k < defs[p].n; k++) t->data[k] = (float)(((p * 5 + k) % 9 - 4) * 0.125);
    }
    xv_init_params ip = {0};
    char *large[] = {"itm_head.0.weight", "itm_head.1.bias", "temp"};
    ip.names = large;
    ip.n = 3;
    xv_adamw_config cfg = {.lr = 0.1, .weight_decay = 0.1, .lr_mult = 2.0, .beta1 = 0.9, .beta2 = 0.98,
                           .eps = 1e-8, .correct_bias = true};
    xv_adamw opt;
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, &ip));
    for (int step = 1; step <= 4; step++) {
        for (int p = 0; p < 5; p++)
            for (int k = 0; k < defs[p].n; k++)
                ps.items[p]->grad[k] =
                    (k == 0 && p != 4) ? 0.0f : (float)(((p * 3 + k * 7 + step * 5) % 11 - 5) * 0.0625);
        CHECK_OK(xv_adamw_step(&opt, factors[step - 1]));
    }
    /* Both sides are fp32 with the same op order; they may differ by FMA
     * contraction and sqrt/div rounding: a few ulp per op over 4 updates.
     * |p| <= 0.5, |m| <= 0.04, v <= 0.004: 16 ulp of each scale. */
    const double tol[3] = {16 * 6e-8, 16 * 3.7e-9, 16 * 4.7e-10};
    double worst[3] = {0};
    for (int p = 0; p < 5; p++) {
        xv_adamw_slot *s = xv_adamw_find(&opt, defs[p].name);
        const float *got[3] = {s->param->data, s->m, s->v};
        for (int q = 0; q < 3; q++)
            for (int k = 0; k < defs[p].n; k++) {
                double d = fabs((double)got[q][k] - k_torch_ref[p][q][k]);
                if (d > worst[q]) worst[q] = d;
                CHECK(d <= tol[q], "%s %c[%d]: %.9g vs torch %.9g", defs[p].name, "pmv"[q], k, got[q][k],
                      k_torch_ref[p][q][k]);
            }
    }
    printf("adamw vs torch: max |diff| p %.3g m %.3g v %.3g\n", worst[0], worst[1], worst[2]);
    xv_adamw_free(&opt);
    xv_params_free(&ps);
}

/* A parameter without a grad buffer is skipped (PyTorch: p.grad is None). */
static void test_skip_without_grad(void) {
    xv_params ps;
    xv_params_init(&ps);
    xv_tensor *a = add_param(&ps, "a.weight", 3);
    xv_tensor *b = xv_params_add(&ps, "b.weight", (const int64_t[]){3}, 1);
    for (int i = 0; i < 3; i++) a->data[i] = b->data[i] = 1.0f, a->grad[i] = 0.5f;
    xv_adamw_config cfg = xv_adamw_default();
    xv_adamw opt;
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
    CHECK_OK(xv_adamw_step(&opt, 1.0));
    CHECK(xv_adamw_find(&opt, "b.weight")->step == 0 && b->data[0] == 1.0f, "no grad: untouched");
    CHECK(xv_adamw_find(&opt, "a.weight")->step == 1 && a->data[0] < 1.0f, "grad: updated");
    CHECK(xv_adamw_step(&opt, NAN) == XV_ERR_NUMERIC, "NaN lr factor refused");
    xv_adamw_free(&opt);
    xv_params_free(&ps);
}

/* Element-wise kernel: bitwise the same with 1 and 2 threads. */
static void test_thread_invariance(void) {
    enum { N = 100003 };
    float *res[2];
    for (int r = 0; r < 2; r++) {
        xv_params ps;
        xv_params_init(&ps);
        xv_tensor *t = add_param(&ps, "big.weight", N);
        xv_test_fill_uniform(t->data, N, -1, 1, 3);
        xv_adamw_config cfg = xv_adamw_default();
        xv_adamw opt;
        CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
        omp_set_num_threads(r + 1);
        for (int s = 0; s < 3; s++) {
            xv_test_fill_uniform(t->grad, N, -1, 1, 10 + (uint64_t)s);
            CHECK_OK(xv_adamw_step(&opt, 1.0));
        }
        res[r] = malloc(sizeof(float) * N);
        memcpy(res[r], t->data, sizeof(float) * N);
        xv_adamw_free(&opt);
        xv_params_free(&ps);
    }
    omp_set_num_threads(2);
    CHECK(memcmp(res[0], res[1], sizeof(float) * N) == 0, "1 vs 2 threads differ");
    free(res[0]);
    free(res[1]);
}

/* Parameters of mixed sizes (one without a gradient, several across the
 * optimiser's 65,536-element pieces), three clipped updates; the state after. */
enum { MIX = 5 };
static const int64_t mix_sizes[MIX] = {5, 40000, 3, 100003, 70000};

typedef struct {
    float *p[MIX], *g[MIX], *m[MIX], *v[MIX];
} mix_state;

static mix_state run_mixed(bool fused, double max_norm, int threads) {
    mix_state out = {0};
    xv_params ps;
    xv_params_init(&ps);
    xv_tensor *t[MIX];
    for (int i = 0; i < MIX; i++) {
        char name[32];
        snprintf(name, sizeof name, i == 2 ? "p%d.bias" : "p%d.weight", i); /* a no-decay one too */
        t[i] = i == 2 ? xv_params_add(&ps, name, (const int64_t[]){mix_sizes[i]}, 1) : add_param(&ps, name, mix_sizes[i]);
        xv_test_fill_uniform(t[i]->data, mix_sizes[i], -1, 1, 40 + (uint64_t)i);
    }
    xv_adamw_config cfg = xv_adamw_default();
    xv_adamw opt;
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
    omp_set_num_threads(threads);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < MIX; i++)
            if (t[i]->grad) xv_test_fill_uniform(t[i]->grad, mix_sizes[i], -1, 1, 50 + (uint64_t)(10 * s + i));
        double norm;
        if (fused) {
            float scale;
            CHECK_OK(xv_clip_scale(&ps, max_norm, &norm, &scale));
            CHECK_OK(xv_adamw_step_scaled(&opt, 1.0 - 0.2 * s, scale));
        } else {
            CHECK_OK(xv_clip_grad_norm(&ps, max_norm, &norm));
            CHECK_OK(xv_adamw_step(&opt, 1.0 - 0.2 * s));
        }
    }
    omp_set_num_threads(2);
    for (int i = 0; i < MIX; i++) {
        size_t bytes = sizeof(float) * (size_t)mix_sizes[i];
        xv_adamw_slot *sl = xv_adamw_find(&opt, t[i]->name);
        out.p[i] = malloc(bytes), out.g[i] = calloc(1, bytes), out.m[i] = malloc(bytes), out.v[i] = malloc(bytes);
        memcpy(out.p[i], t[i]->data, bytes);
        if (t[i]->grad) memcpy(out.g[i], t[i]->grad, bytes);
        memcpy(out.m[i], sl->m, bytes), memcpy(out.v[i], sl->v, bytes);
    }
    xv_adamw_free(&opt);
    xv_params_free(&ps);
    return out;
}

static bool mix_equal(const mix_state *a, const mix_state *b) {
    bool same = true;
    for (int i = 0; i < MIX; i++) {
        size_t bytes = sizeof(float) * (size_t)mix_sizes[i];
        same = same && !memcmp(a->p[i], b->p[i], bytes) && !memcmp(a->g[i], b->g[i], bytes) &&
               !memcmp(a->m[i], b->m[i], bytes) && !memcmp(a->v[i], b->v[i], bytes);
    }
    return same;
}

static void mix_free(mix_state *a) {
    for (int i = 0; i < MIX; i++) free(a->p[i]), free(a->g[i]), free(a->m[i]), free(a->v[i]);
}

/* The clip's scale applied inside the optimiser's pass is bitwise the clip's
 * own pass followed by the update (parameters, moments and the clipped
 * gradients), clipping or not, on 1 and 2 threads. */
static void test_fused_clip(void) {
    const double norms[2] = {1.0, 1e6}; /* the random gradients' norm is ~150: clipped, then not */
    for (int k = 0; k < 2; k++)
        for (int threads = 1; threads <= 2; threads++) {
            mix_state two = run_mixed(false, norms[k], threads), one = run_mixed(true, norms[k], threads);
            CHECK(mix_equal(&two, &one), "max_norm %g, %d threads: one pass differs from clip + step", norms[k],
                  threads);
            mix_free(&two), mix_free(&one);
        }
    xv_params ps;
    xv_params_init(&ps);
    add_param(&ps, "a.weight", 4);
    xv_adamw opt;
    xv_adamw_config cfg = xv_adamw_default();
    CHECK_OK(xv_adamw_init(&opt, &ps, &cfg, NULL));
    CHECK(xv_adamw_step_scaled(&opt, 1.0, NAN) == XV_ERR_NUMERIC && xv_adamw_find(&opt, "a.weight")->step == 0,
          "a NaN gradient scale is refused before any change");
    xv_adamw_free(&opt);
    xv_params_free(&ps);
}

int main(void) {
    test_no_decay_names();
    test_init_params();
    test_groups();
    test_hand_three_steps();
    test_torch_reference();
    test_skip_without_grad();
    test_thread_invariance();
    test_fused_clip();
    return xv_test_finish("adamw");
}
