/* PNG decoding with libpng, matching PIL's PngImagePlugin + convert('RGB').
 *
 * libpng is asked for the samples as stored (no expansion, no gamma, no alpha
 * handling) and each row is converted here with PIL's rules, which differ from
 * libpng's own conversions for 16-bit gray and short palettes.
 * Errors longjmp out of libpng back to the decode call; the reader callback
 * raises a libpng error when the data ends early. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"

/* Heap context: what libpng modifies between setjmp and longjmp is reached
 * through a pointer set before setjmp (see image_jpeg.c). */
typedef struct {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t len, pos;
    char message[256];
    uint8_t *raw; /* one stored row, or the whole stored image when interlaced */
    xv_image image;
    uint8_t palette[256][3];
} png_decoder;

static void on_error(png_structp png, png_const_charp msg) {
    png_decoder *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t n) {
    png_decoder *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "truncated file (unexpected end of PNG data)");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

/* One stored row (big-endian samples, sub-byte samples packed MSB first) to RGB. */
static void row_to_rgb(const png_decoder *c, int color_type, int depth, const uint8_t *in, uint8_t *out, int width) {
    for (int x = 0; x < width; x++, out += 3) {
        switch (color_type) {
        case PNG_COLOR_TYPE_GRAY:
            if (depth == 16) {
                /* PIL opens it as mode "I"; I -> RGB clips to 0..255. */
                unsigned v = ((unsigned)in[2 * x] << 8) | in[2 * x + 1];
                out[0] = out[1] = out[2] = (uint8_t)(v > 255 ? 255 : v);
            } else if (depth == 8) {
                out[0] = out[1] = out[2] = in[x];
            } else {
                /* 1/2/4 bits scaled to 0..255 (PIL's "1", "L;2" ×85, "L;4" ×17). */
                int per_byte = 8 / depth, maxv = (1 << depth) - 1;
                int shift = 8 - depth * (x % per_byte + 1);
                int v = (in[x / per_byte] >> shift) & maxv;
                out[0] = out[1] = out[2] = (uint8_t)(v * 255 / maxv);
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            int step = depth == 16 ? 4 : 2; /* high byte of gray; alpha dropped */
            out[0] = out[1] = out[2] = in[step * x];
            break;
        }
        case PNG_COLOR_TYPE_RGB:
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            int bps = depth / 8, spp = color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
            const uint8_t *p = in + (size_t)x * spp * bps;
            for (int ch = 0; ch < 3; ch++) out[ch] = p[ch * bps]; /* high byte */
            break;
        }
        case PNG_COLOR_TYPE_PALETTE: {
            int per_byte = 8 / depth;
            int shift = 8 - depth * (x % per_byte + 1);
            int idx = (in[x / per_byte] >> shift) & ((1 << depth) - 1);
            memcpy(out, c->palette[idx], 3);
            break;
        }
        }
    }
}

static void decoder_free(png_decoder *c) {
    png_destroy_read_struct(&c->png, &c->info, NULL);
    free(c->raw);
    xv_image_free(&c->image);
    free(c);
}

xv_status xv_image_decode_png(const uint8_t *buf, size_t len, const char *label, int64_t max_pixels,
                               xv_image *out) {
    png_decoder *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    c->data = buf;
    c->len = len;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) {
        decoder_free(c);
        return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    }
    if (setjmp(png_jmpbuf(c->png))) {
        xv_status s = xv_error(XV_ERR_FORMAT, "%s: PNG: %s", label, c->message);
        decoder_free(c);
        return s;
    }
    png_set_read_fn(c->png, c, on_read);
    png_read_info(c->png, c->info);

    png_uint_32 w32, h32;
    int depth, color_type, interlace;
    png_get_IHDR(c->png, c->info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
    if (!xv_image_size_ok(w32, h32, max_pixels)) {
        xv_status s = xv_error(XV_ERR_NOMEM, "%s: PNG declares %ux%u pixels, above the limit of %lld pixels", label,
                               (unsigned)w32, (unsigned)h32, (long long)max_pixels);
        decoder_free(c);
        return s;
    }
    int w = (int)w32, h = (int)h32;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        /* PIL's palette starts as the gray ramp; PLTE overwrites its head. */
        for (int i = 0; i < 256; i++) c->palette[i][0] = c->palette[i][1] = c->palette[i][2] = (uint8_t)i;
        png_colorp pal;
        int n = 0;
        if (png_get_PLTE(c->png, c->info, &pal, &n) & PNG_INFO_PLTE) {
            for (int i = 0; i < n && i < 256; i++) {
                c->palette[i][0] = pal[i].red;
                c->palette[i][1] = pal[i].green;
                c->palette[i][2] = pal[i].blue;
            }
        }
    }
    int passes = png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    size_t rowbytes = png_get_rowbytes(c->png, c->info);
    size_t raw_rows = passes > 1 ? (size_t)h : 1; /* Adam7 needs every stored row at once */
    xv_status st = xv_image_new(&c->image, w, h, label);
    /* calloc: Adam7 passes read-modify-write packed bytes of rows not yet filled. */
    if (st == XV_OK && !(c->raw = calloc(raw_rows, rowbytes)))
        st = xv_error(XV_ERR_NOMEM, "%s: out of memory for %zu bytes of PNG rows", label, rowbytes * raw_rows);
    if (st != XV_OK) {
        decoder_free(c);
        return st;
    }
    if (passes > 1) {
        for (int p = 0; p < passes; p++)
            for (int y = 0; y < h; y++) png_read_row(c->png, c->raw + (size_t)y * rowbytes, NULL);
        for (int y = 0; y < h; y++)
            row_to_rgb(c, color_type, depth, c->raw + (size_t)y * rowbytes, xv_image_px(&c->image, 0, y), w);
    } else {
        for (int y = 0; y < h; y++) {
            png_read_row(c->png, c->raw, NULL);
            row_to_rgb(c, color_type, depth, c->raw, xv_image_px(&c->image, 0, y), w);
        }
    }
    /* No png_read_end: chunks after the image data do not change the pixels. */
    *out = c->image;
    c->image.rgb = NULL;
    decoder_free(c);
    return XV_OK;
}
