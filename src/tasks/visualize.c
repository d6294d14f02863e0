#include "tasks/visualize.h"

#include <cairo.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"
#include "data/png_write.h"

#define FONT "sans-serif"
#define MARGIN 12.0
#define TITLE_H 34.0

static const double TRUTH_RGB[3] = {0.10, 0.85, 0.25};
static const double PRED_RGB[3] = {0.95, 0.10, 0.85};

/* ---- shared helpers ---- */

/* The image file drawn into the side x side square at (x, y), stretched like
 * the model's test transform sees it; the scale factors into *sx, *sy. false
 * (error set) when the file cannot be read. */
static bool paint_image_file(cairo_t *cr, const char *path, double x, double y, double side, double *sx,
                             double *sy) {
    xv_image im;
    if (xv_image_load(path, &im) != XV_OK) return false;
    cairo_surface_t *s = xv_surface_from_image(&im, path);
    *sx = side / im.width;
    *sy = side / im.height;
    xv_image_free(&im);
    if (!s) return false;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, *sx, *sy);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(s);
    return true;
}

/* A box outlined in black under its colour, so it reads on any background. */
static void stroke_box(cairo_t *cr, double x, double y, double w, double h, const double rgb[3], double line,
                       int dashed) {
    double dash[2] = {6, 4};
    cairo_rectangle(cr, x, y, w, h);
    cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, line + 2);
    cairo_stroke_preserve(cr);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, line);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

/* Words of `text` laid out in lines no wider than max_w, at most max_lines
 * (the last one ends with "..." when text is cut). Returns lines drawn. */
static int draw_wrapped(cairo_t *cr, const char *text, double x, double y, double max_w, double line_h,
                        int max_lines) {
    char line[512], trial[512];
    int lines = 0;
    line[0] = 0;
    const char *p = text;
    while (*p && lines < max_lines) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if (e == p) break;
        int wl = (int)(e - p);
        if (snprintf(trial, sizeof trial, "%s%s%.*s", line, line[0] ? " " : "", wl, p) >= (int)sizeof trial) break;
        cairo_text_extents_t te;
        cairo_text_extents(cr, trial, &te);
        if (te.x_advance <= max_w || !line[0]) {
            memcpy(line, trial, sizeof line);
            p = e;
            continue;
        }
        if (lines == max_lines - 1) break; /* no room for the rest */
        cairo_move_to(cr, x, y + line_h * (lines + 1));
        cairo_show_text(cr, line);
        lines++;
        line[0] = 0;
    }
    if (line[0] && lines < max_lines) {
        while (*p == ' ') p++;
        if (*p) { /* cut: mark it */
            size_t n = strlen(line);
            if (n + 4 < sizeof line) memcpy(line + n, " ...", 5);
        }
        cairo_move_to(cr, x, y + line_h * (lines + 1));
        cairo_show_text(cr, line);
        lines++;
    }
    return lines;
}

static void draw_title(cairo_t *cr, const char *title, double width) {
    if (!title) return;
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 16);
    cairo_text_extents_t te;
    cairo_text_extents(cr, title, &te);
    cairo_move_to(cr, fmax(MARGIN, (width - te.x_advance) / 2), 23);
    cairo_show_text(cr, title);
}

static xv_status new_canvas(const char *path, double w, double h, cairo_surface_t **s, cairo_t **cr) {
    *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)ceil(w), (int)ceil(h));
    if (cairo_surface_status(*s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*s);
        return xv_error(XV_ERR_NOMEM, "%s: cannot make a %.0fx%.0f canvas", path, w, h);
    }
    *cr = cairo_create(*s);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return XV_OK;
}

/* ---- grounding grid ---- */

xv_status xv_vis_grounding_grid(const char *png_path, const xv_vis_ground_item *items, int n, int columns, int cell,
                                const char *title) {
    if (!png_path || n < 1 || !items) return xv_error(XV_ERR_INVALID_ARG, "grounding grid: nothing to draw");
    if (cell <= 0) cell = 192;
    if (columns <= 0) columns = 4;
    if (columns > n) columns = n;
    const double text_h = 50, cw = cell + MARGIN, ch = cell + text_h + MARGIN;
    int rows = (n + columns - 1) / columns;
    const double legend_h = 22;
    double W = MARGIN + columns * cw, H = TITLE_H + legend_h + rows * ch + MARGIN / 2;
    cairo_surface_t *s;
    cairo_t *cr;
    XV_TRY(new_canvas(png_path, W, H, &s, &cr));
    draw_title(cr, title, W);
    /* Legend. */
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    stroke_box(cr, MARGIN, TITLE_H + 4, 22, 10, TRUTH_RGB, 2, 1);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, MARGIN + 30, TITLE_H + 14);
    cairo_show_text(cr, "ground truth");
    stroke_box(cr, MARGIN + 130, TITLE_H + 4, 22, 10, PRED_RGB, 2, 0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, MARGIN + 160, TITLE_H + 14);
    cairo_show_text(cr, "prediction (correct when IoU >= 0.5)");

    xv_status st = XV_OK;
    for (int i = 0; i < n && st == XV_OK; i++) {
        const xv_vis_ground_item *it = &items[i];
        double x0 = MARGIN + (i % columns) * cw, y0 = TITLE_H + legend_h + (i / columns) * ch;
        double sx, sy;
        if (!paint_image_file(cr, it->image_path, x0, y0, cell, &sx, &sy)) {
            st = xv_error_wrap(XV_ERR_IO, "grounding grid");
            break;
        }
        cairo_save(cr);
        cairo_rectangle(cr, x0, y0, cell, cell);
        cairo_clip(cr);
        stroke_box(cr, x0 + it->gt[0] * sx, y0 + it->gt[1] * sy, it->gt[2] * sx, it->gt[3] * sy, TRUTH_RGB, 2, 1);
        stroke_box(cr, x0 + it->pred[0] * sx, y0 + it->pred[1] * sy, it->pred[2] * sx, it->pred[3] * sy, PRED_RGB,
                   2, 0);
        cairo_restore(cr);
        int ok = it->iou >= 0.5;
        cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
        cairo_set_font_size(cr, 12);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        int lines = draw_wrapped(cr, it->text ? it->text : "", x0, y0 + cell, cell, 15, 2);
        char tag[64];
        snprintf(tag, sizeof tag, "IoU %.2f  %s", it->iou, ok ? "correct" : "wrong");
        cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 11);
        if (ok) cairo_set_source_rgb(cr, 0.05, 0.55, 0.15);
        else cairo_set_source_rgb(cr, 0.8, 0.1, 0.1);
        cairo_move_to(cr, x0, y0 + cell + 15 * (lines > 0 ? lines : 1) + 14);
        cairo_show_text(cr, tag);
    }
    return xv_png_finish(s, cr, png_path, st);
}

/* ---- retrieval rows ---- */

xv_status xv_vis_retrieval_rows(const char *png_path, const xv_vis_retrieval_row *rows, int n, int thumb,
                                const char *title) {
    if (!png_path || n < 1 || !rows) return xv_error(XV_ERR_INVALID_ARG, "retrieval examples: nothing to draw");
    if (thumb <= 0) thumb = 128;
    int max_hits = 1;
    for (int r = 0; r < n; r++) {
        if (rows[r].n_hits < 0 || rows[r].n_hits > XV_VIS_MAX_HITS)
            return xv_error(XV_ERR_INVALID_ARG, "retrieval examples: row %d has %d hits (0..%d)", r, rows[r].n_hits,
                            XV_VIS_MAX_HITS);
        if (rows[r].n_hits > max_hits) max_hits = rows[r].n_hits;
    }
    const double query_w = 240, gap = 8, label_h = 18, row_h = thumb + label_h + MARGIN;
    double W = MARGIN + query_w + max_hits * (thumb + gap) + MARGIN, H = TITLE_H + n * row_h + MARGIN / 2;
    cairo_surface_t *s;
    cairo_t *cr;
    XV_TRY(new_canvas(png_path, W, H, &s, &cr));
    draw_title(cr, title, W);
    xv_status st = XV_OK;
    for (int r = 0; r < n && st == XV_OK; r++) {
        const xv_vis_retrieval_row *row = &rows[r];
        double y0 = TITLE_H + r * row_h;
        cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
        cairo_set_font_size(cr, 13);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_wrapped(cr, row->query ? row->query : "", MARGIN, y0 + 4, query_w - gap, 17, (int)(thumb / 17));
        for (int k = 0; k < row->n_hits && st == XV_OK; k++) {
            double x0 = MARGIN + query_w + k * (thumb + gap);
            double sx, sy;
            if (!paint_image_file(cr, row->image_path[k], x0, y0, thumb, &sx, &sy)) {
                st = xv_error_wrap(XV_ERR_IO, "retrieval examples");
                break;
            }
            cairo_rectangle(cr, x0 + 2, y0 + 2, thumb - 4, thumb - 4);
            if (row->is_match[k]) cairo_set_source_rgb(cr, TRUTH_RGB[0], TRUTH_RGB[1], TRUTH_RGB[2]);
            else cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
            cairo_set_line_width(cr, row->is_match[k] ? 5 : 1);
            cairo_stroke(cr);
            char label[64];
            snprintf(label, sizeof label, "#%d  %.2f%s", k + 1, row->score[k], row->is_match[k] ? "  match" : "");
            cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                                   row->is_match[k] ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, 11);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            cairo_move_to(cr, x0, y0 + thumb + 14);
            cairo_show_text(cr, label);
        }
    }
    return xv_png_finish(s, cr, png_path, st);
}
