/* PIL-exact bicubic resize of 8-bit RGB images.
 *
 * Reproduces Pillow 9.4's Image.resize(size, BICUBIC) (box = whole image, no
 * reducing_gap), which is what torchvision's Resize / RandomResizedCrop call on
 * PIL images in the official pipeline:
 * - separable cubic convolution with a = -0.5;
 * - on reduction the filter is stretched by the scale factor (support 2·scale,
 *   i.e. antialiasing), each output's taps are normalised to sum to 1;
 * - taps are converted to fixed point with 22 fraction bits (round half away
 *   from zero); each pass sums u8·tap in 32-bit integers, adds 2^21, shifts
 *   and clips to 0..255, so the horizontal pass is rounded to u8 before the
 *   vertical pass;
 * - horizontal pass first (only on the source rows the vertical pass reads),
 *   then vertical; a pass whose size does not change is skipped.
 * Built with -ffp-contract=off (CMakeLists.txt): the tap computation must
 * round like Pillow's separate multiplies and adds. */
#ifndef XV_DATA_RESIZE_H
#define XV_DATA_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

/* A read-only rectangle of an RGB image: crops without copying. */
typedef struct {
    const uint8_t *px; /* top-left pixel */
    int width, height;
    size_t stride; /* bytes from one row to the next */
} xv_image_view;

xv_image_view xv_image_view_of(const xv_image *im);
/* The rectangle (x, y, w, h) of im; fails unless it lies inside im and is non-empty. */
xv_status xv_image_view_crop(const xv_image *im, int x, int y, int w, int h, xv_image_view *out);

/* Resize src to out_w x out_h into a new image `out` (any sizes, up or down). */
xv_status xv_resize_bicubic(xv_image_view src, int out_w, int out_h, xv_image *out);

#endif
