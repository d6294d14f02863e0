#include "tasks/draw.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/png_write.h"

/* Distinct, saturated colours that read on photos. */
static const double PALETTE[][3] = {
    {0.95, 0.20, 0.15}, {0.10, 0.55, 0.95}, {0.15, 0.75, 0.25}, {0.95, 0.65, 0.05}, {0.70, 0.25, 0.85},
};

static double overlap(const xv_label_rect *a, const xv_label_rect *b) {
    double w = fmin(a->x + a->w, b->x + b->w) - fmax(a->x, b->x), h = fmin(a->y + a->h, b->y + b->h) - fmax(a->y, b->y);
    return w > 0 && h > 0 ? w * h : 0;
}

void xv_label_place(const xv_drawn_box *boxes, int n, int W, int H, double line, xv_label_rect *tags) {
    for (int i = 0; i < n; i++) {
        const xv_drawn_box *b = &boxes[i];
        double tw = fmin(tags[i].w, W), th = fmin(tags[i].h, H), x0 = b->x - line / 2;
        /* Above the box, inside its top edge, below it, inside its bottom edge. */
        const double ys[4] = {b->y - line / 2 - th, b->y + line / 2, b->y + b->h + line / 2, b->y + b->h - line / 2 - th};
        double best = INFINITY;
        for (int c = 0; c < 4 && best > 0; c++) {
            /* kept inside the picture */
            xv_label_rect r = {fmin(fmax(x0, 0), W - tw), fmin(fmax(ys[c], 0), H - th), tw, th};
            double cost = 0;
            for (int j = 0; j < i; j++) cost += overlap(&r, &tags[j]);
            if (ys[c] < 0 || ys[c] + th > H) cost += 0.5 * tw * th; /* moved off its place: worse than free spots */
            if (cost < best) best = cost, tags[i] = r;
        }
    }
}

/* The label cut to `max_w` pixels with an ellipsis; `buf` has room for it. */
static const char *fit_text(cairo_t *cr, const char *label, double max_w, char *buf, size_t cap) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, label, &te);
    if (te.x_advance <= max_w) return label;
    size_t n = strlen(label);
    if (n + 4 > cap) n = cap - 4;
    for (; n > 0; n--) {
        while (n > 0 && ((unsigned char)label[n] & 0xC0) == 0x80) n--; /* whole UTF-8 characters */
        snprintf(buf, cap, "%.*s\xE2\x80\xA6", (int)n, label);
        cairo_text_extents(cr, buf, &te);
        if (te.x_advance <= max_w) return buf;
    }
    return "";
}

static void draw_all(cairo_t *cr, const xv_drawn_box *boxes, int n, int W, int H) {
    double side = W < H ? W : H;
    /* line and font follow the picture: about 1/18 of the short side for the
     * text, never under 6 px (a 64-px image still gets small legible tags) */
    double line = fmax(1.0, side / 150.0), font = fmin(fmax(6.0, side / 18.0), 48.0), pad = font * 0.25;
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, font);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    xv_label_rect *tags = calloc((size_t)(n ? n : 1), sizeof *tags);
    char **texts = calloc((size_t)(n ? n : 1), sizeof *texts);
    for (int i = 0; i < n; i++) {
        cairo_set_source_rgb(cr, PALETTE[i % 5][0], PALETTE[i % 5][1], PALETTE[i % 5][2]);
        cairo_set_line_width(cr, line);
        cairo_rectangle(cr, boxes[i].x, boxes[i].y, boxes[i].w, boxes[i].h);
        cairo_stroke(cr);
    }
    if (!tags || !texts) goto done; /* boxes without labels rather than nothing */
    for (int i = 0; i < n; i++) {
        const char *label = boxes[i].label ? boxes[i].label : "";
        char buf[512];
        const char *t = fit_text(cr, label, W - 2 * pad, buf, sizeof buf);
        texts[i] = strdup(t);
        cairo_text_extents_t te;
        cairo_text_extents(cr, t, &te);
        tags[i].w = *t ? te.x_advance + 2 * pad : 0;
        tags[i].h = *t ? fe.ascent + fe.descent + 2 * pad : 0;
    }
    xv_label_place(boxes, n, W, H, line, tags);
    for (int i = 0; i < n; i++) {
        if (!texts[i] || !*texts[i]) continue;
        cairo_set_source_rgb(cr, PALETTE[i % 5][0], PALETTE[i % 5][1], PALETTE[i % 5][2]);
        cairo_rectangle(cr, tags[i].x, tags[i].y, tags[i].w, tags[i].h);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_move_to(cr, tags[i].x + pad, tags[i].y + pad + fe.ascent);
        cairo_show_text(cr, texts[i]);
    }
done:
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts), free(tags);
}

xv_status xv_draw_boxes_png(const xv_image *im, const xv_drawn_box *boxes, int n, const char *path) {
    cairo_surface_t *s = xv_surface_from_image(im, path);
    if (!s) return XV_ERR_NOMEM; /* the message is set */
    cairo_t *cr = cairo_create(s);
    draw_all(cr, boxes, n, im->width, im->height);
    return xv_png_finish(s, cr, path, XV_OK);
}
