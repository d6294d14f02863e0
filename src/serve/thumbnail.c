/* Downscaled JPEG copies of result pictures (thumbnail.h). */
#include "thumbnail.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/resize.h"

xv_status xv_thumbnail_jpeg(const uint8_t *file, size_t len, const char *label, int64_t max_pixels, int size,
                            uint8_t **out, size_t *out_len) {
    xv_image im = {0}, small = {0};
    XV_TRY(xv_image_decode_capped(file, len, label, max_pixels, &im));
    const int longer = im.width > im.height ? im.width : im.height;
    xv_status st = XV_OK;
    const xv_image *shown = &im;
    if (longer > size) { /* keep the aspect ratio; each side at least one pixel */
        int w = (int)((int64_t)im.width * size / longer), h = (int)((int64_t)im.height * size / longer);
        st = xv_resize_bicubic(xv_image_view_of(&im), w > 0 ? w : 1, h > 0 ? h : 1, &small);
        shown = &small;
    }
    if (st == XV_OK) st = xv_jpeg_encode(shown->rgb, shown->width, shown->height, 85, out, out_len);
    xv_image_free(&small);
    xv_image_free(&im);
    return st;
}
