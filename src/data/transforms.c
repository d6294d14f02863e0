/* Official X-VLM image transforms: normalisation, test resize,
 * RandomResizedCrop, flips and caption rules (see transforms.h). */
#include "data/transforms.h"

#include "data/augment.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const float xv_image_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float xv_image_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void xv_image_normalize(const xv_image *im, float *out) {
    int64_t plane = (int64_t)im->width * im->height;
    /* torchvision: img.float().div(255), then sub_(mean).div_(std), each a
     * separately rounded float32 operation. Small images stay on one thread. */
#pragma omp parallel for schedule(static) if (plane >= (1 << 14))
    for (int64_t i = 0; i < plane; i++) {
        const uint8_t *p = im->rgb + 3 * i;
        for (int c = 0; c < 3; c++) {
            float v = (float)p[c] / 255.0f;
            v = v - xv_image_mean[c];
            out[c * plane + i] = v / xv_image_std[c];
        }
    }
}

xv_status xv_transform_test(const xv_image *im, int res, float *out) {
    xv_image r;
    XV_TRY(xv_resize_bicubic(xv_image_view_of(im), res, res, &r));
    xv_image_normalize(&r, out);
    xv_image_free(&r);
    return XV_OK;
}

/* ---- RandomResizedCrop ---- */

xv_rrc_params xv_rrc_default(double scale_min) {
    xv_rrc_params p = {scale_min, 1.0, 3.0 / 4.0, 4.0 / 3.0};
    return p;
}

xv_rect xv_rrc_draw(xv_rng *r, int width, int height, const xv_rrc_params *p) {
    double area = (double)width * height;
    double log_lo = log(p->ratio_min), log_hi = log(p->ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (p->scale_min + (p->scale_max - p->scale_min) * xv_rng_uniform_double(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * xv_rng_uniform_double(r));
        /* Python's round() rounds half to even, like rint in the default mode. */
        double wd = rint(sqrt(target * aspect)), hd = rint(sqrt(target / aspect));
        if (wd > 0 && wd <= width && hd > 0 && hd <= height) {
            int w = (int)wd, h = (int)hd;
            int y = (int)xv_rng_below(r, (uint64_t)(height - h + 1));
            int x = (int)xv_rng_below(r, (uint64_t)(width - w + 1));
            return (xv_rect){x, y, w, h};
        }
    }
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < p->ratio_min) h = (int)rint(w / p->ratio_min);
    else if (in_ratio > p->ratio_max) w = (int)rint(h * p->ratio_max);
    return (xv_rect){(width - w) / 2, (height - h) / 2, w, h};
}

xv_status xv_random_resized_crop(xv_rng *r, const xv_image *im, int res, const xv_rrc_params *p, xv_image *out) {
    xv_rect c = xv_rrc_draw(r, im->width, im->height, p);
    xv_image_view v;
    XV_TRY(xv_image_view_crop(im, c.x, c.y, c.w, c.h, &v));
    return xv_resize_bicubic(v, res, res, out);
}

/* ---- training pipelines ---- */

xv_status xv_transform_train(xv_rng *r, const xv_image *im, int res, xv_train_transform kind, float *out) {
    return xv_transform_train_crop(r, im, res, kind, NULL, out);
}

xv_status xv_transform_train_crop(xv_rng *r, const xv_image *im, int res, xv_train_transform kind,
                                  const xv_rrc_params *crop, float *out) {
    xv_image t = {0};
    xv_status s = XV_OK;
    int flip = kind != XV_TRAIN_FINETUNE_NOFLIP && kind != XV_TRAIN_BOX;
    int n_ops = kind == XV_TRAIN_BOX ? XV_AUG_COLOUR_OPS : XV_AUG_ALL_OPS;
    if (kind == XV_TRAIN_PRETRAIN || kind == XV_TRAIN_FINETUNE || kind == XV_TRAIN_FINETUNE_NOFLIP) {
        xv_rrc_params p = crop ? *crop : xv_rrc_default(kind == XV_TRAIN_PRETRAIN ? 0.2 : 0.5);
        s = xv_random_resized_crop(r, im, res, &p, &t);
    } else if (kind == XV_TRAIN_RESIZE_FLIP || kind == XV_TRAIN_BOX) {
        if (kind == XV_TRAIN_BOX && (im->width != res || im->height != res))
            return xv_error(XV_ERR_SHAPE, "box transform: image is %dx%d, expected %dx%d (crop it first)", im->width,
                            im->height, res, res);
        s = xv_resize_bicubic(xv_image_view_of(im), res, res, &t); /* a copy when already res x res */
    } else {
        return xv_error(XV_ERR_INVALID_ARG, "unknown training transform %d", (int)kind);
    }
    if (s != XV_OK) return s;
    if (flip && xv_rng_coin(r)) xv_image_hflip(&t);
    s = xv_randaugment(r, &t, n_ops);
    if (s == XV_OK) xv_image_normalize(&t, out);
    xv_image_free(&t);
    return s;
}

/* ---- flips ---- */

void xv_image_hflip(xv_image *im) {
    int w = im->width;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < im->height; y++) {
        uint8_t *row = xv_image_px(im, 0, y);
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            uint8_t t[3];
            memcpy(t, row + 3 * a, 3);
            memcpy(row + 3 * a, row + 3 * b, 3);
            memcpy(row + 3 * b, t, 3);
        }
    }
}

bool xv_rng_coin(xv_rng *r) { return xv_rng_uniform(r) < 0.5f; }

bool xv_text_mentions_left_right(const char *text) {
    return text && (strstr(text, "left") || strstr(text, "right"));
}

bool xv_flip_allowed(xv_flip_policy policy, const char *const *texts, int n) {
    if (policy != XV_FLIP_CAREFUL) return true;
    for (int i = 0; i < n; i++)
        if (xv_text_mentions_left_right(texts[i])) return false;
    return true;
}

bool xv_vqa_flip_draw(xv_rng *r, const char *question, const char *const *answers, int n_answers) {
    if (!xv_rng_coin(r)) return false; /* rand() < 0.5 comes first, whatever the texts */
    return !xv_text_mentions_left_right(question) && xv_flip_allowed(XV_FLIP_CAREFUL, answers, n_answers);
}

/* Replacement for a whole word equal to left/right in one of three casings. */
static const char *swap_word(const char *w, size_t n) {
    static const char *pairs[][2] = {{"left", "right"}, {"Left", "Right"}, {"LEFT", "RIGHT"}};
    for (size_t i = 0; i < 3; i++)
        for (int s = 0; s < 2; s++)
            if (strlen(pairs[i][s]) == n && memcmp(w, pairs[i][s], n) == 0) return pairs[i][1 - s];
    return NULL;
}

char *xv_text_swap_left_right(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n + n / 4 + 2); /* "left" -> "right" grows by 1 per 4 chars at most */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (!isalpha((unsigned char)text[i])) {
            out[o++] = text[i++];
            continue;
        }
        size_t j = i;
        while (j < n && isalpha((unsigned char)text[j])) j++;
        const char *rep = swap_word(text + i, j - i);
        size_t len = rep ? strlen(rep) : j - i;
        memcpy(out + o, rep ? rep : text + i, len);
        o += len;
        i = j;
    }
    out[o] = '\0';
    return out;
}

/* ---- region crop ---- */

xv_status xv_region_crop_draw(xv_rng *r, int width, int height, xv_box a, bool allow_flip, int res,
                              xv_region_crop *out) {
    if (!(a.x >= 0 && a.y >= 0 && a.w > 0 && a.h > 0 && a.x + a.w <= width && a.y + a.h <= height))
        return xv_error(XV_ERR_INVALID_ARG, "region crop: box (%g, %g, %g, %g) is not inside the %dx%d image", a.x,
                        a.y, a.w, a.h, width, height);
    if (res <= 0) return xv_error(XV_ERR_INVALID_ARG, "region crop: resolution %d", res);
    int fx = (int)floor(a.x), fy = (int)floor(a.y);
    int cx = (int)ceil(a.x + a.w), cy = (int)ceil(a.y + a.h);
    if (cx > width) cx = width;
    if (cy > height) cy = height;
    int x0 = (int)xv_rng_below(r, (uint64_t)fx + 1);
    int y0 = (int)xv_rng_below(r, (uint64_t)fy + 1);
    int x1 = cx + (int)xv_rng_below(r, (uint64_t)(width - cx) + 1);
    int y1 = cy + (int)xv_rng_below(r, (uint64_t)(height - cy) + 1);
    out->x0 = x0;
    out->y0 = y0;
    out->w0 = x1 - x0;
    out->h0 = y1 - y0;
    out->flipped = xv_rng_coin(r) && allow_flip;
    out->res = res;
    return XV_OK;
}

xv_status xv_region_crop_apply(const xv_image *im, const xv_region_crop *c, xv_image *out) {
    xv_image_view v;
    XV_TRY(xv_image_view_crop(im, c->x0, c->y0, c->w0, c->h0, &v));
    if (!c->flipped) return xv_resize_bicubic(v, c->res, c->res, out);
    /* Flip the (smaller) crop, then resize: the order of the official code. */
    xv_image crop;
    XV_TRY(xv_image_new(&crop, c->w0, c->h0, "region crop"));
    for (int y = 0; y < c->h0; y++) memcpy(xv_image_px(&crop, 0, y), v.px + (size_t)y * v.stride, (size_t)c->w0 * 3);
    xv_image_hflip(&crop);
    xv_status s = xv_resize_bicubic(xv_image_view_of(&crop), c->res, c->res, out);
    xv_image_free(&crop);
    return s;
}

bool xv_region_crop_box(const xv_region_crop *c, xv_box in, double min_fraction, xv_box *out) {
    double x = in.x, y = in.y, w = in.w, h = in.h;
    double cx1 = c->x0 + c->w0, cy1 = c->y0 + c->h0;
    if (!(x >= c->x0 && y >= c->y0 && x + w <= cx1 && y + h <= cy1)) {
        /* Partly outside: keep the part inside the crop (pretraining rule). */
        double xx = fmax(c->x0, x), yy = fmax(c->y0, y);
        double xm = fmin(cx1, x + w), ym = fmin(cy1, y + h);
        if (!(xm > xx && ym > yy)) return false;
        if (!((xm - xx) * (ym - yy) / (w * h) > min_fraction)) return false;
        x = xx, y = yy, w = xm - xx, h = ym - yy;
    }
    /* A box fully inside is used as given, so float boxes (grounding) keep
     * their exact w and h like the official code. Same arithmetic order. */
    x = x - c->x0;
    y = y - c->y0;
    if (c->flipped) x = (c->w0 - x) - w;
    out->x = (double)c->res / c->w0 * x;
    out->w = (double)c->res / c->w0 * w;
    out->y = (double)c->res / c->h0 * y;
    out->h = (double)c->res / c->h0 * h;
    return true;
}

void xv_box_target(const xv_box *b, int res, float target[4]) {
    double cx = b->x + 1.0 / 2 * b->w, cy = b->y + 1.0 / 2 * b->h;
    target[0] = (float)(cx / res);
    target[1] = (float)(cy / res);
    target[2] = (float)(b->w / res);
    target[3] = (float)(b->h / res);
}
