/* Generating the whole world: scenes and texts per image (each image from its
 * own RNG stream, so the work can be shared among threads without changing a
 * byte), test captions chosen to single out their image, then rendering. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/fs.h"
#include "data/image_write.h"
#include "data/synth_dataset.h"
#include "data/synth_text.h"
#include "core/error.h"
#include "core/threads.h"

/* Stream ids under the seed: one family per split. */
#define STREAM_TRAIN 1
#define STREAM_TEST 2
/* Draws per caption slot when looking for a caption that is new for the image
 * (and, in the test split, true of no other test image). */
#define CAPTION_TRIES 12

xv_synth_params xv_synth_default_params(void) {
    xv_synth_params p = {
        .seed = 1,
        .train_images = 1000,
        .test_images = 100,
        .size = 256,
        .captions_per_image = 5,
        .min_objects = 2,
        .max_objects = 4,
        .jpeg_quality = 90,
        .flip_invariant = false,
        .threads = 0,
        .progress = false,
    };
    return p;
}

void xv_synth_image_path(const xv_synth_dataset *d, int i, char *buf, size_t cap) {
    bool test = xv_synth_is_test(d, i);
    snprintf(buf, cap, "images/%s_%06d.jpg", test ? "test" : "train", test ? i - d->n_train : i);
}

/* ---- first failure of a parallel loop (lowest index wins: deterministic) ---- */
typedef struct {
    int index;
    xv_status status;
    char message[512];
} failure;

static void note_failure(failure *f, int i, xv_status st) {
#pragma omp critical(xv_synth_failure)
    if (i < f->index) {
        f->index = i;
        f->status = st;
        snprintf(f->message, sizeof f->message, "%s", xv_error_message());
    }
}

static char *dup_text(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* The style of caption slot k: five kinds in turn, from a full description to
 * a bare count, and two relations. */
static xv_synth_cap_style slot_style(xv_rng *r, int k) {
    switch (k % 5) {
    case 0: return xv_rng_uniform(r) < 0.5f ? XV_CAP_FULL : XV_CAP_SIZE_COLOUR;
    case 1: return xv_rng_uniform(r) < 0.5f ? XV_CAP_COLOUR : XV_CAP_COLOUR_PATTERN;
    case 2: return XV_CAP_COUNT;
    default: return XV_CAP_RELATION;
    }
}

static bool already_said(char **captions, int n, const char *text) {
    for (int k = 0; k < n; k++)
        if (!strcmp(captions[k], text)) return true;
    return false;
}

/* Test images among which `c` is true, counting no further than `stop`. */
static int test_matches(const xv_synth_dataset *d, const xv_synth_caption *c, int stop) {
    int n = 0;
    for (int j = d->n_train; j < d->n_train + d->n_test && n < stop; j++) n += xv_synth_caption_holds(c, &d->img[j].scene);
    return n;
}

/* Captions for image i. Training images: new for the image. Test images: also
 * true of as few test images as possible (ideally only this one; *unique counts
 * those); count captions still ambiguous halfway through the tries gain colours. */
static xv_status sample_captions(xv_synth_dataset *d, int i, int *unique) {
    xv_synth_image *im = &d->img[i];
    bool test = xv_synth_is_test(d, i);
    im->captions = calloc((size_t)d->p.captions_per_image, sizeof(char *));
    if (!im->captions) return xv_error(XV_ERR_NOMEM, "synth: captions of image %d", i);
    for (int k = 0; k < d->p.captions_per_image; k++) {
        xv_synth_cap_style style = slot_style(&im->rng, k);
        char best[XV_SYNTH_TEXT_MAX] = "", text[XV_SYNTH_TEXT_MAX];
        int best_matches = INT_MAX;
        for (int t = 0; t < CAPTION_TRIES; t++) {
            xv_synth_caption c;
            xv_synth_cap_style st = (test && style == XV_CAP_COUNT && t >= CAPTION_TRIES / 2) ? XV_CAP_COLOUR : style;
            xv_synth_caption_sample(&im->rng, &im->scene, st, d->p.flip_invariant, &c);
            xv_synth_caption_text(&c, text, sizeof text);
            bool repeat = already_said(im->captions, k, text);
            int matches = test ? test_matches(d, &c, best_matches) : 1;
            if (repeat) matches = INT_MAX - 1; /* only if nothing else turns up */
            if (matches < best_matches) best_matches = matches, memcpy(best, text, sizeof best);
            if (best_matches == 1) break;
        }
        if (!(im->captions[k] = dup_text(best))) return xv_error(XV_ERR_NOMEM, "synth: captions of image %d", i);
        if (unique) *unique += best_matches == 1;
    }
    return XV_OK;
}

/* Relation regions (training images): up to two different pairs. */
static xv_status sample_regions(xv_synth_dataset *d, int i) {
    xv_synth_image *im = &d->img[i];
    const xv_synth_scene *s = &im->scene;
    int pairs = s->n < 2 ? 0 : s->n == 2 ? 1 : XV_SYNTH_MAX_RELATION_REGIONS, first[2] = {-1, -1};
    for (int k = 0; k < pairs; k++) {
        int a, b;
        do { /* a pair not used yet (unordered) */
            a = (int)xv_rng_below(&im->rng, (uint64_t)s->n);
            b = (a + 1 + (int)xv_rng_below(&im->rng, (uint64_t)s->n - 1)) % s->n;
        } while (k == 1 && ((a == first[0] && b == first[1]) || (a == first[1] && b == first[0])));
        first[0] = a, first[1] = b;
        xv_synth_caption c;
        if (!xv_synth_region_caption(&im->rng, s, a, b, d->p.flip_invariant, &c)) continue;
        char text[XV_SYNTH_TEXT_MAX];
        xv_synth_relation_text(&c, text, sizeof text);
        xv_synth_region *g = &im->regions[im->n_regions];
        const int *p = s->obj[a].bb, *q = s->obj[b].bb;
        int x0 = p[0] < q[0] ? p[0] : q[0], y0 = p[1] < q[1] ? p[1] : q[1];
        int x1 = p[0] + p[2] > q[0] + q[2] ? p[0] + p[2] : q[0] + q[2];
        int y1 = p[1] + p[3] > q[1] + q[3] ? p[1] + p[3] : q[1] + q[3];
        g->bb[0] = x0, g->bb[1] = y0, g->bb[2] = x1 - x0, g->bb[3] = y1 - y0;
        if (!(g->text = dup_text(text))) return xv_error(XV_ERR_NOMEM, "synth: regions of image %d", i);
        im->n_regions++;
    }
    return XV_OK;
}

static xv_status sample_refs(xv_synth_dataset *d, int i) {
    xv_synth_image *im = &d->img[i];
    for (int k = 0; k < im->scene.n; k++) {
        xv_synth_expr e;
        if (!xv_synth_expr_sample(&im->rng, &im->scene, k, d->p.flip_invariant, &e)) continue;
        char text[XV_SYNTH_TEXT_MAX];
        xv_synth_expr_text(&e, text, sizeof text);
        if (!(im->refs[k] = dup_text(text))) return xv_error(XV_ERR_NOMEM, "synth: expressions of image %d", i);
        im->ref_spatial[k] = e.kind != XV_EXPR_ATTRIBUTES;
    }
    return XV_OK;
}

/* Phase 1: the scene and everything that depends on it alone. */
static xv_status sample_image(xv_synth_dataset *d, int i, const xv_rng *root) {
    xv_synth_image *im = &d->img[i];
    bool test = xv_synth_is_test(d, i);
    xv_rng family = xv_rng_split(root, test ? STREAM_TEST : STREAM_TRAIN);
    im->rng = xv_rng_split(&family, (uint64_t)(test ? i - d->n_train : i));
    XV_TRY(xv_synth_sample_scene(&im->rng, d->p.size, d->p.min_objects, d->p.max_objects, &im->scene));
    if (!test) {
        XV_TRY(sample_captions(d, i, NULL));
        XV_TRY(sample_regions(d, i));
    }
    return sample_refs(d, i);
}

static xv_status render_image(const xv_synth_dataset *d, int i, const char *dir, uint8_t *rgb) {
    char rel[64], path[4200];
    xv_synth_image_path(d, i, rel, sizeof rel);
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    XV_TRY(xv_synth_render(&d->img[i].scene, rgb));
    return xv_jpeg_write(path, rgb, d->p.size, d->p.size, d->p.jpeg_quality);
}

static xv_status check_params(const xv_synth_params *p) {
    if (p->train_images < 1 || p->train_images > 10000000)
        return xv_error(XV_ERR_INVALID_ARG, "synth: --images %d, expected 1..10000000", p->train_images);
    if (p->test_images < 1 || p->test_images > 1000000)
        return xv_error(XV_ERR_INVALID_ARG, "synth: --test-images %d, expected 1..1000000", p->test_images);
    if (p->size < XV_SYNTH_MIN_SIZE || p->size > XV_SYNTH_MAX_SIZE)
        return xv_error(XV_ERR_INVALID_ARG, "synth: --size %d, expected %d..%d", p->size, XV_SYNTH_MIN_SIZE,
                        XV_SYNTH_MAX_SIZE);
    if (p->captions_per_image < 1 || p->captions_per_image > 20)
        return xv_error(XV_ERR_INVALID_ARG, "synth: --captions %d, expected 1..20", p->captions_per_image);
    if (p->min_objects < 1 || p->max_objects > XV_SYNTH_MAX_OBJECTS || p->min_objects > p->max_objects)
        return xv_error(XV_ERR_INVALID_ARG, "synth: objects %d..%d, expected 1 <= min <= max <= %d", p->min_objects,
                        p->max_objects, XV_SYNTH_MAX_OBJECTS);
    if (p->jpeg_quality < 1 || p->jpeg_quality > 100)
        return xv_error(XV_ERR_INVALID_ARG, "synth: --quality %d, expected 1..100", p->jpeg_quality);
    return XV_OK;
}

static void free_dataset(xv_synth_dataset *d) {
    if (!d->img) return;
    for (int i = 0; i < d->n_train + d->n_test; i++) {
        xv_synth_image *im = &d->img[i];
        if (im->captions)
            for (int k = 0; k < d->p.captions_per_image; k++) free(im->captions[k]);
        free(im->captions);
        for (int k = 0; k < im->n_regions; k++) free(im->regions[k].text);
        for (int k = 0; k < XV_SYNTH_MAX_OBJECTS; k++) free(im->refs[k]);
    }
    free(d->img);
    d->img = NULL;
}

static void count(const xv_synth_dataset *d, xv_synth_stats *st) {
    st->train_images = d->n_train;
    st->test_images = d->n_test;
    for (int i = 0; i < d->n_train + d->n_test; i++) {
        const xv_synth_image *im = &d->img[i];
        bool test = xv_synth_is_test(d, i);
        st->captions += d->p.captions_per_image;
        if (!test) st->objects += im->scene.n, st->relation_regions += im->n_regions;
        for (int k = 0; k < im->scene.n; k++) {
            if (!im->refs[k])
                st->refs_skipped++;
            else if (test)
                st->refs_test++;
            else
                st->refs_train++;
        }
    }
}

xv_status xv_synth_generate(const xv_synth_params *p, const char *out_dir, xv_synth_stats *stats) {
    double t0 = xv_monotonic_seconds();
    XV_TRY(check_params(p));
    char images_dir[4200];
    snprintf(images_dir, sizeof images_dir, "%s/images", out_dir);
    XV_TRY(xv_fs_mkdir_p(out_dir));
    XV_TRY(xv_fs_mkdir_p(images_dir));

    xv_synth_dataset d = {.p = *p, .n_train = p->train_images, .n_test = p->test_images};
    int total = d.n_train + d.n_test, threads = p->threads > 0 ? p->threads : xv_get_threads();
    d.img = calloc((size_t)total, sizeof *d.img);
    int *unique = calloc((size_t)d.n_test, sizeof *unique);
    if (!d.img || !unique) {
        free(d.img);
        free(unique);
        return xv_error(XV_ERR_NOMEM, "synth: %d images", total);
    }
    xv_rng root;
    xv_rng_seed(&root, p->seed);
    failure fail = {INT_MAX, XV_OK, ""};

#pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < total; i++) {
        xv_status st = sample_image(&d, i, &root);
        if (st != XV_OK) note_failure(&fail, i, st);
    }
    /* Test captions look at every test scene, so they wait for phase 1. */
    if (fail.index == INT_MAX) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = d.n_train; i < total; i++) {
            xv_status st = sample_captions(&d, i, &unique[i - d.n_train]);
            if (st != XV_OK) note_failure(&fail, i, st);
        }
    }
    if (p->progress && fail.index == INT_MAX)
        fprintf(stderr, "synth: sampled %d scenes and their texts in %.1f s\n", total, xv_monotonic_seconds() - t0);

    int done = 0, step = total / 10 > 0 ? total / 10 : 1;
    if (fail.index == INT_MAX) {
#pragma omp parallel num_threads(threads)
        {
            uint8_t *rgb = malloc((size_t)p->size * (size_t)p->size * 3);
#pragma omp for schedule(static)
            for (int i = 0; i < total; i++) {
                xv_status st = rgb ? render_image(&d, i, out_dir, rgb)
                                   : xv_error(XV_ERR_NOMEM, "synth: image buffer %dx%d", p->size, p->size);
                if (st != XV_OK) note_failure(&fail, i, st);
                if (p->progress) {
                    int n;
#pragma omp atomic capture
                    n = ++done;
                    if (n % step == 0 || n == total) fprintf(stderr, "synth: %d/%d images rendered\n", n, total);
                }
            }
            free(rgb);
        }
    }
    xv_synth_stats st = {0};
    xv_status status = XV_OK;
    if (fail.index != INT_MAX) {
        status = xv_error(fail.status, "%s", fail.message);
    } else {
        count(&d, &st);
        for (int i = 0; i < d.n_test; i++) st.test_captions_unique += unique[i];
        st.seconds = xv_monotonic_seconds() - t0;
        status = xv_synth_write_outputs(&d, out_dir, &st);
        st.seconds = xv_monotonic_seconds() - t0;
    }
    if (status == XV_OK && stats) *stats = st;
    free(unique);
    free_dataset(&d);
    return status;
}
