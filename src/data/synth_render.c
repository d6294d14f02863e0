/* Drawing a scene with cairo: background, then each object as its outline
 * polygon filled, striped, dotted or outlined, always stroked in its colour with
 * round joins (so the drawn pixels stay within the box computed from the
 * vertices plus half the line width). */
#include <cairo.h>
#include <math.h>
#include <stddef.h>

#include "data/synth.h"

/* Background noise: triangular, at most this many levels per channel. */
#define NOISE_AMPLITUDE 12

static void set_rgb(cairo_t *cr, const uint8_t *c) { cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0); }

static void paint_background(cairo_t *cr, const xv_synth_scene *s) {
    const uint8_t *c0 = xv_synth_background_rgb[s->bg[0]], *c1 = xv_synth_background_rgb[s->bg[1]];
    if (s->bg_kind != XV_BG_GRADIENT) {
        set_rgb(cr, c0);
        cairo_paint(cr);
        return;
    }
    double h = 0.5 * s->size, dx = cos(s->bg_angle) * h, dy = sin(s->bg_angle) * h;
    cairo_pattern_t *g = cairo_pattern_create_linear(h - dx, h - dy, h + dx, h + dy);
    cairo_pattern_add_color_stop_rgb(g, 0, c0[0] / 255.0, c0[1] / 255.0, c0[2] / 255.0);
    cairo_pattern_add_color_stop_rgb(g, 1, c1[0] / 255.0, c1[1] / 255.0, c1[2] / 255.0);
    cairo_set_source(cr, g);
    cairo_paint(cr);
    cairo_pattern_destroy(g);
}

static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* Per-pixel noise from the scene's own Philox key: one block (16 bytes) per
 * two pixels, two bytes per channel summed into a triangular distribution. */
static void add_noise(uint8_t *data, int stride, const xv_synth_scene *s) {
    int n = s->size;
    for (int y = 0; y < n; y++) {
        uint32_t *row = (uint32_t *)(data + (size_t)y * stride);
        for (int x = 0; x < n; x += 2) {
            uint32_t block[4];
            xv_philox(s->noise_key, ((uint64_t)y * (uint64_t)n + (uint64_t)x) / 2, block);
            const uint8_t *bytes = (const uint8_t *)block;
            for (int k = 0; k < 2 && x + k < n; k++) {
                uint32_t px = row[x + k], out = 0;
                for (int ch = 0; ch < 3; ch++) {
                    int b0 = bytes[k * 6 + ch * 2], b1 = bytes[k * 6 + ch * 2 + 1];
                    int delta = ((b0 + b1 - 255) * NOISE_AMPLITUDE) / 255;
                    int v = clamp255((int)((px >> (16 - 8 * ch)) & 0xff) + delta);
                    out |= (uint32_t)v << (16 - 8 * ch);
                }
                row[x + k] = out;
            }
        }
    }
}

static void outline_path(cairo_t *cr, const xv_synth_object *o) {
    float xy[XV_SYNTH_MAX_VERTICES][2], w, h;
    int n = xv_synth_outline(o->shape, xy, &w, &h);
    cairo_new_path(cr);
    for (int k = 0; k < n; k++) {
        double x = o->cx + xy[k][0] * o->extent, y = o->cy + xy[k][1] * o->extent;
        if (k == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    cairo_close_path(cr);
}

/* Pattern period: about 4.5 stripes or dot rows across the shape, at least 4
 * pixels so a stripe is never thinner than 2. */
static double pattern_period(const xv_synth_object *o) { return fmax(4.0, o->extent / 4.5); }

static void draw_stripes(cairo_t *cr, const xv_synth_object *o) {
    double p = pattern_period(o), r = o->extent; /* covers the shape's box */
    for (double t = -2 * r; t <= 2 * r; t += p) {
        /* Diagonal band between the lines x + y = c + t and c + t + p/2. */
        double c = o->cx + o->cy + t;
        cairo_move_to(cr, c - o->cy + r, o->cy - r);
        cairo_line_to(cr, c - o->cy + r + p / 2, o->cy - r);
        cairo_line_to(cr, c - o->cy - r + p / 2, o->cy + r);
        cairo_line_to(cr, c - o->cy - r, o->cy + r);
        cairo_close_path(cr);
    }
    cairo_fill(cr);
}

static void draw_dots(cairo_t *cr, const xv_synth_object *o) {
    double p = pattern_period(o), r = 0.6 * o->extent, radius = 0.3 * p;
    for (double y = o->cy - r; y <= o->cy + r; y += p)
        for (double x = o->cx - r; x <= o->cx + r; x += p) {
            cairo_new_sub_path(cr);
            cairo_arc(cr, x, y, radius, 0, 2 * M_PI);
        }
    cairo_fill(cr);
}

static void draw_object(cairo_t *cr, const xv_synth_object *o) {
    set_rgb(cr, xv_synth_colour_rgb[o->colour]);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    outline_path(cr, o);
    if (o->pattern == XV_PATTERN_SOLID) {
        cairo_fill_preserve(cr);
    } else {
        cairo_save(cr);
        cairo_clip(cr); /* the pattern stays inside the outline */
        if (o->pattern == XV_PATTERN_STRIPED) draw_stripes(cr, o);
        if (o->pattern == XV_PATTERN_DOTTED) draw_dots(cr, o);
        if (o->pattern == XV_PATTERN_OUTLINED) {
            /* A band inside the outline, clipped: a heavy frame, hollow middle. */
            outline_path(cr, o);
            cairo_set_line_width(cr, 0.24 * o->extent);
            cairo_stroke(cr);
        }
        cairo_restore(cr);
        outline_path(cr, o);
    }
    cairo_set_line_width(cr, o->line);
    cairo_stroke(cr);
}

xv_status xv_synth_render(const xv_synth_scene *s, uint8_t *rgb) {
    if (s->size < XV_SYNTH_MIN_SIZE || s->size > XV_SYNTH_MAX_SIZE || s->n < 0 || s->n > XV_SYNTH_MAX_OBJECTS)
        return xv_error(XV_ERR_INVALID_ARG, "synth render: scene of size %d with %d objects", s->size, s->n);
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, s->size, s->size);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return xv_error(XV_ERR_NOMEM, "synth render: cairo surface %dx%d", s->size, s->size);
    }
    cairo_t *cr = cairo_create(surface);
    paint_background(cr, s);
    if (s->bg_kind == XV_BG_NOISE) {
        cairo_surface_flush(surface);
        add_noise(cairo_image_surface_get_data(surface), cairo_image_surface_get_stride(surface), s);
        cairo_surface_mark_dirty(surface);
    }
    for (int i = 0; i < s->n; i++) draw_object(cr, &s->obj[i]);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return xv_error(XV_ERR_INTERNAL, "synth render: cairo: %s", cairo_status_to_string(st));
    }
    const uint8_t *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    for (int y = 0; y < s->size; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        uint8_t *out = rgb + (size_t)y * s->size * 3;
        for (int x = 0; x < s->size; x++) {
            out[3 * x] = (uint8_t)(row[x] >> 16);
            out[3 * x + 1] = (uint8_t)(row[x] >> 8);
            out[3 * x + 2] = (uint8_t)row[x];
        }
    }
    cairo_surface_destroy(surface);
    return XV_OK;
}
