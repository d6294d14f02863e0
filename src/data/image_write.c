/* JPEG encoding with libjpeg. Its default error_exit calls exit(); ours
 * longjmps back to xv_jpeg_encode, which reports the message. */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h> /* jpeglib.h needs size_t and FILE first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "core/fs.h"
#include "data/image_write.h"

/* On the heap, reached through a pointer set before setjmp (see image_jpeg.c). */
typedef struct {
    struct jpeg_error_mgr mgr; /* first member: libjpeg casts cinfo->err to this */
    struct jpeg_compress_struct cinfo;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    unsigned char *buf;
    unsigned long len;
} jpeg_encoder;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_encoder *c = (jpeg_encoder *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

xv_status xv_jpeg_encode(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *len) {
    if (width <= 0 || height <= 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION)
        return xv_error(XV_ERR_INVALID_ARG, "jpeg encode: size %dx%d outside 1..%d", width, height, (int)JPEG_MAX_DIMENSION);
    if (quality < 1 || quality > 100) return xv_error(XV_ERR_INVALID_ARG, "jpeg encode: quality %d outside 1..100", quality);
    jpeg_encoder *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "jpeg encode: out of memory");
    c->cinfo.err = jpeg_std_error(&c->mgr);
    c->mgr.error_exit = on_error_exit;
    c->mgr.output_message = on_output_message;
    if (setjmp(c->jump)) {
        xv_status st = xv_error(XV_ERR_INTERNAL, "jpeg encode: %s", c->message);
        jpeg_destroy_compress(&c->cinfo);
        free(c->buf);
        free(c);
        return st;
    }
    jpeg_create_compress(&c->cinfo);
    jpeg_mem_dest(&c->cinfo, &c->buf, &c->len);
    c->cinfo.image_width = (JDIMENSION)width;
    c->cinfo.image_height = (JDIMENSION)height;
    c->cinfo.input_components = 3;
    c->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c->cinfo);
    jpeg_set_quality(&c->cinfo, quality, TRUE);
    c->cinfo.dct_method = JDCT_ISLOW;
    for (int k = 0; k < 3; k++) c->cinfo.comp_info[k].h_samp_factor = c->cinfo.comp_info[k].v_samp_factor = 1;
    jpeg_start_compress(&c->cinfo, TRUE);
    while (c->cinfo.next_scanline < c->cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c->cinfo.next_scanline * (size_t)width * 3);
        jpeg_write_scanlines(&c->cinfo, &row, 1);
    }
    jpeg_finish_compress(&c->cinfo);
    jpeg_destroy_compress(&c->cinfo);
    *out = c->buf;
    *len = c->len;
    free(c);
    return XV_OK;
}

xv_status xv_jpeg_write(const char *path, const uint8_t *rgb, int width, int height, int quality) {
    uint8_t *buf = NULL;
    size_t len = 0;
    xv_status st = xv_jpeg_encode(rgb, width, height, quality, &buf, &len);
    if (st != XV_OK) return xv_error_wrap(st, "%s", path);
    st = xv_fs_write_file(path, buf, len, XV_FS_NO_FSYNC);
    free(buf);
    return st;
}
