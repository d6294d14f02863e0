/* `ground --draw` tags: inside the picture, not on top of each other when
 * there is room, and a drawing of a tiny image with long labels succeeds. */
#include <stdio.h>
#include <string.h>

#include "tasks/draw.h"
#include "testutil.h"

static bool inside(const xv_label_rect *r, int W, int H) {
    return r->x >= 0 && r->y >= 0 && r->x + r->w <= W + 1e-9 && r->y + r->h <= H + 1e-9;
}

static bool apart(const xv_label_rect *a, const xv_label_rect *b) {
    return a->x + a->w <= b->x || b->x + b->w <= a->x || a->y + a->h <= b->y || b->y + b->h <= a->y;
}

int main(void) {
    /* three boxes at the same place (three texts grounded on one object), 200x150 picture */
    xv_drawn_box boxes[3];
    xv_label_rect tags[3];
    for (int i = 0; i < 3; i++) {
        boxes[i] = (xv_drawn_box){60, 50, 80, 60, "label"};
        tags[i] = (xv_label_rect){0, 0, 70, 14};
    }
    xv_label_place(boxes, 3, 200, 150, 2, tags);
    for (int i = 0; i < 3; i++) CHECK(inside(&tags[i], 200, 150), "tag %d inside the picture", i);
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            CHECK(apart(&tags[i], &tags[j]), "tags %d (%g,%g) and %d (%g,%g) overlap", i, tags[i].x, tags[i].y, j,
                  tags[j].x, tags[j].y);
    CHECK(tags[0].y + tags[0].h <= 50, "the first tag sits above its box (y %g)", tags[0].y);

    /* a box at the top edge: its tag goes inside, not off the picture */
    xv_drawn_box top = {150, 0, 40, 30, "x"};
    xv_label_rect t = {0, 0, 90, 14};
    xv_label_place(&top, 1, 200, 150, 2, &t);
    CHECK(inside(&t, 200, 150) && t.y >= 0, "tag of a box at the top edge: (%g,%g)", t.x, t.y);

    /* a 24x16 image with two long labels draws */
    char dir[256], path[320];
    CHECK(xv_test_scratch_dir("xv_draw", dir, sizeof dir), "scratch dir");
    snprintf(path, sizeof path, "%s/small.png", dir);
    uint8_t px[24 * 16 * 3];
    memset(px, 90, sizeof px);
    xv_image im = {.width = 24, .height = 16, .rgb = px};
    xv_drawn_box two[2] = {{2, 2, 10, 8, "a very long referring expression about the left thing"},
                           {12, 4, 10, 10, "another long one"}};
    CHECK_OK(xv_draw_boxes_png(&im, two, 2, path));
    xv_test_remove_dir(dir);
    xv_test_release_font_caches();
    return xv_test_finish("test_draw_labels");
}
