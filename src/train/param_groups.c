#include "train/param_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* The official optim.py no_decay set; matched as substrings of the name. */
static const char *const k_no_decay[] = {
    "bias",        "LayerNorm.bias", "LayerNorm.weight", "norm.bias",    "norm.weight",
    "norm1.bias",  "norm1.weight",   "norm2.bias",       "norm2.weight",
};

bool xv_param_no_decay(const char *name) {
    for (size_t i = 0; i < sizeof k_no_decay / sizeof k_no_decay[0]; i++)
        if (strstr(name, k_no_decay[i])) return true;
    return false;
}

xv_init_params_spec xv_init_params_pretrain_default(void) {
    xv_init_params_spec s = {0};
    s.kind = XV_INIT_PARAMS_PRETRAIN;
    s.fusion_layer = 6;
    s.num_hidden_layers = 12;
    s.text_prefix = "text_encoder.bert.";
    s.contrastive = s.matching = s.bbox = true;
    return s;
}

/* Parameter names of a BertAttention(is_cross_attention=True) block. */
static const char *const k_cross_attn[] = {
    "self.query.weight",  "self.query.bias",   "self.key.weight",         "self.key.bias",
    "self.value.weight",  "self.value.bias",   "output.dense.weight",     "output.dense.bias",
    "output.LayerNorm.weight", "output.LayerNorm.bias",
};
/* Parameter names of build_mlp (Linear, LayerNorm, GELU, Linear). */
static const char *const k_mlp[] = {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"};

static xv_status push(xv_init_params *ip, int *cap, const char *fmt, const char *a, const char *b) {
    if (ip->n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        char **nn = realloc(ip->names, sizeof *nn * (size_t)nc);
        if (!nn) return xv_error(XV_ERR_NOMEM, "init_params: out of memory");
        ip->names = nn;
        *cap = nc;
    }
    int len = snprintf(NULL, 0, fmt, a, b);
    char *s = malloc((size_t)len + 1);
    if (!s) return xv_error(XV_ERR_NOMEM, "init_params: out of memory");
    snprintf(s, (size_t)len + 1, fmt, a, b);
    ip->names[ip->n++] = s;
    return XV_OK;
}

static xv_status push_mlp(xv_init_params *ip, int *cap, const char *head) {
    for (size_t i = 0; i < sizeof k_mlp / sizeof k_mlp[0]; i++) XV_TRY(push(ip, cap, "%s.%s", head, k_mlp[i]));
    return XV_OK;
}

static xv_status build_pretrain(const xv_init_params_spec *s, xv_init_params *ip, int *cap) {
    if (!s->text_prefix) return xv_error(XV_ERR_INVALID_ARG, "init_params: pretraining spec needs text_prefix");
    if (s->fusion_layer < 0 || s->fusion_layer > s->num_hidden_layers)
        return xv_error(XV_ERR_INVALID_ARG, "init_params: fusion_layer %d outside [0, num_hidden_layers=%d]",
                        s->fusion_layer, s->num_hidden_layers);
    /* The text encoder's missing keys when loading bert-base: every cross-attention tensor. */
    for (int l = s->fusion_layer; l < s->num_hidden_layers; l++) {
        char layer[64];
        snprintf(layer, sizeof layer, "encoder.layer.%d.crossattention.", l);
        for (size_t i = 0; i < sizeof k_cross_attn / sizeof k_cross_attn[0]; i++) {
            char suffix[128];
            snprintf(suffix, sizeof suffix, "%s%s", layer, k_cross_attn[i]);
            XV_TRY(push(ip, cap, "%s%s", s->text_prefix, suffix));
        }
    }
    if (s->contrastive) {
        XV_TRY(push(ip, cap, "%s%s", "vision_proj.", "weight"));
        XV_TRY(push(ip, cap, "%s%s", "vision_proj.", "bias"));
        XV_TRY(push(ip, cap, "%s%s", "text_proj.", "weight"));
        XV_TRY(push(ip, cap, "%s%s", "text_proj.", "bias"));
        XV_TRY(push(ip, cap, "%s%s", "temp", ""));
    }
    if (s->matching) XV_TRY(push_mlp(ip, cap, "itm_head"));
    if (s->bbox) XV_TRY(push_mlp(ip, cap, "bbox_head"));
    return XV_OK;
}

xv_status xv_init_params_build(const xv_init_params_spec *spec, xv_init_params *out) {
    memset(out, 0, sizeof *out);
    int cap = 0;
    xv_status st = XV_OK;
    switch (spec->kind) {
    case XV_INIT_PARAMS_NONE: break;
    case XV_INIT_PARAMS_PRETRAIN: st = build_pretrain(spec, out, &cap); break;
    case XV_INIT_PARAMS_NLVR: st = push_mlp(out, &cap, "cls_head"); break;
    case XV_INIT_PARAMS_NLVR_PRETRAIN:
        /* ta_head is a plain Linear. */
        st = push(out, &cap, "%s%s", "ta_head.", "weight");
        if (st == XV_OK) st = push(out, &cap, "%s%s", "ta_head.", "bias");
        break;
    case XV_INIT_PARAMS_VQA: out->vqa_rule = spec->vqa_widths_differ; break;
    default: st = xv_error(XV_ERR_INVALID_ARG, "init_params: unknown model kind %d", (int)spec->kind);
    }
    if (st != XV_OK) xv_init_params_free(out);
    return st;
}

void xv_init_params_free(xv_init_params *ip) {
    for (int i = 0; i < ip->n; i++) free(ip->names[i]);
    free(ip->names);
    memset(ip, 0, sizeof *ip);
}

bool xv_init_params_contains(const xv_init_params *ip, const char *name) {
    if (ip->vqa_rule && strncmp(name, "text_decoder.", 13) == 0 &&
        (strstr(name, "crossattention.self.key") || strstr(name, "crossattention.self.value")))
        return true;
    for (int i = 0; i < ip->n; i++)
        if (strcmp(ip->names[i], name) == 0) return true;
    return false;
}
