/* RandomAugment ops (see augment.h for the official behaviour reproduced).
 * Built with -ffp-contract=off: numpy and OpenCV's scalar code round each
 * multiply and add separately. */
#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AUG_MAGNITUDE 7
#define AUG_MAX_LEVEL 10
static const uint8_t k_fill[3] = {128, 128, 128};

const char *xv_aug_name(xv_aug_op op) {
    static const char *names[XV_AUG_COUNT] = {"Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness",
                                              "ShearX",   "ShearY",       "TranslateX", "TranslateY", "Rotate"};
    return op >= 0 && op < XV_AUG_COUNT ? names[op] : "?";
}

static void apply_tables(xv_image *im, const uint8_t table[3][256]) {
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) im->rgb[3 * i + c] = table[c][im->rgb[3 * i + c]];
}

static void histogram(const xv_image *im, int64_t hist[3][256]) {
    memset(hist, 0, sizeof(int64_t) * 3 * 256);
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) hist[c][im->rgb[3 * i + c]]++;
}

void xv_aug_autocontrast(xv_image *im) {
    int64_t hist[3][256];
    uint8_t table[3][256];
    histogram(im, hist);
    for (int c = 0; c < 3; c++) {
        int lo = 0, hi = 255;
        while (lo < 255 && !hist[c][lo]) lo++;
        while (hi > 0 && !hist[c][hi]) hi--;
        for (int i = 0; i < 256; i++) table[c][i] = (uint8_t)i;
        if (hi <= lo) continue;
        double scale = 255.0 / (hi - lo);
        /* numpy: -low on a uint8 scalar wraps to (256 - low) mod 256. */
        double offset = (double)((256 - lo) & 255) * scale;
        for (int i = 0; i < 256; i++) {
            double v = i * scale + offset;
            table[c][i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    apply_tables(im, table);
}

void xv_aug_equalize(xv_image *im) {
    int64_t hist[3][256];
    uint8_t table[3][256];
    histogram(im, hist);
    int64_t total = (int64_t)im->width * im->height;
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 256; i++) table[c][i] = (uint8_t)i;
        int last = 255;
        while (last > 0 && !hist[c][last]) last--;
        /* Sum of every non-empty bin but the last, floor-divided by 255. */
        int64_t step = (total - hist[c][last]) / 255;
        if (step == 0) continue;
        int64_t acc = step / 2;
        for (int i = 0; i < 256; i++) {
            int64_t v = acc / step;
            table[c][i] = (uint8_t)(v > 255 ? 255 : v);
            acc += hist[c][i];
        }
    }
    apply_tables(im, table);
}

void xv_aug_brightness(xv_image *im, double factor) {
    uint8_t table[3][256];
    float f = (float)factor; /* float32 array times a Python float stays float32 */
    for (int i = 0; i < 256; i++) {
        float v = (float)i * f;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        table[0][i] = table[1][i] = table[2][i] = (uint8_t)v;
    }
    apply_tables(im, table);
}

/* numpy's float32 -> uint8 astype on x86: truncate to an integer, keep the low
 * 8 bits (so -58.4 -> 198, 310.8 -> 54). */
static inline uint8_t f32_to_u8_wrap(float v) { return (uint8_t)(int32_t)v; }

/* OpenCV's default border for filter2D (BORDER_REFLECT_101: ... 2 1 | 0 1 2 ...). */
static inline int reflect101(int i, int n) {
    if (n == 1) return 0;
    if (i < 0) return -i;
    if (i >= n) return 2 * n - 2 - i;
    return i;
}

xv_status xv_aug_sharpness(xv_image *im, double factor) {
    int w = im->width, h = im->height;
    if (factor == 1.0) return XV_OK;
    xv_image out;
    XV_TRY(xv_image_new(&out, w, h, "sharpness"));
    memcpy(out.rgb, im->rgb, (size_t)w * h * 3);
    const float k_side = 1.0f / 13.0f, k_mid = 5.0f / 13.0f; /* float32 kernel /= 13 */
    float f = (float)factor;
    /* factor 0 returns the smoothed image everywhere; any other factor blends
     * the interior only (the border keeps its pixels). */
    int margin = factor == 0.0 ? 0 : 1;
#pragma omp parallel for schedule(static)
    for (int y = margin; y < h - margin; y++) {
        for (int x = margin; x < w - margin; x++) {
            for (int c = 0; c < 3; c++) {
                /* cv2.filter2D: float sum over the kernel row-major, rounded half to even. */
                float s = 0.0f;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        s += (float)xv_image_px(im, reflect101(x + dx, w), reflect101(y + dy, h))[c] *
                             (dx == 0 && dy == 0 ? k_mid : k_side);
                float r = nearbyintf(s);
                float degen = r < 0 ? 0 : r > 255 ? 255 : r;
                uint8_t *o = xv_image_px(&out, x, y) + c;
                float orig = (float)xv_image_px(im, x, y)[c];
                *o = factor == 0.0 ? (uint8_t)degen : f32_to_u8_wrap(degen + f * (orig - degen));
            }
        }
    }
    free(im->rgb);
    *im = out;
    return XV_OK;
}

/* ---- cv2.warpAffine, INTER_LINEAR, BORDER_CONSTANT ---- */

#define INTER_BITS 5
#define INTER_TAB 32
#define AB_BITS 10
#define AB_SCALE 1024
#define COEF_BITS 15

/* cvRound / saturate_cast<int>(double): nearest, ties to even. */
static inline int round_to_int(double v) {
    double r = nearbyint(v);
    if (r > 2147483647.0) return 2147483647;
    if (r < -2147483648.0) return -2147483647 - 1;
    return (int)r;
}

static inline int sat_short(int v) { return v < -32768 ? -32768 : v > 32767 ? 32767 : v; }

xv_status xv_aug_warp_affine(xv_image *im, const double m[6]) {
    int w = im->width, h = im->height;
    /* Invert the forward matrix exactly as OpenCV does. */
    double M[6] = {m[0], m[1], m[2], m[3], m[4], m[5]};
    double D = M[0] * M[4] - M[1] * M[3];
    D = D != 0 ? 1. / D : 0;
    double A11 = M[4] * D, A22 = M[0] * D;
    M[0] = A11;
    M[1] *= -D;
    M[3] *= -D;
    M[4] = A22;
    double b1 = -M[0] * M[2] - M[1] * M[5];
    double b2 = -M[3] * M[2] - M[4] * M[5];
    M[2] = b1;
    M[5] = b2;

    xv_image out;
    XV_TRY(xv_image_new(&out, w, h, "warp"));
    int *adelta = malloc(sizeof(int) * (size_t)w * 2);
    if (!adelta) {
        xv_image_free(&out);
        return xv_error(XV_ERR_NOMEM, "warp: out of memory");
    }
    int *bdelta = adelta + w;
    for (int x = 0; x < w; x++) {
        adelta[x] = round_to_int(M[0] * x * AB_SCALE);
        bdelta[x] = round_to_int(M[3] * x * AB_SCALE);
    }
    const int round_delta = AB_SCALE / INTER_TAB / 2;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y++) {
        int X0 = round_to_int((M[1] * y + M[2]) * AB_SCALE) + round_delta;
        int Y0 = round_to_int((M[4] * y + M[5]) * AB_SCALE) + round_delta;
        uint8_t *d = xv_image_px(&out, 0, y);
        for (int x = 0; x < w; x++, d += 3) {
            int X = (X0 + adelta[x]) >> (AB_BITS - INTER_BITS);
            int Y = (Y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
            int sx = sat_short(X >> INTER_BITS), sy = sat_short(Y >> INTER_BITS);
            int fx = X & (INTER_TAB - 1), fy = Y & (INTER_TAB - 1);
            if (sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0) {
                memcpy(d, k_fill, 3);
                continue;
            }
            /* Bilinear weights in 1/32768: exact products of the 1/32 fractions. */
            int wt[4] = {(INTER_TAB - fx) * (INTER_TAB - fy) * 32, fx * (INTER_TAB - fy) * 32, (INTER_TAB - fx) * fy * 32,
                         fx * fy * 32};
            for (int c = 0; c < 3; c++) {
                int acc = 0;
                for (int k = 0; k < 4; k++) {
                    int px = sx + (k & 1), py = sy + (k >> 1);
                    int v = (px >= 0 && px < w && py >= 0 && py < h) ? xv_image_px(im, px, py)[c] : k_fill[c];
                    acc += v * wt[k];
                }
                int r = (acc + (1 << (COEF_BITS - 1))) >> COEF_BITS;
                d[c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
    }
    free(adelta);
    free(im->rgb);
    *im = out;
    return XV_OK;
}

/* The official matrices are np.float32: the factor is rounded to float first. */
xv_status xv_aug_shear_x(xv_image *im, double factor) {
    const double m[6] = {1, (float)factor, 0, 0, 1, 0};
    return xv_aug_warp_affine(im, m);
}

xv_status xv_aug_shear_y(xv_image *im, double factor) {
    const double m[6] = {1, 0, 0, (float)factor, 1, 0};
    return xv_aug_warp_affine(im, m);
}

xv_status xv_aug_translate_x(xv_image *im, double offset) {
    const double m[6] = {1, 0, (float)-offset, 0, 1, 0};
    return xv_aug_warp_affine(im, m);
}

xv_status xv_aug_translate_y(xv_image *im, double offset) {
    const double m[6] = {1, 0, 0, 0, 1, (float)-offset};
    return xv_aug_warp_affine(im, m);
}

xv_status xv_aug_rotate(xv_image *im, double degrees) {
    /* cv2.getRotationMatrix2D((W/2, H/2), degrees, 1); the centre is a Point2f. */
    double cx = (float)(im->width / 2.0), cy = (float)(im->height / 2.0);
    double angle = degrees * (M_PI / 180);
    double alpha = cos(angle), beta = sin(angle);
    const double m[6] = {alpha, beta, (1 - alpha) * cx - beta * cy, -beta, alpha, beta * cx + (1 - alpha) * cy};
    return xv_aug_warp_affine(im, m);
}

xv_status xv_randaugment(xv_rng *r, xv_image *im, int n_ops) {
    if (n_ops < 1 || n_ops > XV_AUG_COUNT)
        return xv_error(XV_ERR_INVALID_ARG, "randaugment: op set of %d ops (expected 1..%d)", n_ops, XV_AUG_COUNT);
    const double level = (double)AUG_MAGNITUDE / AUG_MAX_LEVEL;
    xv_aug_op ops[2];
    for (int i = 0; i < 2; i++) ops[i] = (xv_aug_op)xv_rng_below(r, (uint64_t)n_ops); /* np.random.choice */
    for (int i = 0; i < 2; i++) {
        if (xv_rng_uniform_double(r) > 0.5) continue; /* applied with probability 0.5 */
        xv_status s = XV_OK;
        switch (ops[i]) {
        case XV_AUG_IDENTITY: break;
        case XV_AUG_AUTOCONTRAST: xv_aug_autocontrast(im); break;
        case XV_AUG_EQUALIZE: xv_aug_equalize(im); break;
        case XV_AUG_BRIGHTNESS: xv_aug_brightness(im, level * 1.8 + 0.1); break;
        case XV_AUG_SHARPNESS: s = xv_aug_sharpness(im, level * 1.8 + 0.1); break;
        case XV_AUG_SHEAR_X:
        case XV_AUG_SHEAR_Y: {
            double v = level * 0.3;
            if (xv_rng_uniform_double(r) > 0.5) v = -v;
            s = ops[i] == XV_AUG_SHEAR_X ? xv_aug_shear_x(im, v) : xv_aug_shear_y(im, v);
            break;
        }
        case XV_AUG_TRANSLATE_X:
        case XV_AUG_TRANSLATE_Y: {
            double v = level * 10.0;
            if (xv_rng_uniform_double(r) > 0.5) v = -v;
            s = ops[i] == XV_AUG_TRANSLATE_X ? xv_aug_translate_x(im, v) : xv_aug_translate_y(im, v);
            break;
        }
        case XV_AUG_ROTATE: {
            double v = level * 30;
            if (xv_rng_uniform_double(r) < 0.5) v = -v;
            s = xv_aug_rotate(im, v);
            break;
        }
        case XV_AUG_COUNT: break;
        }
        if (s != XV_OK) return s;
    }
    return XV_OK;
}
