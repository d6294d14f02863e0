/* Training and test transforms: normalisation, RandomResizedCrop, flips and the
 * caption rules, the region crop (boxes follow the pixels), RandomAugment ops
 * against the official numpy/OpenCV code (tests/data/augment, made by
 * tools/make_augment_cases.py), and determinism for a fixed seed. */
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "testutil.h"

static void fill_pattern(xv_image *im, uint32_t seed) {
    for (size_t i = 0; i < (size_t)im->width * im->height * 3; i++)
        im->rgb[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

static void check_normalize(void) {
    xv_image im;
    CHECK_OK(xv_image_new(&im, 2, 1, "n"));
    const uint8_t px[6] = {0, 128, 255, 1, 2, 3};
    memcpy(im.rgb, px, 6);
    float out[6];
    xv_image_normalize(&im, out);
    /* layout [3,H,W]; values from the definition in double, float32 rounding
     * of three operations leaves < 1e-6 relative difference */
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 2; x++) {
            double ref = ((double)px[3 * x + c] / 255.0 - xv_image_mean[c]) / xv_image_std[c];
            CHECK(fabs(out[c * 2 + x] - ref) <= 1e-6 * (1 + fabs(ref)), "normalize c%d x%d: %g vs %g", c, x,
                  out[c * 2 + x], ref);
        }
    CHECK(fabsf(out[0] - (-1.7922625f)) < 1e-6f, "u8 0 red -> %g", out[0]);
    xv_image_free(&im);
}

static void check_rrc(void) {
    xv_rrc_params p = xv_rrc_default(0.2);
    int fallbacks = 0;
    for (uint64_t seed = 0; seed < 300; seed++) {
        xv_rng r;
        xv_rng_seed(&r, seed);
        xv_rect c = xv_rrc_draw(&r, 300, 200, &p);
        CHECK(c.x >= 0 && c.y >= 0 && c.w > 0 && c.h > 0 && c.x + c.w <= 300 && c.y + c.h <= 200,
              "seed %llu: rect (%d,%d,%d,%d) outside", (unsigned long long)seed, c.x, c.y, c.w, c.h);
        double area = (double)c.w * c.h / (300.0 * 200.0), ratio = (double)c.w / c.h;
        /* Rounding w and h to integers moves area and ratio by under a pixel row/column. */
        if (c.w == 300 && c.h == 200) fallbacks++;
        else {
            CHECK(area >= 0.2 - 0.02 && area <= 1.0 + 1e-9, "seed %llu: area fraction %g", (unsigned long long)seed, area);
            CHECK(ratio >= 0.75 * 0.95 && ratio <= 4.0 / 3.0 * 1.05, "seed %llu: ratio %g", (unsigned long long)seed, ratio);
        }
    }
    CHECK(fallbacks < 30, "%d of 300 draws fell back to the whole image", fallbacks);
    /* Fallback rule: no try can fit a 1000x10 image -> centred crop of ratio 4/3. */
    xv_rng r;
    xv_rng_seed(&r, 1);
    xv_rect c = xv_rrc_draw(&r, 1000, 10, &p);
    CHECK(c.x == 493 && c.y == 0 && c.w == 13 && c.h == 10, "wide fallback (%d,%d,%d,%d)", c.x, c.y, c.w, c.h);
    c = xv_rrc_draw(&r, 10, 1000, &p);
    CHECK(c.x == 0 && c.y == 493 && c.w == 10 && c.h == 13, "tall fallback (%d,%d,%d,%d)", c.x, c.y, c.w, c.h);

    /* The crop drawn is the crop resized; same seed, same output. */
    xv_image im, a, b, manual;
    CHECK_OK(xv_image_new(&im, 120, 90, "rrc"));
    fill_pattern(&im, 3);
    xv_rng r1, r2, r3;
    xv_rng_seed(&r1, 42), xv_rng_seed(&r2, 42), xv_rng_seed(&r3, 42);
    CHECK_OK(xv_random_resized_crop(&r1, &im, 64, &p, &a));
    CHECK_OK(xv_random_resized_crop(&r2, &im, 64, &p, &b));
    CHECK(!memcmp(a.rgb, b.rgb, 64 * 64 * 3), "same seed, different RandomResizedCrop");
    c = xv_rrc_draw(&r3, 120, 90, &p);
    xv_image_view v;
    CHECK_OK(xv_image_view_crop(&im, c.x, c.y, c.w, c.h, &v));
    CHECK_OK(xv_resize_bicubic(v, 64, 64, &manual));
    CHECK(!memcmp(a.rgb, manual.rgb, 64 * 64 * 3), "RandomResizedCrop is not crop + bicubic resize");
    xv_image_free(&a), xv_image_free(&b), xv_image_free(&manual), xv_image_free(&im);
}

static void check_flip_and_captions(void) {
    xv_image im, orig;
    CHECK_OK(xv_image_new(&im, 7, 3, "f"));
    fill_pattern(&im, 9);
    CHECK_OK(xv_image_new(&orig, 7, 3, "f"));
    memcpy(orig.rgb, im.rgb, 7 * 3 * 3);
    xv_image_hflip(&im);
    int ok = 1;
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 7; x++) ok &= !memcmp(xv_image_px(&im, x, y), xv_image_px(&orig, 6 - x, y), 3);
    CHECK(ok, "hflip does not mirror");
    xv_image_hflip(&im);
    CHECK(!memcmp(im.rgb, orig.rgb, 7 * 3 * 3), "hflip twice is not the identity");
    xv_image_free(&im), xv_image_free(&orig);

    /* official careful_hflip: substring test, case-sensitive as in Python */
    CHECK(xv_text_mentions_left_right("the man on the left"), "left");
    CHECK(xv_text_mentions_left_right("a bright kitchen"), "'bright' contains 'right'");
    CHECK(!xv_text_mentions_left_right("a dog on the grass"), "no left/right");
    const char *texts[] = {"a cat", "cat in bright light"};
    CHECK(!xv_flip_allowed(XV_FLIP_CAREFUL, texts, 2), "careful flip allowed with 'bright'");
    CHECK(xv_flip_allowed(XV_FLIP_CAREFUL, texts, 1), "careful flip refused without left/right");
    CHECK(xv_flip_allowed(XV_FLIP_ALWAYS_ALLOWED, texts, 2), "plain flip refused");
    CHECK(xv_flip_allowed(XV_FLIP_SWAP_WORDS, texts, 2), "swap policy refused");

    /* the word swap (non-official option): whole words only */
    char *s = xv_text_swap_left_right("the left dog, right of the leftover bright cat. Left/RIGHT");
    CHECK(s && !strcmp(s, "the right dog, left of the leftover bright cat. Right/LEFT"), "swap gave '%s'", s);
    free(s);
    s = xv_text_swap_left_right("left left left");
    CHECK(s && !strcmp(s, "right right right"), "swap gave '%s'", s);
    free(s);
}

/* Paint box A in the red channel and box B in the green channel, crop/flip/
 * resize, map the boxes, then check that the pixels follow: inside each mapped
 * box (shrunk by the filter's reach) the channel is bright, outside it
 * (grown by the reach) dark. */
static int check_box_pixels(const xv_image *out, int ch, const xv_box *b, double reach_x, double reach_y) {
    int bad = 0;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            double cx = x + 0.5, cy = y + 0.5;
            int v = xv_image_px(out, x, y)[ch];
            int inside = cx > b->x + reach_x && cx < b->x + b->w - reach_x && cy > b->y + reach_y &&
                         cy < b->y + b->h - reach_y;
            int outside = cx < b->x - reach_x || cx > b->x + b->w + reach_x || cy < b->y - reach_y ||
                          cy > b->y + b->h + reach_y;
            if ((inside && v < 200) || (outside && v > 55)) bad++;
        }
    return bad;
}

/* VQA's careful flip: a coin per sample whatever the texts; heads flips
 * unless the question or an answer holds "left"/"right" (as substrings). */
static void check_vqa_flip(void) {
    const char *plain[2] = {"red", "blue"}, *sided[2] = {"red", "on the right"};
    xv_rng a, b, c;
    xv_rng_seed(&a, 11);
    b = c = a;
    int heads = 0, flips_q = 0, flips_a = 0, flips_bright = 0;
    for (int i = 0; i < 2000; i++) {
        heads += xv_vqa_flip_draw(&a, "what colour is the star?", plain, 2);
        flips_q += xv_vqa_flip_draw(&b, "what is left of the star?", plain, 2);
        flips_a += xv_vqa_flip_draw(&c, "where is the star?", sided, 2);
        flips_bright += xv_vqa_flip_draw(&c, "is the star bright?", plain, 1);
    }
    CHECK(heads > 900 && heads < 1100, "a neutral question flips about half the time: %d of 2000", heads);
    CHECK(flips_q == 0, "'left' in the question: never flipped (%d)", flips_q);
    CHECK(flips_a == 0, "'right' in an answer: never flipped (%d)", flips_a);
    CHECK(flips_bright == 0, "'bright' holds 'right': never flipped, as the official substring test (%d)", flips_bright);
    CHECK(a.counter == b.counter, "the coin is drawn whether or not the texts allow the flip");
    int flips_upper = 0;
    for (int i = 0; i < 2000; i++) flips_upper += xv_vqa_flip_draw(&b, "Is it on the LEFT or the Right?", plain, 2);
    CHECK(flips_upper > 900 && flips_upper < 1100, "case-sensitive as the official 'left' in s: %d of 2000",
          flips_upper);
}

static void check_region_crop(void) {
    const int W = 240, H = 180, res = 96;
    const xv_box A = {70, 40, 50, 60}, B = {150, 100, 80, 70};
    xv_image im;
    CHECK_OK(xv_image_new(&im, W, H, "region"));
    memset(im.rgb, 0, (size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (x >= A.x && x < A.x + A.w && y >= A.y && y < A.y + A.h) xv_image_px(&im, x, y)[0] = 255;
            if (x >= B.x && x < B.x + B.w && y >= B.y && y < B.y + B.h) xv_image_px(&im, x, y)[1] = 255;
        }
    int flips = 0, kept_b = 0, dropped_b = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        xv_rng r;
        xv_rng_seed(&r, seed);
        xv_region_crop c;
        CHECK_OK(xv_region_crop_draw(&r, W, H, A, true, res, &c));
        CHECK(c.x0 <= A.x && c.y0 <= A.y && c.x0 + c.w0 >= A.x + A.w && c.y0 + c.h0 >= A.y + A.h,
              "seed %llu: crop does not contain the anchor", (unsigned long long)seed);
        flips += c.flipped;
        xv_image out;
        CHECK_OK(xv_region_crop_apply(&im, &c, &out));
        /* bicubic reach: 2 source pixels, i.e. 2·max(1, res/size) output pixels */
        double rx = 2.0 * fmax(1.0, (double)res / c.w0) + 0.5, ry = 2.0 * fmax(1.0, (double)res / c.h0) + 0.5;
        xv_box a, b;
        CHECK(xv_region_crop_box(&c, A, 0.5, &a), "anchor dropped");
        CHECK(a.x >= 0 && a.y >= 0 && a.x + a.w <= res + 1e-9 && a.y + a.h <= res + 1e-9, "anchor out of image");
        int bad = check_box_pixels(&out, 0, &a, rx, ry);
        CHECK(bad == 0, "seed %llu: %d pixels disagree with the mapped anchor box", (unsigned long long)seed, bad);
        /* box B may lie partly outside: kept iff more than half of it is inside */
        double ix = fmin(c.x0 + c.w0, B.x + B.w) - fmax(c.x0, B.x), iy = fmin(c.y0 + c.h0, B.y + B.h) - fmax(c.y0, B.y);
        double frac = ix > 0 && iy > 0 ? ix * iy / (B.w * B.h) : 0;
        bool kept = xv_region_crop_box(&c, B, 0.5, &b);
        CHECK(kept == (frac > 0.5), "seed %llu: B kept=%d with %.3f inside", (unsigned long long)seed, kept, frac);
        if (kept) {
            kept_b++;
            bad = check_box_pixels(&out, 1, &b, rx, ry);
            CHECK(bad == 0, "seed %llu: %d pixels disagree with mapped box B", (unsigned long long)seed, bad);
        } else {
            dropped_b++;
        }
        float t[4];
        xv_box_target(&a, res, t);
        CHECK(t[0] > 0 && t[0] < 1 && t[1] > 0 && t[1] < 1 && t[2] > 0 && t[2] <= 1 && t[3] > 0 && t[3] <= 1,
              "target (%g,%g,%g,%g)", t[0], t[1], t[2], t[3]);
        xv_image_free(&out);
    }
    CHECK(flips > 5 && flips < 35, "%d flips in 40 draws", flips);
    CHECK(kept_b > 0 && dropped_b > 0, "box B kept %d, dropped %d: both cases should occur", kept_b, dropped_b);

    /* careful_hflip: the coin is still drawn, the flip never happens */
    for (uint64_t seed = 0; seed < 20; seed++) {
        xv_rng r1, r2;
        xv_rng_seed(&r1, seed), xv_rng_seed(&r2, seed);
        xv_region_crop c1, c2;
        CHECK_OK(xv_region_crop_draw(&r1, W, H, A, false, res, &c1));
        CHECK_OK(xv_region_crop_draw(&r2, W, H, A, true, res, &c2));
        CHECK(!c1.flipped && c1.x0 == c2.x0 && c1.w0 == c2.w0 && r1.counter == r2.counter, "careful draw differs");
    }
    /* the mapped box of a float box fully inside keeps exact w (grounding) */
    xv_region_crop c = {10, 20, 100, 50, true, 384};
    xv_box g = {12.3, 25.7, 40.1, 10.9}, m;
    CHECK(xv_region_crop_box(&c, g, 0.5, &m), "inside box dropped");
    CHECK(m.w == 384.0 / 100 * 40.1 && m.x == 384.0 / 100 * ((100 - (12.3 - 10)) - 40.1), "grounding arithmetic");
    /* an anchor outside the image is refused */
    xv_rng r;
    xv_rng_seed(&r, 0);
    CHECK(xv_region_crop_draw(&r, W, H, (xv_box){200, 10, 50, 10}, true, res, &c) == XV_ERR_INVALID_ARG,
          "anchor past the right edge accepted");
    xv_image_free(&im);
}

static void check_augment_ops(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/augment/expected.safetensors", src ? src : ".");
    xv_st_file *st = NULL;
    CHECK_OK(xv_st_open(path, &st));
    if (!st) return;
    const double enhance = 0.7 * 1.8 + 0.1, shear = 0.7 * 0.3, translate = 0.7 * 10.0, rotate = 0.7 * 30;
    int compared = 0;
    for (int i = 0; i < xv_st_count(st); i++) {
        const xv_st_tensor *t = xv_st_at(st, i);
        if (!strncmp(t->name, "src.", 4)) continue;
        char img[64], op[64], sign[16] = "";
        if (sscanf(t->name, "%63[^.].%63[^.].%15s", img, op, sign) < 2) continue;
        char key[128];
        snprintf(key, sizeof key, "src.%s", img);
        const xv_st_tensor *s = xv_st_find(st, key);
        CHECK(s != NULL, "%s missing", key);
        if (!s) continue;
        xv_image im;
        CHECK_OK(xv_image_new(&im, (int)s->shape[1], (int)s->shape[0], key));
        memcpy(im.rgb, s->data, s->nbytes);
        double sg = !strcmp(sign, "neg") ? -1 : 1;
        xv_status rc = XV_OK;
        if (!strcmp(op, "AutoContrast")) xv_aug_autocontrast(&im);
        else if (!strcmp(op, "Equalize")) xv_aug_equalize(&im);
        else if (!strcmp(op, "Brightness")) xv_aug_brightness(&im, enhance);
        else if (!strcmp(op, "Sharpness")) rc = xv_aug_sharpness(&im, enhance);
        else if (!strcmp(op, "ShearX")) rc = xv_aug_shear_x(&im, sg * shear);
        else if (!strcmp(op, "ShearY")) rc = xv_aug_shear_y(&im, sg * shear);
        else if (!strcmp(op, "TranslateX")) rc = xv_aug_translate_x(&im, sg * translate);
        else if (!strcmp(op, "TranslateY")) rc = xv_aug_translate_y(&im, sg * translate);
        else if (!strcmp(op, "Rotate")) rc = xv_aug_rotate(&im, sg * rotate);
        else CHECK(0, "unknown op %s", op);
        CHECK_OK(rc);
        int64_t diff = 0, maxd = 0;
        for (size_t k = 0; k < t->nbytes; k++) {
            int64_t d = llabs((int64_t)im.rgb[k] - ((const uint8_t *)t->data)[k]);
            diff += d != 0;
            if (d > maxd) maxd = d;
        }
        printf("  %-24s %lld of %zu values differ from the official op (max %lld)\n", t->name, (long long)diff,
               t->nbytes, (long long)maxd);
        /* Integer/fixed-point ops reproduced operation by operation: exact. */
        CHECK(diff == 0, "%s: %lld values differ", t->name, (long long)diff);
        compared++;
        xv_image_free(&im);
    }
    CHECK(compared >= 20, "only %d augment cases", compared);
    xv_st_close(st);
}

static void check_randaugment_determinism(void) {
    xv_image base;
    CHECK_OK(xv_image_new(&base, 48, 40, "ra"));
    fill_pattern(&base, 5);
    int changed = 0;
    for (uint64_t seed = 0; seed < 30; seed++) {
        xv_image a, b;
        CHECK_OK(xv_image_new(&a, 48, 40, "ra"));
        CHECK_OK(xv_image_new(&b, 48, 40, "ra"));
        memcpy(a.rgb, base.rgb, 48 * 40 * 3), memcpy(b.rgb, base.rgb, 48 * 40 * 3);
        xv_rng r1, r2;
        xv_rng_seed(&r1, seed), xv_rng_seed(&r2, seed);
        CHECK_OK(xv_randaugment(&r1, &a, XV_AUG_ALL_OPS));
        CHECK_OK(xv_randaugment(&r2, &b, XV_AUG_ALL_OPS));
        CHECK(!memcmp(a.rgb, b.rgb, 48 * 40 * 3), "seed %llu: RandomAugment not deterministic", (unsigned long long)seed);
        changed += memcmp(a.rgb, base.rgb, 48 * 40 * 3) != 0;
        xv_image_free(&a), xv_image_free(&b);
    }
    /* each of the two ops is applied with p 0.5 and most ops change pixels */
    CHECK(changed >= 10 && changed <= 29, "%d of 30 augmented images changed", changed);
    xv_rng r;
    xv_rng_seed(&r, 0);
    CHECK(xv_randaugment(&r, &base, 0) == XV_ERR_INVALID_ARG, "empty op set accepted");
    xv_image_free(&base);
}

/* The pipeline is the composition of its parts, drawn in the same order. */
static void check_train_pipeline(void) {
    xv_image im;
    CHECK_OK(xv_image_new(&im, 90, 70, "p"));
    fill_pattern(&im, 11);
    float *a = malloc(sizeof(float) * 3 * 48 * 48), *b = malloc(sizeof(float) * 3 * 48 * 48);
    int flips = 0;
    for (uint64_t seed = 0; seed < 12; seed++) {
        xv_rng r1, r2;
        xv_rng_seed(&r1, seed), xv_rng_seed(&r2, seed);
        CHECK_OK(xv_transform_train(&r1, &im, 48, XV_TRAIN_PRETRAIN, a));
        xv_rrc_params p = xv_rrc_default(0.2);
        xv_image t;
        CHECK_OK(xv_random_resized_crop(&r2, &im, 48, &p, &t));
        if (xv_rng_coin(&r2)) {
            xv_image_hflip(&t);
            flips++;
        }
        CHECK_OK(xv_randaugment(&r2, &t, XV_AUG_ALL_OPS));
        xv_image_normalize(&t, b);
        CHECK(!memcmp(a, b, sizeof(float) * 3 * 48 * 48) && r1.counter == r2.counter,
              "seed %llu: pipeline differs from its parts", (unsigned long long)seed);
        xv_image_free(&t);
    }
    CHECK(flips > 0 && flips < 12, "%d flips in 12", flips);
    xv_rng r;
    xv_rng_seed(&r, 3);
    CHECK(xv_transform_train(&r, &im, 48, XV_TRAIN_BOX, a) == XV_ERR_SHAPE, "box transform on an uncropped image");
    CHECK_OK(xv_transform_train(&r, &im, 48, XV_TRAIN_RESIZE_FLIP, a));
    CHECK_OK(xv_transform_train(&r, &im, 48, XV_TRAIN_FINETUNE_NOFLIP, a));
    free(a), free(b);
    xv_image_free(&im);
}

int main(void) {
    check_normalize();
    check_rrc();
    check_flip_and_captions();
    check_region_crop();
    check_augment_ops();
    check_randaugment_determinism();
    check_train_pipeline();
    check_vqa_flip();
    return xv_test_finish("test_transforms");
}
