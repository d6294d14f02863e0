/* Building the model (parameters under official names), random init and the
 * encoder forward pieces. Weights I/O is in model_io.c, losses in losses.c. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

xv_model_parts xv_model_parts_pretrain(void) {
    xv_model_parts p = {.layout = XV_LAYOUT_PRETRAIN, .mlm = true, .itc = true, .itm = true, .bbox = true};
    return p;
}

static xv_status build(xv_model *m) {
    const xv_model_config *c = &m->cfg;
    const bool pre = m->parts.layout == XV_LAYOUT_PRETRAIN;
    XV_TRY(xv_swin_init(&m->vision, &c->vision, &m->params, "vision_encoder"));
    const char *text_prefix = pre ? "text_encoder.bert" : "text_encoder";
    if (xv_model_paired(&m->parts)) XV_TRY(xv_bert_init_paired(&m->text, &c->text, &m->params, text_prefix));
    else XV_TRY(xv_bert_init(&m->text, &c->text, &m->params, text_prefix));
    if (m->parts.mlm)
        XV_TRY(xv_mlm_head_init(&m->mlm, &m->params, "text_encoder.cls.predictions", c->text.hidden, c->text.ln_eps,
                                m->text.word));
    if (m->parts.itc) {
        if (c->embed_dim < 1)
            return xv_error(XV_ERR_INVALID_ARG, "the model has ITC projections but the config has no embed_dim");
        XV_TRY(xv_nn_linear_new(&m->params, &m->vision_proj, "vision_proj", c->vision.vision_width, c->embed_dim,
                                true));
        XV_TRY(xv_nn_linear_new(&m->params, &m->text_proj, "text_proj", c->text.hidden, c->embed_dim, true));
        m->temp = xv_params_add(&m->params, "temp", (const int64_t[]){1}, 0); /* shape [] */
        if (!m->temp) return XV_ERR_NOMEM;
        m->temp->data[0] = c->temp;
    } else if (m->parts.ta) { /* text assignment pairs images by vision_proj features */
        if (c->embed_dim < 1)
            return xv_error(XV_ERR_INVALID_ARG, "the model has a ta_head (needs vision_proj) but the config has no embed_dim");
        XV_TRY(xv_nn_linear_new(&m->params, &m->vision_proj, "vision_proj", c->vision.vision_width, c->embed_dim,
                                true));
    }
    if (m->parts.itm) XV_TRY(xv_mlp_head_init(&m->itm_head, &m->params, "itm_head", c->text.hidden, 2, c->head_ln_eps));
    if (m->parts.bbox)
        XV_TRY(xv_mlp_head_init(&m->bbox_head, &m->params, "bbox_head", c->text.hidden, 4, c->head_ln_eps));
    if (m->parts.nlvr) XV_TRY(xv_mlp_head_init(&m->cls_head, &m->params, "cls_head", c->text.hidden, 2, c->head_ln_eps));
    if (m->parts.ta) XV_TRY(xv_nn_linear_new(&m->params, &m->ta_head, "ta_head", c->text.hidden, 3, true));
    return XV_OK;
}

xv_status xv_model_create(const xv_model_config *cfg, const xv_model_parts *parts, xv_model **out) {
    *out = NULL;
    XV_TRY(xv_config_validate(cfg));
    xv_model *m = calloc(1, sizeof *m);
    if (!m) return xv_error(XV_ERR_NOMEM, "out of memory creating the model");
    m->cfg = *cfg;
    m->parts = *parts;
    xv_params_init(&m->params);
    xv_status st = build(m);
    if (st != XV_OK) {
        xv_model_free(m);
        return st;
    }
    *out = m;
    return XV_OK;
}

void xv_model_free(xv_model *m) {
    if (!m) return;
    xv_swin_free(&m->vision);
    xv_bert_free(&m->text);
    xv_params_free(&m->params);
    if (m->mapped) xv_st_close(m->mapped);
    free(m);
}

/* N(0, std) for element k of a fill whose counters start at `base`: one
 * Philox block gives a Box-Muller pair (cos for even k, sin for odd k), so a
 * parallel fill gives the same values for any thread count. */
static float normal_at(uint64_t key, uint64_t base, int64_t k, float std) {
    uint32_t r[4];
    xv_philox(key, base + (uint64_t)(k / 2), r);
    float u1 = ((float)(r[0] >> 8) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1]: log is finite */
    float a = (float)(r[1] >> 8) * (float)(2.0 * M_PI / 16777216.0);
    float rad = std * sqrtf(-2.0f * logf(u1));
    return rad * (k % 2 ? sinf(a) : cosf(a));
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

xv_status xv_model_init_random(xv_model *m, uint64_t seed) {
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    for (int i = 0; i < m->params.n; i++) {
        xv_tensor *t = m->params.items[i];
        if (!m->params.owns_data[i])
            return xv_error(XV_ERR_INVALID_ARG, "init: %s is borrowed from a read-only file", t->name);
        float *d = t->data;
        const int64_t n = t->numel;
        if (t->ndim == 0) {
            d[0] = m->cfg.temp; /* the only scalar parameter */
        } else if (t->ndim == 1) {
            /* Every 1-D weight is a LayerNorm gain; 1-D biases start at 0. */
            float v = ends_with(t->name, ".weight") ? 1.0f : 0.0f;
            for (int64_t k = 0; k < n; k++) d[k] = v;
        } else {
            uint64_t base = xv_rng_reserve(&rng, (uint64_t)(n + 1) / 2);
#pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) d[k] = normal_at(rng.key, base, k, 0.02f);
        }
    }
    /* nn.Embedding(padding_idx) keeps the padding row at zero. */
    int64_t H = m->cfg.text.hidden;
    memset(m->text.word->data + (int64_t)m->cfg.text.pad_id * H, 0, sizeof(float) * (size_t)H);
    return XV_OK;
}

void xv_model_clamp_temp(xv_model *m) {
    if (!m->temp) return;
    float *t = m->temp->data;
    if (*t < m->cfg.temp_min) *t = m->cfg.temp_min;
    if (*t > m->cfg.temp_max) *t = m->cfg.temp_max;
}

/* ---- forward pieces ---- */

xv_tensor *xv_model_vision(xv_graph *g, const xv_model *m, xv_tensor *images, xv_tensor **stage_out) {
    return xv_vision_embeds(g, &m->vision, images, stage_out);
}

xv_tensor *xv_vision_embeds(xv_graph *g, const xv_swin *vision, xv_tensor *images, xv_tensor **stage_out) {
    xv_tensor *tok = xv_swin_forward(g, vision, images, stage_out); /* [N, P, C] */
    if (!tok) return NULL;
    const int64_t N = tok->shape[0], C = tok->shape[2];
    xv_tensor *cls = xv_reshape(g, xv_masked_mean(g, tok, NULL), XV_SHAPE(N, 1, C));
    return xv_concat(g, (xv_tensor *[]){cls, tok}, 2, 1);
}

xv_tensor *xv_model_region(xv_graph *g, const xv_model *m, xv_tensor *vision_embeds, xv_tensor *image_atts,
                           xv_tensor *idx, xv_tensor **full) {
    if (!vision_embeds || !image_atts || !idx) return NULL;
    const int64_t T = vision_embeds->shape[1], C = vision_embeds->shape[2], P = T - 1;
    if (vision_embeds->ndim != 3 || C != m->cfg.vision.vision_width || image_atts->dtype != XV_I32 ||
        image_atts->ndim != 2 || image_atts->shape[1] != T || idx->dtype != XV_I32 || idx->ndim != 1 ||
        idx->shape[0] != image_atts->shape[0])
        return xv_graph_fail(g, XV_ERR_SHAPE,
                             "region: need vision_embeds [N, %lld, %d], I32 image_atts [B, %lld] and I32 "
                             "idx_to_group_img [B]",
                             (long long)T, m->cfg.vision.vision_width, (long long)T);
    const int64_t B = idx->shape[0];
    xv_tensor *w = xv_tensor_new(g, XV_F32, XV_SHAPE(B, P));
    if (!w) return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < P; p++) w->data[b * P + p] = (float)image_atts->idata[b * T + 1 + p];
    xv_tensor *tok = xv_gather_rows(g, xv_slice(g, vision_embeds, 1, 1, P), idx); /* [B, P, C] */
    xv_tensor *r = xv_reshape(g, xv_masked_mean(g, tok, w), XV_SHAPE(B, 1, C));
    if (full) *full = xv_gather_rows(g, vision_embeds, idx);
    return xv_concat(g, (xv_tensor *[]){r, tok}, 2, 1);
}

xv_tensor *xv_model_text(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts,
                         xv_tensor **embedding_out) {
    xv_tensor *e = xv_bert_embed(g, &m->text, ids);
    if (embedding_out) *embedding_out = e;
    return xv_bert_layers(g, &m->text, e, 0, m->cfg.text.fusion_layer, atts, NULL, NULL);
}

xv_tensor *xv_model_fusion(xv_graph *g, const xv_model *m, xv_tensor *text_embeds, xv_tensor *text_atts,
                           xv_tensor *image_embeds, xv_tensor *image_atts) {
    return xv_bert_forward(g, &m->text, XV_BERT_FUSION, text_embeds, text_atts, image_embeds, image_atts);
}

xv_tensor *xv_model_multimodal(xv_graph *g, const xv_model *m, xv_tensor *ids, xv_tensor *atts,
                               xv_tensor *image_embeds, xv_tensor *image_atts) {
    return xv_bert_forward(g, &m->text, XV_BERT_MULTI_MODAL, ids, atts, image_embeds, image_atts);
}

static xv_tensor *feat(xv_graph *g, const xv_model *m, const xv_linear_p *proj, xv_tensor *embeds) {
    if (!m->parts.itc)
        return xv_graph_fail(g, XV_ERR_UNSUPPORTED, "the model has no vision_proj/text_proj (no ITC weights)");
    return xv_l2_normalize(g, xv_nn_linear(g, proj, xv_nn_token(g, embeds, 0)), 1e-12f);
}

xv_tensor *xv_model_image_feat(xv_graph *g, const xv_model *m, xv_tensor *image_embeds) {
    return feat(g, m, &m->vision_proj, image_embeds);
}

xv_tensor *xv_model_text_feat(xv_graph *g, const xv_model *m, xv_tensor *text_embeds) {
    return feat(g, m, &m->text_proj, text_embeds);
}
