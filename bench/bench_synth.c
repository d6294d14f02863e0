/* Generation speed of the synthetic world: the pieces of one image (scene +
 * texts, cairo rendering, JPEG encoding) on one thread, and whole data sets
 * (`xvlm synth`'s work, files included) on 1 and 2 threads, in images/s.
 * Usage: bench_synth [images (default 1000)] [size (default 256)] */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "benchutil.h"
#include "data/image_write.h"
#include "data/synth.h"
#include "data/synth_text.h"

typedef struct {
    int size;
    xv_rng rng;
    xv_synth_scene scene;
    uint8_t *rgb;
} piece_ctx;

static void sample_one(void *p) {
    piece_ctx *c = p;
    xv_synth_sample_scene(&c->rng, c->size, 2, 4, &c->scene);
    char text[XV_SYNTH_TEXT_MAX];
    for (int k = 0; k < 5; k++) {
        xv_synth_caption cap;
        xv_synth_caption_sample(&c->rng, &c->scene, (xv_synth_cap_style)(k % XV_SYNTH_N_CAP_STYLES), false, &cap);
        xv_synth_caption_text(&cap, text, sizeof text);
    }
    for (int k = 0; k < c->scene.n; k++) {
        xv_synth_expr e;
        if (xv_synth_expr_sample(&c->rng, &c->scene, k, false, &e)) xv_synth_expr_text(&e, text, sizeof text);
    }
}

static void render_one(void *p) {
    piece_ctx *c = p;
    xv_synth_sample_scene(&c->rng, c->size, 2, 4, &c->scene);
    xv_synth_render(&c->scene, c->rgb);
}

static void encode_one(void *p) {
    piece_ctx *c = p;
    uint8_t *jpg = NULL;
    size_t len = 0;
    if (xv_jpeg_encode(c->rgb, c->size, c->size, 90, &jpg, &len) == XV_OK) free(jpg);
}

/* CPU seconds of this process so far (all threads, user + system): the
 * machine may be shared, so wall time alone can mislead. */
static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    int images = argc > 1 ? atoi(argv[1]) : 1000, size = argc > 2 ? atoi(argv[2]) : 256;
    if (images < 10 || size < XV_SYNTH_MIN_SIZE || size > XV_SYNTH_MAX_SIZE) {
        fprintf(stderr, "usage: bench_synth [images >= 10] [size %d..%d]\n", XV_SYNTH_MIN_SIZE, XV_SYNTH_MAX_SIZE);
        return 2;
    }
    piece_ctx c = {.size = size, .rgb = malloc((size_t)size * size * 3)};
    xv_rng_seed(&c.rng, 1);
    printf("synth pieces, one thread, %d px:\n", size);
    double t = xv_bench_median(sample_one, &c, 1.0);
    printf("  scene + 5 captions + expressions  %8.3f ms  (%7.0f images/s)\n", 1e3 * t, 1 / t);
    t = xv_bench_median(render_one, &c, 1.0);
    printf("  scene + cairo rendering           %8.3f ms  (%7.0f images/s)\n", 1e3 * t, 1 / t);
    t = xv_bench_median(encode_one, &c, 1.0);
    printf("  JPEG encoding (q90, 4:4:4)        %8.3f ms  (%7.0f images/s)\n", 1e3 * t, 1 / t);
    free(c.rgb);

    char dir[] = "/tmp/xv_bench_synth_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    printf("whole data set: %d train + 100 test images of %d px, all files written:\n", images, size);
    for (int threads = 1; threads <= 2; threads++) {
        xv_synth_params p = xv_synth_default_params();
        p.train_images = images;
        p.size = size;
        p.threads = threads;
        xv_synth_stats st;
        double t0 = xv_bench_now(), c0 = cpu_seconds();
        if (xv_synth_generate(&p, dir, &st) != XV_OK) {
            fprintf(stderr, "bench_synth: %s\n", xv_error_message());
            return 1;
        }
        double secs = xv_bench_now() - t0, cpu = cpu_seconds() - c0;
        printf("  %d thread%s  %6.2f s wall  %7.0f images/s   %.3f ms CPU per image\n", threads,
               threads > 1 ? "s" : " ", secs, (images + 100) / secs, 1e3 * cpu / (images + 100));
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    return 0;
}
