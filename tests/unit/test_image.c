/* Image decoding and resizing against PIL (tests/data/images, made by
 * tools/make_image_cases.py), and refusal of bad input: empty, truncated,
 * corrupt and oversized (declared 60000x60000) JPEG and PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/resize.h"
#include "io/safetensors.h"
#include "testutil.h"

static char g_data[4096];

/* ---- decoded and resized exactly as PIL ---- */

static void check_against_pil(void) {
    char path[8192];
    snprintf(path, sizeof path, "%s/expected.safetensors", g_data);
    xv_st_file *st = NULL;
    CHECK_OK(xv_st_open(path, &st));
    if (!st) return;
    int decoded = 0, resized = 0;
    const xv_st_tensor *src_ref = xv_st_find(st, "resize.src");
    xv_image src = {0};
    if (src_ref && src_ref->ndim == 3) {
        CHECK_OK(xv_image_new(&src, (int)src_ref->shape[1], (int)src_ref->shape[0], "src"));
        memcpy(src.rgb, src_ref->data, src_ref->nbytes);
    }
    for (int i = 0; i < xv_st_count(st); i++) {
        const xv_st_tensor *t = xv_st_at(st, i);
        size_t n = strlen(t->name);
        CHECK(t->dtype == XV_ST_U8 && t->ndim == 3 && t->shape[2] == 3, "%s: expected U8 [H,W,3]", t->name);
        if (n > 8 && !strcmp(t->name + n - 8, ".decoded")) {
            snprintf(path, sizeof path, "%s/%.*s", g_data, (int)(n - 8), t->name);
            xv_image im;
            xv_status s = xv_image_load(path, &im);
            CHECK(s == XV_OK, "%s: %s", path, xv_error_message());
            if (s != XV_OK) continue;
            CHECK(im.height == t->shape[0] && im.width == t->shape[1], "%s: size %dx%d", t->name, im.width, im.height);
            CHECK(im.height == t->shape[0] && im.width == t->shape[1] && !memcmp(im.rgb, t->data, t->nbytes),
                  "%s: pixels differ from PIL", t->name);
            decoded++;
            xv_image_free(&im);
        } else if (!strncmp(t->name, "resize.", 7) && strcmp(t->name, "resize.src") && src.rgb) {
            xv_image r;
            int w = (int)t->shape[1], h = (int)t->shape[0];
            CHECK_OK(xv_resize_bicubic(xv_image_view_of(&src), w, h, &r));
            int64_t diff = 0;
            for (size_t k = 0; k < t->nbytes; k++) diff += r.rgb[k] != ((const uint8_t *)t->data)[k];
            /* PIL's integer arithmetic reproduced: every value must be equal. */
            CHECK(diff == 0, "%s: %lld of %zu values differ from PIL", t->name, (long long)diff, t->nbytes);
            resized++;
            xv_image_free(&r);
        }
    }
    printf("decoded %d files and %d resizes exactly as PIL\n", decoded, resized);
    CHECK(decoded >= 30 && resized >= 14, "only %d decodes / %d resizes checked", decoded, resized);
    xv_image_free(&src);
    xv_st_close(st);
}

/* A resize of a crop (view with a stride) equals the resize of the copied crop. */
static void check_view_crop(void) {
    xv_image im, crop, a, b;
    CHECK_OK(xv_image_new(&im, 40, 30, "t"));
    for (int i = 0; i < 40 * 30 * 3; i++) im.rgb[i] = (uint8_t)(i * 37 + (i >> 3));
    CHECK_OK(xv_image_new(&crop, 17, 11, "t"));
    for (int y = 0; y < 11; y++) memcpy(xv_image_px(&crop, 0, y), xv_image_px(&im, 5, 9 + y), 17 * 3);
    xv_image_view v;
    CHECK_OK(xv_image_view_crop(&im, 5, 9, 17, 11, &v));
    CHECK_OK(xv_resize_bicubic(v, 23, 7, &a));
    CHECK_OK(xv_resize_bicubic(xv_image_view_of(&crop), 23, 7, &b));
    CHECK(!memcmp(a.rgb, b.rgb, 23 * 7 * 3), "resize of a view differs from resize of the copy");
    CHECK(xv_image_view_crop(&im, 30, 0, 11, 5, &v) == XV_ERR_INVALID_ARG, "crop past the right edge accepted");
    xv_image bad;
    CHECK(xv_resize_bicubic(xv_image_view_of(&im), 0, 5, &bad) == XV_ERR_NOMEM, "zero-width output accepted");
    xv_image_free(&a);
    xv_image_free(&b);
    xv_image_free(&crop);
    xv_image_free(&im);
}

/* ---- bad input ---- */

static uint8_t *slurp(const char *name, size_t *len) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", g_data, name);
    uint8_t *d = NULL;
    CHECK_OK(xv_fs_read_file(path, 1 << 20, &d, len));
    return d;
}

/* Decoding must fail with XV_ERR_FORMAT (or `code`) and a message naming `label`. */
static void expect_refused(const void *buf, size_t len, const char *label, xv_status code, const char *needle) {
    xv_image im = {0};
    xv_status s = xv_image_decode(buf, len, label, &im);
    const char *msg = xv_error_message();
    CHECK(s == code, "%s: status %d, expected %d (%s)", label, (int)s, (int)code, msg);
    CHECK(strstr(msg, label) != NULL, "%s: message does not name the input: %s", label, msg);
    if (needle) CHECK(strstr(msg, needle) != NULL, "%s: message lacks \"%s\": %s", label, needle, msg);
    if (s == XV_OK) xv_image_free(&im);
}

/* Every truncation of a file must be refused (never crash, never a gray-filled
 * image), except cutting only the last `tail_ok` bytes: PIL reads a PNG whose
 * IEND chunk (12 bytes) is missing, and so do we. A JPEG without its EOI is
 * refused by both. */
static void check_truncations(const char *name, size_t tail_ok) {
    size_t len;
    uint8_t *d = slurp(name, &len);
    if (!d) return;
    int refused = 0, total = 0;
    for (size_t cut = 0; cut < len; cut++) {
        xv_image im = {0};
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, d, cut);
        xv_status s = xv_image_decode(copy, cut, name, &im);
        free(copy);
        total++;
        if (s != XV_OK) {
            refused++;
            CHECK(strstr(xv_error_message(), name) != NULL, "cut %zu: message lacks the name", cut);
        } else {
            CHECK(cut + tail_ok >= len, "%s cut to %zu of %zu bytes was accepted", name, cut, len);
            xv_image_free(&im);
        }
    }
    printf("%s: %d of %d truncations refused\n", name, refused, total);
    free(d);
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Signature + IHDR (w x h, 8-bit RGB) + an empty IDAT + IEND. */
static size_t make_png_header(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t o = 0;
    memcpy(out, sig, 8);
    o = 8;
    put_be32(out + o, 13);
    memcpy(out + o + 4, "IHDR", 4);
    put_be32(out + o + 8, w);
    put_be32(out + o + 12, h);
    out[o + 16] = 8, out[o + 17] = 2, out[o + 18] = 0, out[o + 19] = 0, out[o + 20] = 0;
    put_be32(out + o + 21, crc32_png(out + o + 4, 17));
    o += 25;
    static const char *tail[] = {"IDAT", "IEND"};
    for (int i = 0; i < 2; i++) {
        put_be32(out + o, 0);
        memcpy(out + o + 4, tail[i], 4);
        put_be32(out + o + 8, crc32_png(out + o + 4, 4));
        o += 12;
    }
    return o;
}

/* A real 16x16 JPEG written by libjpeg (baseline: one SOF0 segment), then
 * its SOF dimensions patched. */
static size_t make_jpeg(uint8_t **out, unsigned w_patch, unsigned h_patch) {
    uint8_t rgb[16 * 16 * 3];
    for (int y = 0; y < 16; y++)
        for (int i = 0; i < 48; i++) rgb[y * 48 + i] = (uint8_t)(y * 16 + i);
    size_t len = 0;
    *out = NULL;
    CHECK_OK(xv_jpeg_encode(rgb, 16, 16, 75, out, &len));
    if (w_patch) {
        for (size_t i = 2; i + 9 < len; i++)
            if ((*out)[i] == 0xff && (*out)[i + 1] == 0xc0) { /* SOF0: len(2) precision(1) height(2) width(2) */
                (*out)[i + 5] = (uint8_t)(h_patch >> 8), (*out)[i + 6] = (uint8_t)h_patch;
                (*out)[i + 7] = (uint8_t)(w_patch >> 8), (*out)[i + 8] = (uint8_t)w_patch;
                break;
            }
    }
    return len;
}

static void check_bad_input(void) {
    /* zero bytes, in memory and as a file */
    expect_refused("", 0, "empty.jpg", XV_ERR_FORMAT, "0 bytes");
    char path[256];
    xv_test_tmp_path("xvlm_test_image_XXXXXX", path, sizeof path);
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) {
        close(fd);
        xv_image im;
        CHECK(xv_image_load(path, &im) == XV_ERR_FORMAT, "zero-byte file accepted");
        CHECK(strstr(xv_error_message(), path) != NULL, "zero-byte message lacks the path: %s", xv_error_message());
        /* a corrupt file on disk: the message names the path */
        FILE *f = fopen(path, "wb");
        fwrite("\xff\xd8\xff\xe0garbage", 1, 11, f);
        fclose(f);
        CHECK(xv_image_load(path, &im) == XV_ERR_FORMAT, "garbage JPEG file accepted");
        CHECK(strstr(xv_error_message(), path) != NULL, "message lacks the path: %s", xv_error_message());
        unlink(path);
    }
    CHECK(xv_image_load("/nonexistent/dir/x.png", &(xv_image){0}) == XV_ERR_IO, "missing file");
    CHECK(strstr(xv_error_message(), "/nonexistent/dir/x.png") != NULL, "missing-file message");
    expect_refused("GIF89a......", 12, "anim.gif", XV_ERR_FORMAT, "not a JPEG or PNG");

    /* declared 60000x60000: refused from the header, before any pixel memory */
    uint8_t png[64];
    size_t n = make_png_header(png, 60000, 60000);
    expect_refused(png, n, "huge.png", XV_ERR_NOMEM, "60000x60000");
    uint8_t *jpg;
    size_t jl = make_jpeg(&jpg, 60000, 60000);
    expect_refused(jpg, jl, "huge.jpg", XV_ERR_NOMEM, "60000x60000");
    free(jpg);
    /* the unpatched JPEG decodes (the generator itself is sound) */
    jl = make_jpeg(&jpg, 0, 0);
    xv_image ok;
    CHECK_OK(xv_image_decode(jpg, jl, "ok.jpg", &ok));
    xv_image_free(&ok);
    /* corrupt JPEG header: SOF precision 8 -> 7, and a broken marker after SOI */
    for (size_t i = 2; i + 4 < jl; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 4] = 7;
            break;
        }
    expect_refused(jpg, jl, "bad_precision.jpg", XV_ERR_FORMAT, "JPEG");
    jpg[2] = 0xff, jpg[3] = 0x01; /* TEM where a segment marker must be */
    expect_refused(jpg, jl, "bad_marker.jpg", XV_ERR_FORMAT, "JPEG");
    free(jpg);

    /* corrupt PNG: IHDR CRC wrong; a zero width */
    n = make_png_header(png, 10, 10);
    png[8 + 21] ^= 0x55;
    expect_refused(png, n, "bad_crc.png", XV_ERR_FORMAT, "PNG");
    n = make_png_header(png, 0, 10);
    expect_refused(png, n, "zero_width.png", XV_ERR_FORMAT, "PNG");
    /* valid header, but the IDAT is empty: no pixel data */
    n = make_png_header(png, 10, 10);
    expect_refused(png, n, "no_data.png", XV_ERR_FORMAT, "PNG");

    /* every truncation of real files */
    check_truncations("rgb8.png", 12);
    check_truncations("palette4_interlaced.png", 12);
    check_truncations("gray16.png", 12);
    check_truncations("jpeg_420.jpg", 0);
    check_truncations("jpeg_progressive.jpg", 0);
    check_truncations("jpeg_cmyk_adobe.jpg", 0);
}

int main(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    snprintf(g_data, sizeof g_data, "%s/tests/data/images", src ? src : ".");
    check_against_pil();
    check_view_crop();
    check_bad_input();
    return xv_test_finish("test_image");
}
