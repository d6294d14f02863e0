/* X-VLM config from state_dict shapes: see xvlm_config_infer.h. */
#include "io/xvlm_config_infer.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "io/strindex.h"

#define MAX_STAGES 8

typedef struct {
    const xv_named_shape *t;
    xv_strindex ix;
} shapes;

/* Shape of the tensor named by the format, or NULL. */
static const xv_named_shape *find(const shapes *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const xv_named_shape *find(const shapes *s, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name) return NULL;
    int32_t i = xv_strindex_get(&s->ix, name);
    return i >= 0 ? &s->t[i] : NULL;
}

static xv_status need(const xv_named_shape *t, int ndim, const char *what) {
    if (!t) return xv_error(XV_ERR_MISSING, "convert: no %s tensor", what);
    if (t->ndim != ndim)
        return xv_error(XV_ERR_SHAPE, "convert: %s has %d dimensions, expected %d", t->name, t->ndim, ndim);
    return XV_OK;
}

static int official_res_for_window(int w) { return w == 7 ? 224 : w == 12 ? 384 : w == 15 ? 480 : 0; }
static int official_window_for_res(int r) { return r == 224 ? 7 : r == 384 ? 12 : r == 480 ? 15 : 0; }

static double num(const cJSON *cfg, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static xv_status vision(const shapes *s, const cJSON *ckpt, const xv_infer_opts *o, cJSON *cfg) {
    const xv_named_shape *pe = find(s, "vision_encoder.patch_embed.proj.weight");
    if (!pe)
        return xv_error(XV_ERR_UNSUPPORTED, "convert: no vision_encoder.patch_embed.proj.weight: only Swin vision "
                                            "encoders are supported (CLIP/DeiT checkpoints are not)");
    XV_TRY(need(pe, 4, "patch embedding"));
    if (pe->shape[2] != pe->shape[3]) return xv_error(XV_ERR_SHAPE, "convert: %s is not square", pe->name);
    int c0 = (int)pe->shape[0], patch = (int)pe->shape[2];
    int depths[MAX_STAGES], heads[MAX_STAGES], ns = 0;
    int64_t rows0 = 0;
    while (ns < MAX_STAGES && find(s, "vision_encoder.layers.%d.blocks.0.norm1.weight", ns)) {
        int d = 0;
        while (find(s, "vision_encoder.layers.%d.blocks.%d.norm1.weight", ns, d)) d++;
        const xv_named_shape *tab = find(s, "vision_encoder.layers.%d.blocks.0.attn.relative_position_bias_table", ns);
        XV_TRY(need(tab, 2, "relative_position_bias_table"));
        const xv_named_shape *n1 = find(s, "vision_encoder.layers.%d.blocks.0.norm1.weight", ns);
        if (n1->ndim != 1 || n1->shape[0] != (int64_t)c0 << ns)
            return xv_error(XV_ERR_SHAPE, "convert: %s should have %lld channels", n1->name, (long long)c0 << ns);
        if (ns == 0) rows0 = tab->shape[0];
        depths[ns] = d;
        heads[ns] = (int)tab->shape[1];
        ns++;
    }
    if (ns == 0) return xv_error(XV_ERR_MISSING, "convert: no vision_encoder.layers.0.blocks.0 tensors");
    int side = (int)lround(sqrt((double)rows0));
    if ((int64_t)side * side != rows0 || side % 2 == 0)
        return xv_error(XV_ERR_SHAPE, "convert: relative_position_bias_table of %lld rows is not (2W-1)^2",
                        (long long)rows0);
    int w0 = (side + 1) / 2;

    /* Target window and resolution. */
    const cJSON *ck_res = cJSON_GetObjectItemCaseSensitive(ckpt, "image_res");
    int w = o->window ? o->window : o->image_res ? official_window_for_res(o->image_res) : 0;
    if (!w) w = w0;
    int res = o->image_res;
    if (!res && w == w0 && cJSON_IsNumber(ck_res)) res = ck_res->valueint; /* the checkpoint's own */
    if (!res) res = official_res_for_window(w);
    if (!res)
        return xv_error(XV_ERR_INVALID_ARG, "convert: cannot infer image_res (window %d is not 7/12/15 and the checkpoint "
                                                 "does not say); give --image-res (xv_infer_opts.image_res)",
                        w);
    int final_stride = patch << (ns - 1);
    if (w < 1 || res <= 0 || res % final_stride)
        return xv_error(XV_ERR_INVALID_ARG, "convert: image resolution %d is not a multiple of %d (patch %d, %d stages); "
                                            "give another --image-res",
                        res, final_stride, patch, ns);

    const xv_named_shape *fc1 = find(s, "vision_encoder.layers.0.blocks.0.mlp.fc1.weight");
    const xv_named_shape *norm = find(s, "vision_encoder.norm.weight");
    XV_TRY(need(fc1, 2, "vision_encoder.layers.0.blocks.0.mlp.fc1.weight"));
    XV_TRY(need(norm, 1, "vision_encoder.norm.weight"));
    if (norm->shape[0] != (int64_t)c0 << (ns - 1))
        return xv_error(XV_ERR_SHAPE, "convert: vision_encoder.norm.weight has %lld channels, expected %lld",
                        (long long)norm->shape[0], (long long)c0 << (ns - 1));

    cJSON *v = cJSON_AddObjectToObject(cfg, "vision");
    if (!v) return xv_error(XV_ERR_NOMEM, "out of memory");
    cJSON_AddBoolToObject(v, "ape", find(s, "vision_encoder.absolute_pos_embed") != NULL);
    cJSON_AddItemToObject(v, "depths", int_array(depths, ns));
    cJSON_AddNumberToObject(v, "drop_path_rate", 0.1);
    cJSON_AddNumberToObject(v, "embed_dim", c0);
    cJSON_AddNumberToObject(v, "image_res", res);
    cJSON_AddNumberToObject(v, "in_chans", (double)pe->shape[1]);
    cJSON_AddNumberToObject(v, "layer_norm_eps", 1e-5);
    cJSON_AddNumberToObject(v, "mlp_ratio", (double)fc1->shape[0] / c0);
    cJSON_AddItemToObject(v, "num_heads", int_array(heads, ns));
    cJSON_AddNumberToObject(v, "num_patches", (double)(res / final_stride) * (res / final_stride));
    cJSON_AddBoolToObject(v, "patch_norm", find(s, "vision_encoder.patch_embed.norm.weight") != NULL);
    cJSON_AddNumberToObject(v, "patch_size", final_stride);
    cJSON_AddBoolToObject(v, "qkv_bias", find(s, "vision_encoder.layers.0.blocks.0.attn.qkv.bias") != NULL);
    cJSON_AddNumberToObject(v, "swin_patch_size", patch);
    cJSON_AddStringToObject(v, "type", "swin");
    cJSON_AddNumberToObject(v, "vision_width", (double)norm->shape[0]);
    cJSON_AddNumberToObject(v, "window_size", w);
    return XV_OK;
}

static xv_status text(const shapes *s, const xv_infer_opts *o, cJSON *cfg) {
    static const char *prefixes[] = {"text_encoder.bert.", "text_encoder.", "text_decoder.bert."};
    const char *p = NULL;
    const xv_named_shape *we = NULL;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes && !we; i++)
        if ((we = find(s, "%sembeddings.word_embeddings.weight", prefixes[i]))) p = prefixes[i];
    if (!we)
        return xv_error(XV_ERR_MISSING, "convert: no BERT text encoder (text_encoder[.bert].embeddings."
                                        "word_embeddings.weight)");
    XV_TRY(need(we, 2, "word embedding"));
    const xv_named_shape *pos = find(s, "%sembeddings.position_embeddings.weight", p);
    const xv_named_shape *typ = find(s, "%sembeddings.token_type_embeddings.weight", p);
    const xv_named_shape *inter = find(s, "%sencoder.layer.0.intermediate.dense.weight", p);
    XV_TRY(need(pos, 2, "position embedding"));
    XV_TRY(need(typ, 2, "token type embedding"));
    XV_TRY(need(inter, 2, "encoder.layer.0.intermediate.dense.weight"));
    int hidden = (int)we->shape[1], layers = 0, fusion = -1, enc_width = 0;
    while (find(s, "%sencoder.layer.%d.attention.self.query.weight", p, layers)) layers++;
    for (int i = 0; i < layers && fusion < 0; i++) {
        const xv_named_shape *k = find(s, "%sencoder.layer.%d.crossattention.self.key.weight", p, i);
        if (!k) continue;
        XV_TRY(need(k, 2, "cross-attention key"));
        fusion = i;
        enc_width = (int)k->shape[1];
    }
    if (fusion < 0) fusion = layers; /* no cross-attention: a text-only stack */
    int heads = o->text_heads ? o->text_heads : hidden / 64;
    if (heads < 1 || hidden % heads)
        return xv_error(XV_ERR_INVALID_ARG, "convert: cannot infer the text attention heads of hidden size %d; give "
                                            "--text-heads (it must divide the hidden size)",
                        hidden);

    cJSON *t = cJSON_AddObjectToObject(cfg, "text");
    if (!t) return xv_error(XV_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(t, "attention_probs_dropout_prob", 0.1);
    if (enc_width) cJSON_AddNumberToObject(t, "encoder_width", enc_width);
    cJSON_AddNumberToObject(t, "fusion_layer", fusion);
    cJSON_AddStringToObject(t, "hidden_act", "gelu");
    cJSON_AddNumberToObject(t, "hidden_dropout_prob", 0.1);
    cJSON_AddNumberToObject(t, "hidden_size", hidden);
    cJSON_AddNumberToObject(t, "initializer_range", 0.02);
    cJSON_AddNumberToObject(t, "intermediate_size", (double)inter->shape[0]);
    cJSON_AddNumberToObject(t, "layer_norm_eps", 1e-12);
    cJSON_AddNumberToObject(t, "max_position_embeddings", (double)pos->shape[0]);
    cJSON_AddNumberToObject(t, "num_attention_heads", heads);
    cJSON_AddNumberToObject(t, "num_hidden_layers", layers);
    cJSON_AddNumberToObject(t, "pad_token_id", 0);
    cJSON_AddNumberToObject(t, "type_vocab_size", (double)typ->shape[0]);
    cJSON_AddNumberToObject(t, "vocab_size", (double)we->shape[0]);
    cJSON_AddStringToObject(cfg, "text_prefix", p);
    return XV_OK;
}

xv_status xv_infer_xvlm_config(const xv_named_shape *tensors, int n, const cJSON *ckpt_config,
                               const xv_infer_opts *opts, cJSON **out) {
    *out = NULL;
    xv_infer_opts none = {0};
    if (!opts) opts = &none;
    shapes s = {tensors, {0}};
    for (int i = 0; i < n; i++)
        if (!xv_strindex_put(&s.ix, tensors[i].name, i)) {
            xv_strindex_free(&s.ix);
            return xv_error(XV_ERR_NOMEM, "out of memory");
        }
    cJSON *cfg = cJSON_CreateObject();
    xv_status st = cfg ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        const xv_named_shape *proj = find(&s, "vision_proj.weight");
        if (!proj) proj = find(&s, "text_proj.weight");
        if (proj && proj->ndim == 2) cJSON_AddNumberToObject(cfg, "embed_dim", (double)proj->shape[0]);
        cJSON_AddNumberToObject(cfg, "head_layer_norm_eps", 1e-5);
        /* Training settings only the checkpoint's config knows. */
        static const char *keep[] = {"max_masks", "mask_prob", "max_tokens", "max_words"};
        for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
            if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(ckpt_config, keep[i])))
                cJSON_AddNumberToObject(cfg, keep[i], num(ckpt_config, keep[i], 0));
        cJSON_AddStringToObject(cfg, "name", "converted");
        cJSON_AddNumberToObject(cfg, "temp", num(ckpt_config, "temp", 0.07));
        double clamp[2] = {0.001, 0.5};
        cJSON_AddItemToObject(cfg, "temp_clamp", cJSON_CreateDoubleArray(clamp, 2));
        st = text(&s, opts, cfg);
    }
    if (st == XV_OK) st = vision(&s, ckpt_config, opts, cfg);
    xv_strindex_free(&s.ix);
    if (st != XV_OK) {
        cJSON_Delete(cfg);
        return st;
    }
    *out = cfg;
    return XV_OK;
}

int xv_swin_stage_window(const cJSON *config, int stage) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, "vision");
    int res = (int)num(v, "image_res", 0), patch = (int)num(v, "swin_patch_size", 0), w = (int)num(v, "window_size", 0);
    if (res <= 0 || patch <= 0 || w <= 0 || stage < 0 || stage >= MAX_STAGES) return 0;
    int r = (res / patch) >> stage;
    return r < w ? r : w;
}
