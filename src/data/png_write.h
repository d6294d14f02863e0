/* Writing a cairo surface (plots, drawn boxes, demo pictures) to a PNG file
 * through the atomic writer of core/fs.h: a reader never sees half a PNG. */
#ifndef XV_DATA_PNG_WRITE_H
#define XV_DATA_PNG_WRITE_H

#include <cairo.h>

#include "core/error.h"
#include "data/image.h"

xv_status xv_png_write_surface(cairo_surface_t *s, const char *path);

/* The image as a new RGB24 surface to draw on (NULL and XV_ERR_NOMEM naming
 * `label` when cairo cannot make it). */
cairo_surface_t *xv_surface_from_image(const xv_image *im, const char *label);
/* The same with each pixel passed through `fn` on its way (the image's RGB at
 * (x, y) in rgb, changed in place: a heat-map blend, for instance). */
typedef void (*xv_pixel_fn)(void *user, int x, int y, uint8_t rgb[3]);
cairo_surface_t *xv_surface_from_image_mapped(const xv_image *im, const char *label, xv_pixel_fn fn, void *user);

/* The end of a drawing on s through cr: when st is XV_OK and cr drew without
 * error, s written to path; cr and s destroyed either way. Returns the first
 * failure. */
xv_status xv_png_finish(cairo_surface_t *s, cairo_t *cr, const char *path, xv_status st);

#endif
