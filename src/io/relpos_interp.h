/* Resizing a Swin relative-position bias table to another window, exactly as
 * the official X-VLM loader does (models/swin_transformer.py,
 * interpolate_relative_pos_embed, after BEiT):
 *
 *  - the source table [(2W-1)^2, heads] is a (2W-1) x (2W-1) grid per head,
 *    indexed [dh][dw];
 *  - its nodes are not evenly spaced: 0, +-1, +-(1+q), +-(1+q+q^2), ... with
 *    the ratio q found by bisection so that the outermost node lands near the
 *    new half-width (the q used is the last midpoint of the bisection);
 *  - each head is resampled at the integer offsets -hd..hd by a 2-D cubic
 *    interpolating spline (scipy interp2d 'cubic' = tensor-product spline with
 *    not-a-knot ends), computed here separably in double and rounded to float.
 *
 * Targets beyond the outermost node (only for tables smaller than any official
 * one) are clamped to it, as FITPACK's evaluation does. */
#ifndef XV_IO_RELPOS_INTERP_H
#define XV_IO_RELPOS_INTERP_H

#include "core/error.h"

/* The official ratio q for a table side `src_size` -> `dst_size` (both odd). */
double xv_relpos_ratio(int src_size, int dst_size);

/* Node positions of a source side (src_size values, ascending). */
void xv_relpos_nodes(int src_size, double q, double *nodes);

/* Spline interpolation matrix [n_out][n_nodes]: values at `out` of the
 * not-a-knot cubic spline through (nodes, y) are weights . y. Needs n_nodes >= 4. */
xv_status xv_spline_weights(const double *nodes, int n_nodes, const double *out, int n_out, double *weights);

/* table [src_rows, heads] -> [dst_rows, heads] (rows are (2W-1)^2). When the
 * sizes agree the table is copied unchanged. */
xv_status xv_relpos_interp(const float *src, int src_rows, int heads, float *dst, int dst_rows);

#endif
