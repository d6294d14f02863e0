/* Result pictures at a size for a grid: GET /images/PATH?size=N. */
#ifndef XV_SERVE_THUMBNAIL_H
#define XV_SERVE_THUMBNAIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The image file `file` (JPEG or PNG, at most max_pixels, checked from its
 * header) as a JPEG whose longer side is at most `size` pixels (an image
 * already that small keeps its size). *out is malloc'd. */
xv_status xv_thumbnail_jpeg(const uint8_t *file, size_t len, const char *label, int64_t max_pixels, int size,
                            uint8_t **out, size_t *out_len);

#endif
