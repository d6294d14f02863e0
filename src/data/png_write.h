/* Writing a cairo surface (plots, drawn boxes, demo pictures) to a PNG file
 * through the atomic writer of core/fs.h: a reader never sees half a PNG. */
#ifndef XV_DATA_PNG_WRITE_H
#define XV_DATA_PNG_WRITE_H

#include <cairo.h>

#include "core/error.h"

xv_status xv_png_write_surface(cairo_surface_t *s, const char *path);

#endif
