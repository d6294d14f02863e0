#include "tasks/draw.h"

#include <cairo.h>
#include <math.h>

#include "data/png_write.h"

/* Distinct, saturated colours that read on photos. */
static const double PALETTE[][3] = {
    {0.95, 0.20, 0.15}, {0.10, 0.55, 0.95}, {0.15, 0.75, 0.25}, {0.95, 0.65, 0.05}, {0.70, 0.25, 0.85},
};

static void draw_box(cairo_t *cr, const xv_drawn_box *b, const double rgb[3], double line, double font, int W) {
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, line);
    cairo_rectangle(cr, b->x, b->y, b->w, b->h);
    cairo_stroke(cr);
    if (!b->label || !*b->label) return;
    cairo_set_font_size(cr, font);
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, b->label, &te);
    cairo_font_extents(cr, &fe);
    double pad = font * 0.25, tw = te.x_advance + 2 * pad, th = fe.ascent + fe.descent + 2 * pad;
    /* The tag sits above the box, or inside its top edge when there is no room. */
    double tx = fmin(fmax(b->x - line / 2, 0), fmax(W - tw, 0));
    double ty = b->y - line / 2 - th >= 0 ? b->y - line / 2 - th : fmax(b->y + line / 2, 0);
    cairo_rectangle(cr, tx, ty, tw, th);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_move_to(cr, tx + pad, ty + pad + fe.ascent);
    cairo_show_text(cr, b->label);
}

xv_status xv_draw_boxes_png(const xv_image *im, const xv_drawn_box *boxes, int n, const char *path) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->width, im->height);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return xv_error(XV_ERR_NOMEM, "%s: cannot create a %dx%d drawing surface", path, im->width, im->height);
    }
    cairo_surface_flush(s);
    unsigned char *dst = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < im->height; y++) {
        uint32_t *row = (uint32_t *)(dst + (size_t)y * (size_t)stride);
        for (int x = 0; x < im->width; x++) {
            const uint8_t *p = xv_image_px(im, x, y);
            row[x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    }
    cairo_surface_mark_dirty(s);
    cairo_t *cr = cairo_create(s);
    double side = im->width < im->height ? im->width : im->height;
    double line = fmax(2.0, side / 150.0), font = fmax(12.0, side / 28.0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    for (int i = 0; i < n; i++) draw_box(cr, &boxes[i], PALETTE[i % 5], line, font, im->width);
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    xv_status st = cs == CAIRO_STATUS_SUCCESS
                       ? xv_png_write_surface(s, path)
                       : xv_error(XV_ERR_IO, "%s: cannot draw the PNG: %s", path, cairo_status_to_string(cs));
    cairo_surface_destroy(s);
    return st;
}
