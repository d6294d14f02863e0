/* Line plots of training curves as a PNG, drawn with cairo: a grid of panels,
 * one per series, each with the raw values (thin, light), their moving
 * average (thick), axes with "nice" ticks (1, 2, 5 x 10^k) and labels. */
#ifndef XV_TRAIN_PLOT_H
#define XV_TRAIN_PLOT_H

#include "core/error.h"

typedef struct {
    const char *title;   /* panel title and y label, e.g. "loss_itc" */
    const double *x, *y; /* n points; non-finite y values are left out */
    int n;
} xv_plot_panel;

typedef struct {
    int panel_width, panel_height; /* pixels per panel (default 420 x 300) */
    int columns;                   /* panels per row (0: up to 3) */
    int smooth;                    /* trailing moving-average window in points (<= 1: none) */
    const char *title;             /* figure title (NULL: none) */
    const char *xlabel;            /* x axis label of every panel (e.g. "step") */
} xv_plot_opts;

xv_plot_opts xv_plot_opts_default(void);

/* Draw the panels (a panel without finite points says so) and write the PNG
 * atomically (temp file, rename). */
xv_status xv_plot_png(const char *path, const xv_plot_panel *panels, int n, const xv_plot_opts *opts);

/* Tick positions covering [lo, hi] with about `target` intervals: step is 1, 2
 * or 5 x 10^k; *first is the first multiple of step >= lo. Returns the step. */
double xv_plot_ticks(double lo, double hi, int target, double *first);

#endif
