/* JPEG decoding with libjpeg-turbo, matching PIL's JpegDecode + convert('RGB').
 *
 * libjpeg reports fatal errors through error_exit, whose default calls exit();
 * ours longjmps back to the decode call instead. A premature end of the data is
 * only a warning to libjpeg (it pads with gray), but PIL refuses truncated files
 * (LOAD_TRUNCATED_IMAGES is off by default), so that warning is fatal here.
 * Other corrupt-data warnings are ignored, as PIL ignores them. */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h> /* jpeglib.h needs size_t and FILE first */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "data/image.h"

/* Progressive files can hold thousands of tiny scans, each a full pass over
 * the coefficients: a cheap way to make a decoder spin. Real encoders write
 * about ten. */
#define JPEG_MAX_SCANS 500

/* Lives on the heap: everything libjpeg modifies between setjmp and longjmp
 * is then reached through a pointer set before setjmp, never an automatic
 * variable (whose value would be indeterminate after the jump). */
typedef struct {
    struct jpeg_error_mgr mgr; /* first member: libjpeg casts cinfo->err to this */
    struct jpeg_progress_mgr progress;
    struct jpeg_decompress_struct cinfo;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
    uint8_t *row; /* scratch row (gray/CMYK) */
    xv_image image;
} jpeg_decoder;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_decoder *c = (jpeg_decoder *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_decoder *c = (jpeg_decoder *)cinfo->err;
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(c->message, sizeof c->message, "truncated file (premature end of JPEG data)");
        longjmp(c->jump, 1);
    }
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void on_progress(j_common_ptr cinfo) {
    jpeg_decoder *c = (jpeg_decoder *)cinfo->err;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        snprintf(c->message, sizeof c->message, "more than %d scans (refused as hostile)", JPEG_MAX_SCANS);
        longjmp(c->jump, 1);
    }
}

/* PIL's MULDIV255: a·b/255 rounded, in integer arithmetic. */
static inline int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* libjpeg's CMYK samples are inverted by PIL's "CMYK;I" unpacker, then
 * cmyk2rgb computes (255-k) - c·(255-k)/255 per channel. With the inverted
 * samples c = 255-c', 255-k = k'. The result never leaves 0..255. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, int width) {
    for (int x = 0; x < width; x++, in += 4, out += 3) {
        int nk = in[3];
        for (int ch = 0; ch < 3; ch++) out[ch] = (uint8_t)(nk - muldiv255(255 - in[ch], nk));
    }
}

static void decoder_free(jpeg_decoder *c) {
    jpeg_destroy_decompress(&c->cinfo);
    free(c->row);
    xv_image_free(&c->image);
    free(c);
}

xv_status xv_image_decode_jpeg(const uint8_t *buf, size_t len, const char *label, int64_t max_pixels,
                               xv_image *out) {
    jpeg_decoder *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    struct jpeg_decompress_struct *cinfo = &c->cinfo;
    cinfo->err = jpeg_std_error(&c->mgr);
    c->mgr.error_exit = on_error_exit;
    c->mgr.emit_message = on_emit_message;
    c->mgr.output_message = on_output_message;
    if (setjmp(c->jump)) {
        xv_status s = xv_error(XV_ERR_FORMAT, "%s: JPEG: %s", label, c->message);
        decoder_free(c);
        return s;
    }
    jpeg_create_decompress(cinfo);
    c->progress.progress_monitor = on_progress;
    cinfo->progress = &c->progress;
    jpeg_mem_src(cinfo, buf, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);

    xv_status st = XV_OK;
    int comps = cinfo->num_components;
    int w = (int)cinfo->image_width, h = (int)cinfo->image_height;
    if (cinfo->data_precision != 8 || (comps != 1 && comps != 3 && comps != 4)) {
        st = xv_error(XV_ERR_UNSUPPORTED, "%s: JPEG with %d components of %d bits (PIL reads 1, 3 or 4 of 8 bits)",
                      label, comps, cinfo->data_precision);
    } else if (!xv_image_size_ok(w, h, max_pixels)) {
        st = xv_error(XV_ERR_NOMEM, "%s: JPEG declares %dx%d pixels, above the limit of %lld pixels", label, w, h,
                      (long long)max_pixels);
    } else if ((st = xv_image_new(&c->image, w, h, label)) == XV_OK && comps != 3 &&
               !(c->row = malloc((size_t)w * (size_t)comps))) {
        st = xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    }
    if (st != XV_OK) {
        decoder_free(c);
        return st;
    }
    /* CMYK and YCCK files both come out as CMYK. */
    cinfo->out_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(cinfo);
    while (cinfo->output_scanline < cinfo->output_height) {
        uint8_t *dst = xv_image_px(&c->image, 0, (int)cinfo->output_scanline);
        JSAMPROW row = comps == 3 ? dst : c->row;
        jpeg_read_scanlines(cinfo, &row, 1);
        if (comps == 1) {
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = c->row[x];
        } else if (comps == 4) {
            cmyk_row_to_rgb(c->row, dst, w);
        }
    }
    /* No jpeg_finish_decompress: every pixel is in; what follows the last scan
     * (a missing EOI, trailing junk) does not change the image. */
    *out = c->image;
    c->image.rgb = NULL;
    decoder_free(c);
    return XV_OK;
}
