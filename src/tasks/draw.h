/* Pictures of results: boxes with their texts drawn over an image (cairo),
 * written as PNG. */
#ifndef XV_TASKS_DRAW_H
#define XV_TASKS_DRAW_H

#include "data/image.h"

typedef struct {
    double x, y, w, h; /* pixels of the image */
    const char *label; /* drawn on a filled tag near the box (may be NULL) */
} xv_drawn_box;

typedef struct {
    double x, y, w, h;
} xv_label_rect;

/* Where the tags go: tags[i].w/.h hold each tag's size on entry, its place
 * on return. Each tag is tried above its box, inside its top edge, below it
 * and inside its bottom edge, always kept inside the W x H picture; the first
 * place free of the tags placed before wins, else the one overlapping least.
 * The font scales with the picture and a label too wide for it is cut with an
 * ellipsis (xv_draw_boxes_png). */
void xv_label_place(const xv_drawn_box *boxes, int n, int W, int H, double line, xv_label_rect *tags);

/* The image with the boxes (one colour each, cycling) written to `path`. */
xv_status xv_draw_boxes_png(const xv_image *im, const xv_drawn_box *boxes, int n, const char *path);

#endif
