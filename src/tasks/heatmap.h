/* Grad-CAM pictures: heat maps over an image (cairo, PNG), one panel per map
 * with its label under it (the expression, or one token per panel). */
#ifndef XV_TASKS_HEATMAP_H
#define XV_TASKS_HEATMAP_H

#include "data/image.h"

/* Colour of a heat value in [0, 1] (blue, cyan, yellow, red), as 0..255 RGB. */
void xv_heat_colour(double v, uint8_t rgb[3]);

/* n panels of the image with maps[i] ([height, width] at the image's own
 * size) drawn over it: each map is scaled by its own maximum (values below 0
 * count as 0) and blended at half opacity. Panels are at most 384 pixels on
 * their long side, 4 to a row. Writes a PNG to `path` (atomically). */
xv_status xv_draw_heatmaps_png(const xv_image *im, const float *const *maps, const char *const *labels, int n,
                               const char *path);

#endif
