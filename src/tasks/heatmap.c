#include "tasks/heatmap.h"

#include <cairo.h>
#include <math.h>
#include <stdlib.h>

#include "data/png_write.h"

#define PANEL_MAX 384.0
#define PANEL_COLUMNS 4
#define LABEL_STRIP 22.0
#define GAP 6.0

void xv_heat_colour(double v, uint8_t rgb[3]) {
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    /* piecewise linear through blue (0), cyan (1/3), yellow (2/3), red (1) */
    static const double stops[4][3] = {{0, 0, 1}, {0, 1, 1}, {1, 1, 0}, {1, 0, 0}};
    double x = v * 3;
    int k = x >= 3 ? 2 : (int)x;
    double t = x - k;
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lround(255 * (stops[k][c] * (1 - t) + stops[k + 1][c] * t));
}

/* One map over the image: each pixel halfway between the image's colour and
 * the map's heat colour (the map scaled by its peak). */
typedef struct {
    const float *map;
    int width;
    float peak;
} blend_map;

static void blend_pixel(void *user, int x, int y, uint8_t rgb[3]) {
    const blend_map *b = user;
    uint8_t h[3];
    xv_heat_colour(b->peak > 0 ? b->map[(int64_t)y * b->width + x] / b->peak : 0, h);
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)((rgb[c] + h[c]) / 2);
}

/* The image blended with one map, as a cairo surface of the image's size. */
static cairo_surface_t *blend(const xv_image *im, const float *map, const char *label) {
    blend_map b = {.map = map, .width = im->width};
    const int64_t npx = (int64_t)im->width * im->height;
    for (int64_t i = 0; i < npx; i++) b.peak = map[i] > b.peak ? map[i] : b.peak;
    return xv_surface_from_image_mapped(im, label, blend_pixel, &b);
}

xv_status xv_draw_heatmaps_png(const xv_image *im, const float *const *maps, const char *const *labels, int n,
                               const char *path) {
    if (n < 1) return xv_error(XV_ERR_INVALID_ARG, "%s: no heat map to draw", path);
    const double scale = fmin(1.0, PANEL_MAX / (im->width > im->height ? im->width : im->height));
    const double pw = ceil(im->width * scale), ph = ceil(im->height * scale);
    const int cols = n < PANEL_COLUMNS ? n : PANEL_COLUMNS, rows = (n + cols - 1) / cols;
    const double cw = fmax(pw, 96) + GAP, ch = ph + LABEL_STRIP + GAP;
    cairo_surface_t *canvas = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(cols * cw + GAP), (int)(rows * ch + GAP));
    if (cairo_surface_status(canvas) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(canvas);
        return xv_error(XV_ERR_NOMEM, "%s: cannot create a drawing surface for %d panels", path, n);
    }
    cairo_t *cr = cairo_create(canvas);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 13);
    xv_status st = XV_OK;
    for (int i = 0; i < n && st == XV_OK; i++) {
        const double x0 = GAP + (i % cols) * cw, y0 = GAP + (i / cols) * ch;
        cairo_surface_t *panel = blend(im, maps[i], path);
        if (!panel) {
            st = xv_error(XV_ERR_NOMEM, "%s: cannot create a %dx%d panel", path, im->width, im->height);
        } else {
            cairo_save(cr);
            cairo_translate(cr, x0, y0);
            cairo_scale(cr, scale, scale);
            cairo_set_source_surface(cr, panel, 0, 0);
            cairo_paint(cr);
            cairo_restore(cr);
            if (labels && labels[i]) {
                cairo_save(cr);
                cairo_rectangle(cr, x0, y0 + ph, cw - GAP, LABEL_STRIP);
                cairo_clip(cr);
                cairo_set_source_rgb(cr, 0, 0, 0);
                cairo_move_to(cr, x0 + 2, y0 + ph + LABEL_STRIP - 6);
                cairo_show_text(cr, labels[i]);
                cairo_restore(cr);
            }
        }
        cairo_surface_destroy(panel);
    }
    return xv_png_finish(canvas, cr, path, st);
}
