#include "train/plot.h"

#include <cairo.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/png_write.h"

xv_plot_opts xv_plot_opts_default(void) {
    xv_plot_opts o = {.panel_width = 420, .panel_height = 300, .columns = 0, .smooth = 25, .title = NULL,
                      .xlabel = "step"};
    return o;
}

double xv_plot_ticks(double lo, double hi, int target, double *first) {
    if (!(hi > lo)) hi = lo + 1;
    if (target < 1) target = 1;
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), step = 10 * mag;
    const double mults[3] = {1, 2, 5};
    for (int i = 0; i < 3; i++)
        if (mults[i] * mag >= raw) {
            step = mults[i] * mag;
            break;
        }
    *first = ceil(lo / step - 1e-9) * step;
    return step;
}

/* A tick label without trailing zeros: 0.05, 1e-05, 2500, 1.5. */
static void tick_label(double v, double step, char *buf, size_t n) {
    if (fabs(v) < step * 1e-6) v = 0;
    if (v != 0 && (fabs(v) >= 1e6 || fabs(v) < 1e-3)) snprintf(buf, n, "%.3g", v);
    else {
        int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, n, "%.*f", decimals, v);
    }
}

typedef struct {
    double x0, y0, w, h;      /* plot area in pixels */
    double xmin, xmax, ymin, ymax;
} frame;

static double px(const frame *f, double x) { return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w; }
static double py(const frame *f, double y) { return f->y0 + f->h - (y - f->ymin) / (f->ymax - f->ymin) * f->h; }

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
    cairo_show_text(cr, s);
}

static void axes(cairo_t *cr, const frame *f, const char *title, const char *xlabel) {
    char buf[64];
    double first, step;
    cairo_set_line_width(cr, 1);
    cairo_set_font_size(cr, 11);
    /* y grid and ticks */
    step = xv_plot_ticks(f->ymin, f->ymax, 5, &first);
    for (double v = first; v <= f->ymax + step * 1e-9; v += step) {
        double y = round(py(f, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f->x0, y);
        cairo_line_to(cr, f->x0 + f->w, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, f->x0 - 4, y);
        cairo_line_to(cr, f->x0, y);
        cairo_stroke(cr);
        tick_label(v, step, buf, sizeof buf);
        text_at(cr, f->x0 - 7, y, buf, 1.0, 0.5);
    }
    /* x grid and ticks */
    step = xv_plot_ticks(f->xmin, f->xmax, 5, &first);
    for (double v = first; v <= f->xmax + step * 1e-9; v += step) {
        double x = round(px(f, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, f->y0);
        cairo_line_to(cr, x, f->y0 + f->h);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, x, f->y0 + f->h);
        cairo_line_to(cr, x, f->y0 + f->h + 4);
        cairo_stroke(cr);
        tick_label(v, step, buf, sizeof buf);
        text_at(cr, x, f->y0 + f->h + 7, buf, 0.5, 0.0);
    }
    /* frame, title, labels */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, round(f->x0) + 0.5, round(f->y0) + 0.5, round(f->w), round(f->h));
    cairo_stroke(cr);
    cairo_set_font_size(cr, 13);
    text_at(cr, f->x0 + f->w / 2, f->y0 - 8, title, 0.5, 1.0);
    cairo_set_font_size(cr, 11);
    if (xlabel) text_at(cr, f->x0 + f->w / 2, f->y0 + f->h + 24, xlabel, 0.5, 0.0);
    cairo_save(cr);
    cairo_translate(cr, f->x0 - 52, f->y0 + f->h / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, title, 0.5, 0.5);
    cairo_restore(cr);
}

static void polyline(cairo_t *cr, const frame *f, const double *x, const double *y, int n) {
    bool pen = false;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            pen = false;
            continue;
        }
        if (pen) cairo_line_to(cr, px(f, x[i]), py(f, y[i]));
        else cairo_move_to(cr, px(f, x[i]), py(f, y[i]));
        pen = true;
    }
    cairo_stroke(cr);
}

static xv_status draw_panel(cairo_t *cr, const xv_plot_panel *p, const xv_plot_opts *o, double ox, double oy) {
    frame f = {.x0 = ox + 70, .y0 = oy + 30, .w = o->panel_width - 90, .h = o->panel_height - 75};
    int finite = 0;
    f.xmin = f.ymin = INFINITY;
    f.xmax = f.ymax = -INFINITY;
    for (int i = 0; i < p->n; i++) {
        if (!isfinite(p->y[i]) || !isfinite(p->x[i])) continue;
        finite++;
        f.xmin = fmin(f.xmin, p->x[i]), f.xmax = fmax(f.xmax, p->x[i]);
        f.ymin = fmin(f.ymin, p->y[i]), f.ymax = fmax(f.ymax, p->y[i]);
    }
    if (!finite) {
        f.xmin = 0, f.xmax = 1, f.ymin = 0, f.ymax = 1;
        axes(cr, &f, p->title, o->xlabel);
        text_at(cr, f.x0 + f.w / 2, f.y0 + f.h / 2, "no data", 0.5, 0.5);
        return XV_OK;
    }
    if (f.xmax == f.xmin) f.xmin -= 0.5, f.xmax += 0.5;
    double pad = f.ymax > f.ymin ? 0.05 * (f.ymax - f.ymin) : fmax(1e-3, 0.05 * fabs(f.ymax));
    f.ymin -= pad, f.ymax += pad;
    if (f.ymin < 0 && f.ymin + pad >= 0) f.ymin = 0; /* a non-negative series keeps its zero floor */
    axes(cr, &f, p->title, o->xlabel);

    cairo_save(cr);
    cairo_rectangle(cr, f.x0, f.y0, f.w, f.h);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_source_rgb(cr, 0.62, 0.74, 0.90);
    cairo_set_line_width(cr, 1);
    polyline(cr, &f, p->x, p->y, p->n);
    if (o->smooth > 1) {
        /* the finite points, then their trailing moving average */
        double *xs = malloc(sizeof(double) * (size_t)finite), *ys = malloc(sizeof(double) * (size_t)finite),
               *avg = malloc(sizeof(double) * (size_t)finite);
        if (!xs || !ys || !avg) {
            free(xs), free(ys), free(avg);
            cairo_restore(cr);
            return xv_error(XV_ERR_NOMEM, "plot: out of memory");
        }
        int k = 0;
        for (int i = 0; i < p->n; i++)
            if (isfinite(p->y[i]) && isfinite(p->x[i])) xs[k] = p->x[i], ys[k++] = p->y[i];
        double sum = 0;
        for (int i = 0; i < finite; i++) {
            sum += ys[i];
            if (i >= o->smooth) sum -= ys[i - o->smooth];
            avg[i] = sum / (i + 1 < o->smooth ? i + 1 : o->smooth);
        }
        cairo_set_source_rgb(cr, 0.05, 0.25, 0.60);
        cairo_set_line_width(cr, 2.2);
        polyline(cr, &f, xs, avg, finite);
        free(xs), free(ys), free(avg);
    }
    cairo_restore(cr);
    return XV_OK;
}

xv_status xv_plot_png(const char *path, const xv_plot_panel *panels, int n, const xv_plot_opts *opts) {
    xv_plot_opts o = opts ? *opts : xv_plot_opts_default();
    if (n < 1 || o.panel_width < 200 || o.panel_height < 150 || o.panel_width > 4000 || o.panel_height > 4000)
        return xv_error(XV_ERR_INVALID_ARG, "plot: need >= 1 panel of 200x150 to 4000x4000 pixels");
    const int cols = o.columns > 0 ? o.columns : n < 3 ? n : 3, rows = (n + cols - 1) / cols;
    const int top = o.title ? 36 : 0;
    cairo_surface_t *s =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, cols * o.panel_width, rows * o.panel_height + top);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return xv_error(XV_ERR_NOMEM, "plot: cannot create a %dx%d image", cols * o.panel_width,
                        rows * o.panel_height + top);
    }
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    xv_status st = XV_OK;
    if (o.title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_font_size(cr, 16);
        text_at(cr, cols * o.panel_width / 2.0, 10, o.title, 0.5, 0.0);
    }
    for (int i = 0; i < n && st == XV_OK; i++)
        st = draw_panel(cr, &panels[i], &o, (i % cols) * o.panel_width, top + (i / cols) * o.panel_height);
    cairo_destroy(cr);
    if (st == XV_OK) st = xv_png_write_surface(s, path);
    cairo_surface_destroy(s);
    return st;
}
