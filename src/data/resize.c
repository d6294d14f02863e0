/* PIL-exact bicubic resize (see resize.h for the rules being reproduced). */
#include "data/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAP_BITS 22 /* Pillow's PRECISION_BITS = 32 - 8 - 2 */
/* Below this many output values a pass runs on one thread: waking a team
 * costs more than the work. */
#define PARALLEL_MIN_VALUES (1 << 15)

xv_image_view xv_image_view_of(const xv_image *im) {
    xv_image_view v = {im->rgb, im->width, im->height, (size_t)im->width * 3};
    return v;
}

xv_status xv_image_view_crop(const xv_image *im, int x, int y, int w, int h, xv_image_view *out) {
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x > im->width - w || y > im->height - h)
        return xv_error(XV_ERR_INVALID_ARG, "crop (x %d, y %d, w %d, h %d) is not inside a %dx%d image", x, y, w, h,
                        im->width, im->height);
    out->px = xv_image_px(im, x, y);
    out->width = w;
    out->height = h;
    out->stride = (size_t)im->width * 3;
    return XV_OK;
}

/* Cubic convolution kernel, a = -0.5, support 2 (evaluated in Pillow's order). */
static double cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Taps of one pass: output i reads `count[i]` inputs from `first[i]` with
 * fixed-point weights taps[i*ksize ...]. */
typedef struct {
    int ksize;
    int *first, *count;
    int32_t *taps;
} pass_taps;

/* Leaves `p` empty, so freeing it again (a failed build, then the caller's
 * cleanup) is harmless. */
static void taps_free(pass_taps *p) {
    free(p->first);
    free(p->count);
    free(p->taps);
    *p = (pass_taps){0};
}

static xv_status taps_build(int in_size, int out_size, pass_taps *p) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    p->ksize = ksize;
    p->first = malloc(sizeof(int) * (size_t)out_size);
    p->count = malloc(sizeof(int) * (size_t)out_size);
    p->taps = calloc((size_t)out_size * (size_t)ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!p->first || !p->count || !p->taps || !w) {
        free(w);
        taps_free(p);
        return xv_error(XV_ERR_NOMEM, "resize: out of memory for %d x %d taps", out_size, ksize);
    }
    double ss = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5); /* truncation, as Pillow's (int) cast */
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = cubic((k + lo - center + 0.5) * ss);
            sum += w[k];
        }
        int32_t *t = p->taps + (size_t)i * ksize;
        for (int k = 0; k < n; k++) {
            double v = sum != 0.0 ? w[k] / sum : w[k];
            t[k] = v < 0 ? (int32_t)(-0.5 + v * (1 << TAP_BITS)) : (int32_t)(0.5 + v * (1 << TAP_BITS));
        }
        p->first[i] = lo;
        p->count[i] = n;
    }
    free(w);
    return XV_OK;
}

static inline uint8_t clip8(int32_t acc) {
    if (acc >= (int32_t)(1u << TAP_BITS << 8)) return 255;
    if (acc <= 0) return 0;
    return (uint8_t)(acc >> TAP_BITS);
}

/* Horizontal pass over `rows` rows of src starting at row y0. */
static void pass_horizontal(xv_image_view src, int y0, int rows, const pass_taps *p, xv_image *dst) {
    int out_w = dst->width;
#pragma omp parallel for schedule(static) if ((int64_t)rows * out_w * 3 >= PARALLEL_MIN_VALUES)
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src.px + (size_t)(y0 + y) * src.stride;
        uint8_t *out = xv_image_px(dst, 0, y);
        for (int x = 0; x < out_w; x++) {
            const int32_t *t = p->taps + (size_t)x * p->ksize;
            const uint8_t *s = in + (size_t)p->first[x] * 3;
            int32_t a0 = 1 << (TAP_BITS - 1), a1 = a0, a2 = a0;
            for (int k = 0; k < p->count[x]; k++) {
                a0 += s[3 * k] * t[k];
                a1 += s[3 * k + 1] * t[k];
                a2 += s[3 * k + 2] * t[k];
            }
            out[3 * x] = clip8(a0);
            out[3 * x + 1] = clip8(a1);
            out[3 * x + 2] = clip8(a2);
        }
    }
}

/* Vertical pass: each output row is a weighted sum of whole source rows,
 * accumulated in a per-thread row of int32 (unit-stride, vectorisable). */
static xv_status pass_vertical(xv_image_view src, int y_shift, const pass_taps *p, xv_image *dst) {
    int out_h = dst->height, failed = 0;
    size_t row_bytes = (size_t)dst->width * 3;
#pragma omp parallel if ((int64_t)out_h * (int64_t)row_bytes >= PARALLEL_MIN_VALUES)
    {
        int32_t *acc = malloc(sizeof(int32_t) * row_bytes);
        if (!acc) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int y = 0; y < out_h; y++) {
            if (!acc) continue;
            const int32_t *t = p->taps + (size_t)y * p->ksize;
            const uint8_t *in = src.px + (size_t)(p->first[y] - y_shift) * src.stride;
            for (size_t i = 0; i < row_bytes; i++) acc[i] = 1 << (TAP_BITS - 1);
            for (int k = 0; k < p->count[y]; k++) {
                const uint8_t *row = in + (size_t)k * src.stride;
                int32_t tk = t[k];
                for (size_t i = 0; i < row_bytes; i++) acc[i] += row[i] * tk;
            }
            uint8_t *out = xv_image_px(dst, 0, y);
            for (size_t i = 0; i < row_bytes; i++) out[i] = clip8(acc[i]);
        }
        free(acc);
    }
    if (failed) return xv_error(XV_ERR_NOMEM, "resize: out of memory for a row of %zu accumulators", row_bytes);
    return XV_OK;
}

xv_status xv_resize_bicubic(xv_image_view src, int out_w, int out_h, xv_image *out) {
    if (src.width <= 0 || src.height <= 0 || !src.px)
        return xv_error(XV_ERR_INVALID_ARG, "resize: empty source image (%dx%d)", src.width, src.height);
    XV_TRY(xv_image_new(out, out_w, out_h, "resize output"));
    int need_h = out_w != src.width, need_v = out_h != src.height;
    if (!need_h && !need_v) {
        for (int y = 0; y < out_h; y++) memcpy(xv_image_px(out, 0, y), src.px + (size_t)y * src.stride, (size_t)out_w * 3);
        return XV_OK;
    }
    pass_taps ph = {0}, pv = {0};
    xv_status s = XV_OK;
    if (need_h && (s = taps_build(src.width, out_w, &ph)) != XV_OK) goto fail;
    if (need_v && (s = taps_build(src.height, out_h, &pv)) != XV_OK) goto fail;
    if (!need_v) {
        pass_horizontal(src, 0, src.height, &ph, out);
    } else if (!need_h) {
        s = pass_vertical(src, 0, &pv, out);
    } else {
        /* Only the source rows the vertical taps read go through the first pass. */
        int y_first = pv.first[0];
        int y_last = pv.first[out_h - 1] + pv.count[out_h - 1];
        xv_image tmp;
        if ((s = xv_image_new(&tmp, out_w, y_last - y_first, "resize intermediate")) != XV_OK) goto fail;
        pass_horizontal(src, y_first, y_last - y_first, &ph, &tmp);
        s = pass_vertical(xv_image_view_of(&tmp), y_first, &pv, out);
        xv_image_free(&tmp);
    }
    if (s != XV_OK) goto fail;
    taps_free(&ph);
    taps_free(&pv);
    return XV_OK;
fail:
    taps_free(&ph);
    taps_free(&pv);
    xv_image_free(out);
    return s;
}
