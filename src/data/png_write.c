#include "data/png_write.h"

#include "core/fs.h"

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

xv_status xv_png_write_surface(cairo_surface_t *s, const char *path) {
    xv_fs_atomic w;
    XV_TRY(xv_fs_atomic_open(path, XV_FS_DURABLE, &w));
    cairo_status_t cs = cairo_surface_write_to_png_stream(s, to_file, w.f);
    if (cs != CAIRO_STATUS_SUCCESS) {
        xv_status st = xv_error(XV_ERR_IO, "%s: cannot write the PNG: %s", w.tmp, cairo_status_to_string(cs));
        xv_fs_atomic_abort(&w);
        return st;
    }
    return xv_fs_atomic_commit(&w);
}
