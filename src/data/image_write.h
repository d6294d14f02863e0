/* Encoding 8-bit RGB images as baseline JPEG (libjpeg-turbo), for the data the
 * tests and benchmarks build and for tools that write images. */
#ifndef XV_DATA_IMAGE_WRITE_H
#define XV_DATA_IMAGE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

/* Encode `im` at quality 1..100 (4:2:0 chroma, libjpeg's defaults) into a
 * malloc'd buffer. */
xv_status xv_image_encode_jpeg(const xv_image *im, int quality, uint8_t **out, size_t *out_len);
/* Encode and write to `path` (replaced if it exists). */
xv_status xv_image_save_jpeg(const xv_image *im, int quality, const char *path);

#endif
