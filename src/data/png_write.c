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

cairo_surface_t *xv_surface_from_image(const xv_image *im, const char *label) {
    return xv_surface_from_image_mapped(im, label, NULL, NULL);
}

cairo_surface_t *xv_surface_from_image_mapped(const xv_image *im, const char *label, xv_pixel_fn fn, void *user) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->width, im->height);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        xv_error(XV_ERR_NOMEM, "%s: cannot make a %dx%d drawing surface", label, im->width, im->height);
        return NULL;
    }
    cairo_surface_flush(s);
    unsigned char *dst = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < im->height; y++) {
        uint32_t *row = (uint32_t *)(dst + (size_t)y * (size_t)stride);
        for (int x = 0; x < im->width; x++) {
            const uint8_t *px = xv_image_px(im, x, y);
            uint8_t p[3] = {px[0], px[1], px[2]};
            if (fn) fn(user, x, y, p);
            row[x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

xv_status xv_png_finish(cairo_surface_t *s, cairo_t *cr, const char *path, xv_status st) {
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    if (st == XV_OK)
        st = cs == CAIRO_STATUS_SUCCESS ? xv_png_write_surface(s, path)
                                        : xv_error(XV_ERR_IO, "%s: cannot draw the PNG: %s", path,
                                                   cairo_status_to_string(cs));
    cairo_surface_destroy(s);
    return st;
}
