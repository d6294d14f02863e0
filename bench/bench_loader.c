/* Pretraining loader throughput (pretrain_data.h) at 224 px with 1 and 2
 * worker threads, on a generated data set shaped like the official 4M one:
 * 640x480 JPEGs (COCO's size) embedded as base64 in JSON lines, captions of
 * COCO length, and region records with 3-6 boxes and an image caption.
 *
 * Measures the time from open to the N-th batch (startup and queue filling
 * included, so prefetching cannot flatter the rate) with the consumer doing
 * nothing else: the rate at which the loader can feed a trainer. Also the
 * process CPU time per image made (the batches prefetched beyond the N-th
 * included), which does not depend on how busy the machine is.
 *   image-text: batch_size 32 (the official 128 / 4), full pipeline
 *   regions:    max_images 16, batch_size 48 texts
 * Usage: bench_loader [n_batches] (default 8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "core/fs.h"
#include "core/rng.h"
#include "data/base64.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/pretrain_data.h"

enum { N_IMAGES = 48, N_FILES = 4, W = 640, H = 480 };

static const char *const k_words[] = {"a",    "the",  "red",   "blue",  "green", "car",  "dog", "cat",  "on",
                                      "in",   "of",   "man",   "woman", "tree",  "sky",  "big", "small", "with",
                                      "near", "road", "grass", "table", "white", "black", "is", "sitting", "park"};
enum { N_WORDS = sizeof k_words / sizeof *k_words };

static char g_dir[64];

/* A photo-like test image: smooth gradients, shapes and noise (JPEG of ~60 KiB). */
static void make_image(xv_image *im, xv_rng *r) {
    xv_image_new(im, W, H, "bench");
    int cx = (int)xv_rng_below(r, W), cy = (int)xv_rng_below(r, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = xv_image_px(im, x, y);
            int d = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / 1200;
            int noise = (int)(xv_rng_u32(r) & 15);
            p[0] = (uint8_t)((x * 200 / W + noise + d) & 255);
            p[1] = (uint8_t)((y * 180 / H + noise) & 255);
            p[2] = (uint8_t)((150 - d + noise) & 255);
        }
}

static void caption(xv_rng *r, char *out, size_t cap) {
    size_t k = 0;
    int n = 8 + (int)xv_rng_below(r, 8);
    for (int i = 0; i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", k_words[xv_rng_below(r, N_WORDS)]);
}

static void make_dataset(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/it", g_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rg", g_dir);
    mkdir(path, 0755);
    FILE *it[N_FILES], *rg[N_FILES];
    for (int k = 0; k < N_FILES; k++) {
        snprintf(path, sizeof path, "%s/it/part-%05d", g_dir, k);
        it[k] = fopen(path, "wb");
        snprintf(path, sizeof path, "%s/rg/part-%05d", g_dir, k);
        rg[k] = fopen(path, "wb");
    }
    xv_rng r;
    xv_rng_seed(&r, 2022);
    for (int i = 0; i < N_IMAGES; i++) {
        xv_image im;
        make_image(&im, &r);
        uint8_t *jpg;
        size_t n;
        if (xv_jpeg_encode(im.rgb, W, H, 90, &jpg, &n) != XV_OK) exit(1);
        char *enc = xv_base64_encode(jpg, n), cap[256];
        caption(&r, cap, sizeof cap);
        fprintf(it[i % N_FILES], "{\"binary\": \"%s\", \"caption\": \"%s\"}\n", enc, cap);
        fprintf(rg[i % N_FILES], "{\"binary\": \"%s\", \"caption\": \"%s\", \"elems\": [", enc, cap);
        int ne = 3 + (int)xv_rng_below(&r, 4);
        for (int e = 0; e < ne; e++) {
            int bw = 40 + (int)xv_rng_below(&r, W / 2), bh = 40 + (int)xv_rng_below(&r, H / 2);
            int bx = (int)xv_rng_below(&r, (uint64_t)(W - bw)), by = (int)xv_rng_below(&r, (uint64_t)(H - bh));
            fprintf(rg[i % N_FILES], "%s{\"bb\": [%d, %d, %d, %d], \"caption\": \"%s %s\", \"attributes\": \"%s\"}",
                    e ? ", " : "", bx, by, bw, bh, k_words[xv_rng_below(&r, N_WORDS)],
                    k_words[xv_rng_below(&r, N_WORDS)], k_words[2 + xv_rng_below(&r, 3)]);
        }
        fprintf(rg[i % N_FILES], "]}\n");
        free(enc);
        free(jpg);
        xv_image_free(&im);
    }
    for (int k = 0; k < N_FILES; k++) fclose(it[k]), fclose(rg[k]);
    snprintf(path, sizeof path, "%s/vocab.txt", g_dir);
    FILE *v = fopen(path, "wb");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", v);
    for (int i = 0; i < N_WORDS; i++) fprintf(v, "%s\n", k_words[i]);
    fclose(v);
}

static void run(xv_pretrain_kind kind, int workers, int n_batches) {
    char files[512], vocab[512];
    snprintf(files, sizeof files, "%s/%s", g_dir, kind == XV_PRETRAIN_IMAGES ? "it" : "rg");
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_dir);
    const char *entries[] = {files};
    xv_pretrain_config c = xv_pretrain_config_default(kind);
    c.files = entries;
    c.n_files = 1;
    c.vocab_path = vocab;
    c.num_workers = workers;
    c.batch_size = kind == XV_PRETRAIN_IMAGES ? 32 : 48;
    c.max_images = 16;
    double t0 = xv_bench_now(), c0 = xv_cpu_seconds();
    xv_pretrain_loader *l;
    if (xv_pretrain_open(&c, 0, 1, 7, &l) != XV_OK) {
        fprintf(stderr, "open: %s\n", xv_error_message());
        exit(1);
    }
    int64_t images = 0, texts = 0;
    for (int i = 0; i < n_batches; i++) {
        xv_pretrain_batch b;
        if (xv_pretrain_next(l, &b) != XV_OK) {
            fprintf(stderr, "next: %s\n", xv_error_message());
            exit(1);
        }
        images += b.n_images;
        texts += b.n_texts;
    }
    double dt = xv_bench_now() - t0;
    /* The workers go on until their queues are full: N + workers·prefetch
     * batches in all. Wait for them to idle, then count CPU time per image made. */
    double cpu = xv_cpu_seconds(), prev;
    do {
        prev = cpu;
        usleep(100 * 1000);
        cpu = xv_cpu_seconds();
    } while (cpu - prev > 0.002);
    cpu -= c0;
    int per_batch = kind == XV_PRETRAIN_IMAGES ? c.batch_size : c.max_images;
    double made = (double)(n_batches + workers * c.prefetch) * per_batch;
    xv_pretrain_close(l);
    printf("%-10s  workers %d  %3d batches  %6.2f s  %6.2f batches/s  %6.1f images/s  %6.1f texts/s  "
           "(%5.2f CPU-s: %5.1f images per CPU-s)\n",
           kind == XV_PRETRAIN_IMAGES ? "image-text" : "regions", workers, n_batches, dt, n_batches / dt,
           (double)images / dt, (double)texts / dt, cpu, made / cpu);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int n_batches = argc > 1 ? atoi(argv[1]) : 8;
    if (n_batches <= 0) n_batches = 8;
    snprintf(g_dir, sizeof g_dir, "/tmp/xv_bench_loader_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    double t0 = xv_bench_now();
    make_dataset();
    printf("bench_loader: %d images %dx%d as base64 JPEG in %d files (generated in %.1f s), 224 px, %ld CPUs\n",
           N_IMAGES, W, H, N_FILES, xv_bench_now() - t0, sysconf(_SC_NPROCESSORS_ONLN));
    for (int workers = 1; workers <= 2; workers++) run(XV_PRETRAIN_IMAGES, workers, n_batches);
    for (int workers = 1; workers <= 2; workers++) run(XV_PRETRAIN_REGIONS, workers, n_batches);
    printf("peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return 0;
}
