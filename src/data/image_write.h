/* Encoding 8-bit RGB images to JPEG files (libjpeg-turbo). */
#ifndef XV_DATA_IMAGE_WRITE_H
#define XV_DATA_IMAGE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Baseline JPEG of rgb[height·width·3] with full-resolution chroma (4:4:4:
 * small coloured shapes keep their colour up to the edge) and the exact
 * integer DCT, so the bytes are the same on every machine with the same
 * libjpeg. quality 1..100. *out is malloc'd; free it. */
xv_status xv_jpeg_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *len);

/* Encode and write to `path` (through a temporary file renamed into place,
 * without fsync: images are bulk outputs, see XV_FS_NO_FSYNC in core/fs.h). */
xv_status xv_jpeg_write(const char *path, const uint8_t *rgb, int width, int height, int quality);

#endif
