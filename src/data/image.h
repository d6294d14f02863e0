/* 8-bit RGB images and their decoding from JPEG and PNG.
 *
 * Decoding reproduces PIL's Image.open(f).convert('RGB') (Pillow 9.4, the
 * version the official fixtures were made with), because the official X-VLM
 * pipeline reads every image that way:
 * - JPEG (libjpeg-turbo, default IDCT and fancy upsampling, as PIL uses it):
 *   grayscale is replicated; CMYK and YCCK are decoded to CMYK, inverted as
 *   PIL always does ("Adobe polarity", whatever the markers say), then mapped
 *   with PIL's cmyk2rgb (see image_jpeg.c).
 * - PNG (libpng, no colour transforms): alpha is dropped, never composited;
 *   tRNS is ignored; palette indices past the PLTE map to the gray ramp
 *   (i,i,i) like PIL's default palette; gray of 1/2/4 bits is scaled to 0..255;
 *   16-bit RGB(A) and gray+alpha keep the high byte; 16-bit gray becomes
 *   PIL's mode "I" whose RGB conversion clips the value to 0..255.
 *
 * Hostile input: the declared size is checked against XV_IMAGE_MAX_PIXELS
 * before any pixel memory is allocated; truncated, corrupt and empty inputs
 * fail with an XV_ERR_FORMAT naming the file. Decoders never exit. */
#ifndef XV_DATA_IMAGE_H
#define XV_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* 2^27 = 134,217,728 pixels (128 Mpx, 384 MiB as RGB): above any photo in the
 * official data sets (PIL's own bomb limit is 89.5 Mpx), below what would
 * exhaust a 2-core development machine. */
#define XV_IMAGE_MAX_PIXELS (INT64_C(1) << 27)
/* Encoded files larger than this are refused before reading them. */
#define XV_IMAGE_MAX_FILE_BYTES (INT64_C(1) << 30)

typedef struct {
    int width, height;
    uint8_t *rgb; /* height rows of width RGB triplets, no padding; malloc-owned */
} xv_image;

/* Allocate an uninitialised width x height image (refuses sizes <= 0 or above
 * XV_IMAGE_MAX_PIXELS). `label` names the image in the error message. */
xv_status xv_image_new(xv_image *im, int width, int height, const char *label);
void xv_image_free(xv_image *im);
static inline uint8_t *xv_image_px(const xv_image *im, int x, int y) {
    return im->rgb + ((size_t)y * (size_t)im->width + (size_t)x) * 3;
}

/* Decode a JPEG or PNG held in memory (format from the magic bytes). `label`
 * (a file name) prefixes every error message. `out` is written only on success. */
xv_status xv_image_decode(const void *buf, size_t len, const char *label, xv_image *out);
/* Same with a lower pixel cap (a data loader's budget, a fuzzer's). */
xv_status xv_image_decode_capped(const void *buf, size_t len, const char *label, int64_t max_pixels, xv_image *out);
/* Read and decode a file. */
xv_status xv_image_load(const char *path, xv_image *out);

/* Format-specific decoders used by xv_image_decode_capped. */
xv_status xv_image_decode_jpeg(const uint8_t *buf, size_t len, const char *label, int64_t max_pixels, xv_image *out);
xv_status xv_image_decode_png(const uint8_t *buf, size_t len, const char *label, int64_t max_pixels, xv_image *out);

/* True if a width x height image is positive and has at most max_pixels
 * (itself at most XV_IMAGE_MAX_PIXELS). */
int xv_image_size_ok(int64_t width, int64_t height, int64_t max_pixels);

#endif
