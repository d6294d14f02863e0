/* Images/s of the official test transform on a 640x480 JPEG: decode (PIL's
 * convert('RGB') rules) + PIL-exact bicubic resize to R x R + normalise to
 * float [3,R,R], for R = 224 and 384, with 1 thread and with all threads.
 * The JPEG (quality 90, 4:2:0) is generated here with libjpeg.
 * Run: <build>/bench/bench_image   (tools/bench_image_pil.py times PIL the same way) */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

#include "benchutil.h"
#include "data/image.h"
#include "data/resize.h"
#include "data/transforms.h"
#include "xvlm.h"

typedef struct {
    const uint8_t *jpeg;
    size_t len;
    int res;
    float *out;
    int stage; /* 0 = full pipeline, 1 = decode only, 2 = resize only */
    xv_image decoded;
} bench_ctx;

static unsigned long make_jpeg(uint8_t **out, int w, int h) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned long len = 0;
    *out = NULL;
    jpeg_mem_dest(&c, out, &len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 3, c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    uint32_t s = 12345;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) { /* smooth gradients plus noise: photo-like entropy */
            s = s * 1664525u + 1013904223u;
            int n = (int)(s >> 28) - 8;
            row[3 * x] = (uint8_t)((x * 255 / w + n) & 255);
            row[3 * x + 1] = (uint8_t)((y * 255 / h + n) & 255);
            row[3 * x + 2] = (uint8_t)(((x + y) * 128 / (w + h) + 64 + n) & 255);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return len;
}

static void run(void *p) {
    bench_ctx *c = p;
    xv_image im, r;
    if (c->stage == 2) {
        if (xv_resize_bicubic(xv_image_view_of(&c->decoded), c->res, c->res, &r) == XV_OK) xv_image_free(&r);
        return;
    }
    if (xv_image_decode(c->jpeg, c->len, "bench.jpg", &im) != XV_OK) {
        fprintf(stderr, "%s\n", xvlm_last_error());
        exit(1);
    }
    if (c->stage == 0 && xv_transform_test(&im, c->res, c->out) != XV_OK) exit(1);
    xv_image_free(&im);
}

int main(void) {
    uint8_t *jpeg;
    unsigned long len = make_jpeg(&jpeg, 640, 480);
    printf("bench_image: 640x480 JPEG (q90, 4:2:0, %lu bytes) -> decode + bicubic resize + normalise\n", len);
    xvlm_set_threads(0);
    int all = xvlm_get_threads();
    int threads[2] = {1, all};
    bench_ctx c = {jpeg, len, 0, NULL, 0, {0}};
    if (xv_image_decode(jpeg, len, "bench.jpg", &c.decoded) != XV_OK) return 1;
    for (int t = 0; t < (all > 1 ? 2 : 1); t++) {
        xvlm_set_threads(threads[t]);
        c.stage = 1;
        double dec = xv_bench_median(run, &c, 1.0), dec_best = xv_bench_best(run, &c, 50);
        printf("  threads %d  decode only             median %7.2f ms  best %7.2f ms  %7.1f images/s (best)\n",
               threads[t], dec * 1e3, dec_best * 1e3, 1.0 / dec_best);
        int res[2] = {224, 384};
        for (int i = 0; i < 2; i++) {
            c.res = res[i];
            c.out = malloc(sizeof(float) * 3 * res[i] * res[i]);
            c.stage = 2;
            double rs = xv_bench_median(run, &c, 1.0), rs_best = xv_bench_best(run, &c, 50);
            c.stage = 0;
            double full = xv_bench_median(run, &c, 1.0), full_best = xv_bench_best(run, &c, 50);
            printf("  threads %d  resize to %d only       median %7.2f ms  best %7.2f ms\n", threads[t], res[i],
                   rs * 1e3, rs_best * 1e3);
            printf("  threads %d  full pipeline @%d       median %7.2f ms  best %7.2f ms  %7.1f images/s (best)\n",
                   threads[t], res[i], full * 1e3, full_best * 1e3, 1.0 / full_best);
            free(c.out);
        }
    }
    printf("  peak RSS %.1f MiB\n", xv_bench_peak_rss_mib());
    xv_image_free(&c.decoded);
    free(jpeg);
    return 0;
}
