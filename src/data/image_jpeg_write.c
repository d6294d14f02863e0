/* JPEG encoding with libjpeg-turbo. As in image_jpeg.c, fatal libjpeg errors
 * longjmp back here instead of calling exit(). */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs size_t and FILE first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "data/image_write.h"

/* On the heap, reached through a pointer set before setjmp (see image_jpeg.c). */
typedef struct {
    struct jpeg_error_mgr mgr; /* first member: libjpeg casts cinfo->err to this */
    struct jpeg_compress_struct cinfo;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    unsigned char *buf;
    unsigned long len;
} jpeg_enc_ctx;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_enc_ctx *c = (jpeg_enc_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

xv_status xv_image_encode_jpeg(const xv_image *im, int quality, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (!im || !im->rgb || im->width <= 0 || im->height <= 0 || quality < 1 || quality > 100)
        return xv_error(XV_ERR_INVALID_ARG, "jpeg encode: bad image or quality %d", quality);
    jpeg_enc_ctx *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "jpeg encode: no memory");
    c->cinfo.err = jpeg_std_error(&c->mgr);
    c->mgr.error_exit = on_error_exit;
    c->mgr.output_message = on_output_message;
    if (setjmp(c->jump)) {
        xv_status s = xv_error(XV_ERR_INTERNAL, "jpeg encode: %s", c->message);
        jpeg_destroy_compress(&c->cinfo);
        free(c->buf);
        free(c);
        return s;
    }
    jpeg_create_compress(&c->cinfo);
    jpeg_mem_dest(&c->cinfo, &c->buf, &c->len);
    c->cinfo.image_width = (JDIMENSION)im->width;
    c->cinfo.image_height = (JDIMENSION)im->height;
    c->cinfo.input_components = 3;
    c->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c->cinfo);
    jpeg_set_quality(&c->cinfo, quality, TRUE);
    jpeg_start_compress(&c->cinfo, TRUE);
    while (c->cinfo.next_scanline < c->cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)xv_image_px(im, 0, (int)c->cinfo.next_scanline);
        jpeg_write_scanlines(&c->cinfo, &row, 1);
    }
    jpeg_finish_compress(&c->cinfo);
    jpeg_destroy_compress(&c->cinfo);
    /* jpeg_mem_dest's buffer comes from malloc: hand it over as it is. */
    *out = c->buf;
    *out_len = c->len;
    free(c);
    return XV_OK;
}

xv_status xv_image_save_jpeg(const xv_image *im, int quality, const char *path) {
    uint8_t *buf;
    size_t len;
    XV_TRY(xv_image_encode_jpeg(im, quality, &buf, &len));
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return xv_error(XV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    size_t put = fwrite(buf, 1, len, f);
    int closed = fclose(f);
    free(buf);
    if (put != len || closed != 0) return xv_error(XV_ERR_IO, "%s: write failed", path);
    return XV_OK;
}
