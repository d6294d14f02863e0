/* Encoding images: the official test transform, the vision encoder, the ITC
 * features and (optionally) the vision tokens kept for ITM and grounding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/half.h"
#include "data/resize.h"
#include "data/transforms.h"

#define ERRLEN 512

xvlm_image_params xvlm_image_params_default(void) { return (xvlm_image_params){.keep_tokens = true, .batch = 8}; }

xv_status xv_api_images_own(xvlm_images *im, void *p) {
    if (!p) return xv_error(XV_ERR_NOMEM, "out of memory for encoded images");
    if (im->n_owned == (int)(sizeof im->owned / sizeof *im->owned)) {
        free(p);
        return xv_error(XV_ERR_INTERNAL, "image set: too many owned blocks");
    }
    im->owned[im->n_owned++] = p;
    return XV_OK;
}

xv_status xv_api_images_new(const xvlm_model *mm, int64_t n, bool keep_tokens, bool with_paths_room,
                            xvlm_images **out) {
    *out = NULL;
    const xv_model *m = mm->m;
    xvlm_images *im = calloc(1, sizeof *im);
    if (!im) return xv_error(XV_ERR_NOMEM, "out of memory");
    im->model_id = mm->id;
    im->n = n;
    im->E = m->parts.itc ? m->cfg.embed_dim : 0;
    im->T = 1 + xv_config_num_patches(&m->cfg);
    im->C = m->cfg.vision.vision_width;
    size_t rows = (size_t)(n > 0 ? n : 1);
    xv_status st = XV_OK;
    if (im->E) {
        float *f = calloc(rows * (size_t)im->E, sizeof *f);
        st = xv_api_images_own(im, f);
        im->feat = f;
    }
    if (st == XV_OK && keep_tokens) {
        float *t = malloc(rows * (size_t)im->T * (size_t)im->C * sizeof *t);
        st = xv_api_images_own(im, t);
        im->tokens = t;
        im->tok_kind = XVLM_TOKENS_F32;
    }
    if (st == XV_OK) {
        int32_t *s = calloc(rows * 2, sizeof *s);
        st = xv_api_images_own(im, s);
        im->sizes = s;
    }
    if (st == XV_OK && with_paths_room) {
        int64_t *o = malloc(rows * sizeof *o);
        st = xv_api_images_own(im, o);
        im->path_off = o;
        for (int64_t i = 0; st == XV_OK && i < n; i++) o[i] = -1;
    }
    if (st != XV_OK) {
        xvlm_images_free(im);
        return st;
    }
    *out = im;
    return XV_OK;
}

void xvlm_images_free(xvlm_images *im) {
    if (!im) return;
    for (int i = 0; i < im->n_owned; i++) free(im->owned[i]);
    if (im->mapped) xv_st_close(im->mapped);
    free(im);
}

int64_t xvlm_images_count(const xvlm_images *im) { return im ? im->n : 0; }
const float *xvlm_images_features(const xvlm_images *im) { return im ? im->feat : NULL; }
bool xvlm_images_has_tokens(const xvlm_images *im) { return im && im->tok_kind != XVLM_TOKENS_NONE; }

const char *xvlm_images_path(const xvlm_images *im, int64_t i) {
    if (!im || i < 0 || i >= im->n || !im->path_blob || !im->path_off || im->path_off[i] < 0) return NULL;
    return im->path_blob + im->path_off[i];
}

void xvlm_images_size(const xvlm_images *im, int64_t i, int *width, int *height) {
    bool ok = im && i >= 0 && i < im->n;
    if (width) *width = ok ? im->sizes[2 * i] : 0;
    if (height) *height = ok ? im->sizes[2 * i + 1] : 0;
}

void xv_api_image_tokens(const xvlm_images *im, int64_t i, float *dst) {
    size_t per = (size_t)im->T * (size_t)im->C;
    if (im->tok_kind == XVLM_TOKENS_F32)
        memcpy(dst, (const float *)im->tokens + (size_t)i * per, per * sizeof *dst);
    else
        xv_f16_to_f32_n((const uint16_t *)im->tokens + (size_t)i * per, dst, per);
}

xv_status xv_api_preprocess_file(const char *path, int res, float *out, int *w, int *h) {
    xv_image img;
    XV_TRY(xv_image_load(path, &img));
    xv_status st = xv_transform_test(&img, res, out);
    *w = img.width;
    *h = img.height;
    xv_image_free(&img);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s", path);
}

static xv_status preprocess_rgb(const xvlm_rgb *src, int res, float *out) {
    if (!src->rgb || src->width < 1 || src->height < 1 ||
        (src->stride && src->stride < (size_t)src->width * 3))
        return xv_error(XV_ERR_INVALID_ARG, "RGB image: need pixels, width and height >= 1 and stride >= width*3 "
                                            "(got %dx%d, stride %zu)", src->width, src->height, src->stride);
    xv_image_view v = {src->rgb, src->width, src->height, src->stride ? src->stride : (size_t)src->width * 3};
    xv_image r;
    XV_TRY(xv_resize_bicubic(v, res, res, &r));
    xv_image_normalize(&r, out);
    xv_image_free(&r);
    return XV_OK;
}

xv_status xv_api_vision_pass(xvlm_ctx *ctx, const float *pixels, int b, float *feat, float *tokens) {
    const xv_model *m = ctx->model->m;
    const int R = m->cfg.vision.image_res;
    xv_graph *g = ctx->g;
    xv_graph_reset(g);
    xv_tensor *x = xv_tensor_wrap_f32(g, (float *)pixels, XV_SHAPE(b, 3, R, R));
    xv_tensor *emb = xv_model_vision(g, m, x, NULL);
    xv_tensor *f = m->parts.itc ? xv_model_image_feat(g, m, emb) : NULL;
    xv_status st = xv_graph_status(g);
    if (st != XV_OK) return xv_error_wrap(st, "vision encoder");
    if (f && feat) memcpy(feat, f->data, sizeof(float) * (size_t)f->numel);
    if (tokens) memcpy(tokens, emb->data, sizeof(float) * (size_t)emb->numel);
    return XV_OK;
}

typedef enum { SRC_FILES, SRC_RGB, SRC_TENSOR } source_kind;

typedef struct {
    source_kind kind;
    const char *const *paths;
    const xvlm_rgb *rgb;
    const float *pixels;
} image_source;

/* Preprocess images [first, first+b) into px, in parallel; the first failure
 * (in input order) is reported. */
static xv_status preprocess_batch(const image_source *s, int first, int b, int res, float *px, int32_t *sizes) {
    const size_t per = (size_t)3 * res * res;
    if (s->kind == SRC_TENSOR) {
        memcpy(px, s->pixels + (size_t)first * per, per * (size_t)b * sizeof *px);
        for (int i = 0; i < b; i++) sizes[2 * i] = sizes[2 * i + 1] = res;
        return XV_OK;
    }
    xv_status *st = calloc((size_t)b, sizeof *st);
    char(*msg)[ERRLEN] = calloc((size_t)b, sizeof *msg);
    if (!st || !msg) {
        free(st);
        free(msg);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < b; i++) {
        int k = first + i, w = 0, h = 0;
        if (s->kind == SRC_FILES) {
            st[i] = s->paths[k] ? xv_api_preprocess_file(s->paths[k], res, px + (size_t)i * per, &w, &h)
                                : xv_error(XV_ERR_INVALID_ARG, "image path %d is NULL", k);
        } else {
            st[i] = preprocess_rgb(&s->rgb[k], res, px + (size_t)i * per);
            w = s->rgb[k].width;
            h = s->rgb[k].height;
        }
        sizes[2 * i] = w;
        sizes[2 * i + 1] = h;
        if (st[i] != XV_OK) snprintf(msg[i], ERRLEN, "%s", xvlm_last_error());
    }
    xv_status r = XV_OK;
    for (int i = 0; i < b && r == XV_OK; i++)
        if (st[i] != XV_OK) r = xv_error(st[i], "image %d: %s", first + i, msg[i]);
    free(st);
    free(msg);
    return r;
}

static xv_status store_paths(xvlm_images *im, const char *const *paths, int n) {
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += strlen(paths[i]) + 1;
    char *blob = malloc(bytes ? bytes : 1);
    XV_TRY(xv_api_images_own(im, blob));
    int64_t *off = (int64_t *)im->path_off;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(paths[i]) + 1;
        memcpy(blob + o, paths[i], l);
        off[i] = (int64_t)o;
        o += l;
    }
    im->path_blob = blob;
    im->path_blob_bytes = (int64_t)bytes;
    return XV_OK;
}

static xv_status encode(xvlm_ctx *ctx, const image_source *s, int n, const xvlm_image_params *params,
                        xvlm_images **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "encode images: out is NULL");
    *out = NULL;
    if (!ctx || n < 0 || (n > 0 && !s->paths && !s->rgb && !s->pixels))
        return xv_error(XV_ERR_INVALID_ARG, "encode images: bad arguments (n = %d)", n);
    xvlm_image_params p = params ? *params : xvlm_image_params_default();
    if (p.batch < 1) p.batch = 1;
    const xv_model *m = ctx->model->m;
    const int R = m->cfg.vision.image_res;
    xvlm_images *im;
    XV_TRY(xv_api_images_new(ctx->model, n, p.keep_tokens != 0, s->kind == SRC_FILES, &im));
    xv_status st = s->kind == SRC_FILES ? store_paths(im, s->paths, n) : XV_OK;
    int bmax = p.batch < n ? p.batch : (n > 0 ? n : 1);
    float *px = malloc(sizeof(float) * (size_t)bmax * 3 * (size_t)R * (size_t)R);
    if (!px && st == XV_OK) st = xv_error(XV_ERR_NOMEM, "out of memory for a batch of %d images", bmax);
    const size_t per_tok = (size_t)im->T * (size_t)im->C;
    for (int first = 0; st == XV_OK && first < n; first += bmax) {
        int b = n - first < bmax ? n - first : bmax;
        st = preprocess_batch(s, first, b, R, px, (int32_t *)im->sizes + 2 * (size_t)first);
        if (st == XV_OK)
            st = xv_api_vision_pass(ctx, px, b, im->feat ? (float *)im->feat + (size_t)first * (size_t)im->E : NULL,
                                    im->tokens ? (float *)im->tokens + (size_t)first * per_tok : NULL);
    }
    free(px);
    xv_graph_reset(ctx->g);
    if (st != XV_OK) {
        xvlm_images_free(im);
        return st;
    }
    *out = im;
    return XV_OK;
}

xv_status xv_api_encode_image_files(xvlm_ctx *ctx, const char *const *paths, int n, const xvlm_image_params *p,
                                    xvlm_images **out) {
    image_source s = {.kind = SRC_FILES, .paths = paths};
    return encode(ctx, &s, n, p, out);
}

xv_status xv_api_encode_images_rgb(xvlm_ctx *ctx, const xvlm_rgb *images, int n, const xvlm_image_params *p,
                                   xvlm_images **out) {
    image_source s = {.kind = SRC_RGB, .rgb = images};
    return encode(ctx, &s, n, p, out);
}

xv_status xv_api_encode_images_tensor(xvlm_ctx *ctx, const float *pixels, int n, const xvlm_image_params *p,
                                      xvlm_images **out) {
    image_source s = {.kind = SRC_TENSOR, .pixels = pixels};
    return encode(ctx, &s, n, p, out);
}
