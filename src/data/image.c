/* Image buffers, loading files and the format dispatch of the decoders. */
#include "data/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"

int xv_image_size_ok(int64_t width, int64_t height, int64_t max_pixels) {
    if (max_pixels > XV_IMAGE_MAX_PIXELS) max_pixels = XV_IMAGE_MAX_PIXELS;
    return width > 0 && height > 0 && width <= max_pixels && height <= max_pixels && width * height <= max_pixels;
}

xv_status xv_image_new(xv_image *im, int width, int height, const char *label) {
    im->width = im->height = 0;
    im->rgb = NULL;
    if (!xv_image_size_ok(width, height, XV_IMAGE_MAX_PIXELS))
        return xv_error(XV_ERR_NOMEM, "%s: image size %dx%d refused (must be positive and at most %lld pixels)",
                        label, width, height, (long long)XV_IMAGE_MAX_PIXELS);
    im->rgb = malloc((size_t)width * (size_t)height * 3);
    if (!im->rgb) return xv_error(XV_ERR_NOMEM, "%s: out of memory for a %dx%d image", label, width, height);
    im->width = width;
    im->height = height;
    return XV_OK;
}

void xv_image_free(xv_image *im) {
    if (!im) return;
    free(im->rgb);
    im->rgb = NULL;
    im->width = im->height = 0;
}

xv_status xv_image_decode(const void *buf, size_t len, const char *label, xv_image *out) {
    return xv_image_decode_capped(buf, len, label, XV_IMAGE_MAX_PIXELS, out);
}

xv_status xv_image_decode_capped(const void *buf, size_t len, const char *label, int64_t max_pixels, xv_image *out) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = buf;
    if (!label) label = "<memory>";
    if (max_pixels > XV_IMAGE_MAX_PIXELS) max_pixels = XV_IMAGE_MAX_PIXELS;
    if (!b || len == 0) return xv_error(XV_ERR_FORMAT, "%s: empty image data (0 bytes)", label);
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return xv_image_decode_jpeg(b, len, label, max_pixels, out);
    if (len >= 8 && memcmp(b, png_magic, 8) == 0) return xv_image_decode_png(b, len, label, max_pixels, out);
    return xv_error(XV_ERR_FORMAT, "%s: not a JPEG or PNG file (unrecognised first bytes)", label);
}

xv_status xv_image_load(const char *path, xv_image *out) {
    uint8_t *data;
    size_t len;
    XV_TRY(xv_fs_read_file(path, XV_IMAGE_MAX_FILE_BYTES, &data, &len));
    xv_status s = xv_image_decode(data, len, path, out);
    free(data);
    return s;
}
