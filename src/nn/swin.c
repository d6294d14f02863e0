#include "nn/swin.h"

#include "nn/batch_split.h"
#include "nn/relay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void xv_swin_rel_index(int w, int32_t *out) {
    int n = w * w;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int dh = i / w - j / w + w - 1, dw = i % w - j % w + w - 1;
            out[(int64_t)i * n + j] = dh * (2 * w - 1) + dw;
        }
}

/* Region label of row/column r in the official three-slice split. */
static int shift_region(int r, int res, int w, int sh) {
    if (r < res - w) return 0;
    if (r < res - sh) return 1;
    return 2;
}

void xv_swin_shift_mask(int res, int w, int sh, float *out) {
    int per = res / w, n = w * w;
    int lab[n];
    for (int wr = 0; wr < per; wr++)
        for (int wc = 0; wc < per; wc++) {
            /* Labels of this window's tokens (the label map is partitioned unshifted). */
            for (int t = 0; t < n; t++) {
                int r = wr * w + t / w, c = wc * w + t % w;
                lab[t] = 3 * shift_region(r, res, w, sh) + shift_region(c, res, w, sh);
            }
            float *m = out + (int64_t)(wr * per + wc) * n * n;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) m[(int64_t)i * n + j] = lab[i] == lab[j] ? 0.0f : -100.0f;
        }
}

static xv_status block_init(xv_swin_block *b, const xv_swin_config *cfg, const xv_swin_stage_geom *geo,
                            int blk, float dpr, xv_params *p, const char *prefix) {
    char name[256];
    b->res = geo->res;
    b->dim = geo->dim;
    b->heads = geo->heads;
    b->window = geo->window;
    b->shift = blk % 2 ? geo->shift : 0;
    b->n_windows = geo->n_windows;
    b->drop_path = dpr;
    int C = geo->dim, W = geo->window, hidden = (int)(C * cfg->mlp_ratio);
    XV_TRY(xv_nn_name(name, sizeof name, "%s.norm1", prefix));
    XV_TRY(xv_nn_ln_new(p, &b->norm1, name, C, cfg->ln_eps));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.attn.relative_position_bias_table", prefix));
    b->rel_table = xv_params_add(p, name, XV_SHAPE((2 * W - 1) * (2 * W - 1), geo->heads));
    if (!b->rel_table) return XV_ERR_NOMEM;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.attn.qkv", prefix));
    XV_TRY(xv_nn_linear_new(p, &b->qkv, name, C, 3 * C, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.attn.proj", prefix));
    XV_TRY(xv_nn_linear_new(p, &b->proj, name, C, C, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.norm2", prefix));
    XV_TRY(xv_nn_ln_new(p, &b->norm2, name, C, cfg->ln_eps));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.mlp.fc1", prefix));
    XV_TRY(xv_nn_linear_new(p, &b->fc1, name, C, hidden, true));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.mlp.fc2", prefix));
    XV_TRY(xv_nn_linear_new(p, &b->fc2, name, hidden, C, true));

    int64_t n = (int64_t)W * W;
    b->rel_index = malloc(sizeof(int32_t) * (size_t)(n * n));
    if (!b->rel_index) return xv_error(XV_ERR_NOMEM, "out of memory for %s relative_position_index", prefix);
    xv_swin_rel_index(W, b->rel_index);
    if (b->shift > 0) {
        b->shift_mask = malloc(sizeof(float) * (size_t)(b->n_windows * n * n));
        if (!b->shift_mask) return xv_error(XV_ERR_NOMEM, "out of memory for %s attn_mask", prefix);
        xv_swin_shift_mask(b->res, W, b->shift, b->shift_mask);
    }
    return XV_OK;
}

xv_status xv_swin_init(xv_swin *s, const xv_swin_config *cfg, xv_params *p, const char *prefix) {
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    char name[256];
    int C0 = cfg->embed_dim, P = cfg->patch;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.patch_embed.proj.weight", prefix));
    s->patch_w = xv_params_add(p, name, XV_SHAPE(C0, cfg->in_chans, P, P));
    XV_TRY(xv_nn_name(name, sizeof name, "%s.patch_embed.proj.bias", prefix));
    s->patch_b = xv_params_add(p, name, XV_SHAPE(C0));
    if (!s->patch_w || !s->patch_b) return XV_ERR_NOMEM;
    XV_TRY(xv_nn_name(name, sizeof name, "%s.patch_embed.norm", prefix));
    XV_TRY(xv_nn_ln_new(p, &s->patch_norm, name, C0, cfg->ln_eps));
    if (cfg->ape) {
        const int side = cfg->image_res / P;
        XV_TRY(xv_nn_name(name, sizeof name, "%s.absolute_pos_embed", prefix));
        s->ape = xv_params_add(p, name, XV_SHAPE(1, (int64_t)side * side, C0));
        if (!s->ape) return XV_ERR_NOMEM;
    }

    int total = 0, k = 0;
    for (int st = 0; st < cfg->n_stages; st++) total += cfg->depths[st];
    for (int st = 0; st < cfg->n_stages; st++) {
        xv_swin_stage_geom geo = xv_swin_stage(cfg, st);
        xv_swin_stage_p *sp = &s->stages[st];
        sp->depth = cfg->depths[st];
        sp->blocks = calloc((size_t)sp->depth, sizeof *sp->blocks);
        if (!sp->blocks) return xv_error(XV_ERR_NOMEM, "out of memory for Swin stage %d", st);
        for (int b = 0; b < sp->depth; b++, k++) {
            /* torch.linspace(0, rate, total)[k] */
            float dpr = total > 1 ? cfg->drop_path_rate * (float)k / (float)(total - 1) : 0.0f;
            XV_TRY(xv_nn_name(name, sizeof name, "%s.layers.%d.blocks.%d", prefix, st, b));
            XV_TRY(block_init(&sp->blocks[b], cfg, &geo, b, dpr, p, name));
        }
        sp->has_merge = st + 1 < cfg->n_stages;
        if (sp->has_merge) {
            XV_TRY(xv_nn_name(name, sizeof name, "%s.layers.%d.downsample.reduction", prefix, st));
            XV_TRY(xv_nn_linear_new(p, &sp->merge_red, name, 4 * geo.dim, 2 * geo.dim, false));
            XV_TRY(xv_nn_name(name, sizeof name, "%s.layers.%d.downsample.norm", prefix, st));
            XV_TRY(xv_nn_ln_new(p, &sp->merge_norm, name, 4 * geo.dim, cfg->ln_eps));
        }
    }
    XV_TRY(xv_nn_name(name, sizeof name, "%s.norm", prefix));
    XV_TRY(xv_nn_ln_new(p, &s->norm, name, cfg->vision_width, cfg->ln_eps));
    return XV_OK;
}

void xv_swin_free(xv_swin *s) {
    for (int st = 0; st < XV_SWIN_MAX_STAGES; st++) {
        xv_swin_stage_p *sp = &s->stages[st];
        for (int b = 0; sp->blocks && b < sp->depth; b++) {
            free(sp->blocks[b].rel_index);
            free(sp->blocks[b].shift_mask);
        }
        free(sp->blocks);
    }
    memset(s, 0, sizeof *s);
}

/* The relative-position bias [heads, W², W²] gathered from the table, so the
 * table receives gradients through the gather. */
static xv_tensor *rel_bias(xv_graph *g, const xv_swin_block *b) {
    int64_t n = (int64_t)b->window * b->window;
    xv_tensor *idx = xv_tensor_wrap_i32(g, b->rel_index, XV_SHAPE(n * n));
    xv_tensor *rows = xv_gather_rows(g, b->rel_table, idx);      /* [n·n, heads] */
    rows = xv_reshape(g, rows, XV_SHAPE(n, n, b->heads));
    return xv_permute(g, rows, (const int[]){2, 0, 1});
}

static xv_tensor *block_forward(xv_graph *g, const xv_swin_block *b, xv_tensor *x) {
    const int64_t C = b->dim, n = (int64_t)b->window * b->window;
    xv_tensor *h = xv_nn_ln(g, &b->norm1, x);
    h = xv_window_partition(g, h, b->res, b->res, b->window, b->shift); /* [N·nW, W², C] */
    xv_tensor *qkv = xv_nn_linear(g, &b->qkv, h); /* q, k, v = column blocks of C */
    xv_attn_args a = {0};
    a.heads = b->heads;
    a.scale = (float)(1.0 / sqrt((double)(C / b->heads))); /* Swin scales q before q·kᵀ */
    a.bias = rel_bias(g, b);
    if (b->shift_mask)
        a.group_mask = xv_tensor_wrap_f32(g, b->shift_mask, XV_SHAPE(b->n_windows, n, n));
    if ((b->shift_mask && !a.group_mask) || !a.bias) return NULL;
    h = xv_attention_packed(g, qkv, &a);
    h = xv_nn_linear(g, &b->proj, h);
    h = xv_window_reverse(g, h, b->res, b->res, b->window, b->shift); /* [N, res², C] */
    x = xv_add(g, x, xv_drop_path(g, h, b->drop_path));
    h = xv_nn_linear_gelu(g, &b->fc1, xv_nn_ln(g, &b->norm2, x));
    if (!xv_graph_training(g) || b->drop_path == 0) /* drop-path is the identity: fc2 adds the residual */
        return xv_nn_linear_add(g, &b->fc2, h, x);
    return xv_add(g, x, xv_drop_path(g, xv_nn_linear(g, &b->fc2, h), b->drop_path));
}

/* The encoder on images already checked; stage_out as in xv_swin_forward. */
static xv_tensor *swin_run(xv_graph *g, const xv_swin *s, xv_tensor *images, xv_tensor **stage_out) {
    const xv_swin_config *c = &s->cfg;
    xv_relay r;
    if (!xv_relay_begin(&r, g)) return NULL;
    int64_t C0 = c->embed_dim, kin = (int64_t)c->in_chans * c->patch * c->patch;
    xv_tensor *x = images, *out = NULL;
    xv_graph *cg = xv_relay_next(&r, &x);
    x = xv_patchify(cg, x, c->patch); /* [N, P0, in·p·p], features (c, kh, kw) */
    x = xv_linear(cg, x, xv_reshape(cg, s->patch_w, XV_SHAPE(C0, kin)), s->patch_b);
    x = xv_nn_ln(cg, &s->patch_norm, x);
    if (s->ape) x = xv_add(cg, x, xv_reshape(cg, s->ape, XV_SHAPE(s->ape->shape[1], C0))); /* [P0, C] over N */
    for (int st = 0; st < c->n_stages && xv_relay_ok(&r, cg, x); st++) {
        const xv_swin_stage_p *sp = &s->stages[st];
        for (int b = 0; b < sp->depth && xv_relay_ok(&r, cg, x); b++) {
            cg = xv_relay_next(&r, &x);
            x = block_forward(cg, &sp->blocks[b], x);
        }
        if (sp->has_merge && xv_relay_ok(&r, cg, x)) {
            int res = sp->blocks[0].res;
            cg = xv_relay_next(&r, &x);
            x = xv_patch_merge(cg, x, res, res);
            x = xv_nn_linear(cg, &sp->merge_red, xv_nn_ln(cg, &sp->merge_norm, x));
        }
        if (stage_out && xv_relay_ok(&r, cg, x)) stage_out[st] = xv_relay_keep(&r, cg, x);
    }
    if (xv_relay_ok(&r, cg, x)) {
        cg = xv_relay_next(&r, &x);
        x = xv_nn_ln(cg, &s->norm, x);
        if (xv_relay_ok(&r, cg, x)) out = xv_relay_keep(&r, cg, x);
    }
    xv_relay_end(&r);
    return out;
}

static xv_tensor *swin_share(xv_graph *g, void *user, xv_tensor *const *in) {
    return swin_run(g, user, in[0], NULL);
}

xv_tensor *xv_swin_forward(xv_graph *g, const xv_swin *s, xv_tensor *images, xv_tensor **stage_out) {
    if (!images) return NULL;
    const xv_swin_config *c = &s->cfg;
    if (images->dtype != XV_F32 || images->ndim != 4 || images->shape[1] != c->in_chans ||
        images->shape[2] != c->image_res || images->shape[3] != c->image_res) {
        char buf[64];
        return xv_graph_fail(g, XV_ERR_SHAPE, "vision encoder: images must be F32 [N, %d, %d, %d], got %s",
                             c->in_chans, c->image_res, c->image_res, xv_shape_str(images, buf, sizeof buf));
    }
    if (stage_out) return swin_run(g, s, images, stage_out);
    /* Images are independent: in inference, one stream of images per thread. */
    return xv_batch_split(g, swin_share, (void *)s, &images, 1);
}
