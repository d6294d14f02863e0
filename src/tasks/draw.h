/* Pictures of results: boxes with their texts drawn over an image (cairo),
 * written as PNG. */
#ifndef XV_TASKS_DRAW_H
#define XV_TASKS_DRAW_H

#include "data/image.h"

typedef struct {
    double x, y, w, h; /* pixels of the image */
    const char *label; /* drawn on a filled tag at the box's top-left corner (may be NULL) */
} xv_drawn_box;

/* The image with the boxes (one colour each, cycling) written to `path`. */
xv_status xv_draw_boxes_png(const xv_image *im, const xv_drawn_box *boxes, int n, const char *path);

#endif
