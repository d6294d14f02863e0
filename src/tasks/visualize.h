/* Pictures of evaluation results, drawn with cairo and written as PNG:
 * - a grid of grounding predictions: each cell the image with the true box
 *   (dashed green) and the predicted one (solid magenta), the expression and
 *   the IoU under it;
 * - retrieval examples: one row per text query, the query on the left, then
 *   the top images in ranked order with their scores; the ground-truth image
 *   is framed in green.
 * Images are read from their files (JPEG/PNG) and scaled to the thumbnail
 * size; boxes are in pixels of the original image. */
#ifndef XV_TASKS_VISUALIZE_H
#define XV_TASKS_VISUALIZE_H

#include "core/error.h"

typedef struct {
    const char *image_path;
    const char *text;
    double pred[4]; /* (x, y, w, h) pixels of the original image */
    double gt[4];
    double iou;
} xv_vis_ground_item;

/* cell: thumbnail side in pixels (0: 192); columns (0: 4). */
xv_status xv_vis_grounding_grid(const char *png_path, const xv_vis_ground_item *items, int n, int columns, int cell,
                                const char *title);

#define XV_VIS_MAX_HITS 10

typedef struct {
    const char *query;
    int n_hits;                                 /* <= XV_VIS_MAX_HITS */
    const char *image_path[XV_VIS_MAX_HITS];    /* best first */
    float score[XV_VIS_MAX_HITS];
    int is_match[XV_VIS_MAX_HITS];              /* 1 = the query's ground-truth image */
} xv_vis_retrieval_row;

/* thumb: thumbnail side in pixels (0: 128). */
xv_status xv_vis_retrieval_rows(const char *png_path, const xv_vis_retrieval_row *rows, int n, int thumb,
                                const char *title);

#endif
