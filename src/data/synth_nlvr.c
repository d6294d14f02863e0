/* NLVR2-style statements about pairs of generated images, and detector-like
 * proposals for weakly-supervised grounding (synth_dataset.h
 * xv_synth_write_nlvr). Every statement is checked against the two scenes;
 * about half are true. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "data/json_file.h"
#include "data/synth_dataset.h"

/* Separate from the image streams: the pairs change nothing else. */
#define NLVR_STREAM 0x6e6c7672ull
#define DETS_STREAM 0x64657473ull

static const char *const NUMBERS[] = {"no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};

static bool has(const xv_synth_scene *s, int shape, int colour) {
    for (int k = 0; k < s->n; k++)
        if ((int)s->obj[k].shape == shape && (colour < 0 || (int)s->obj[k].colour == colour)) return true;
    return false;
}

static int count(const xv_synth_scene *s, int shape) {
    int n = 0;
    for (int k = 0; k < s->n; k++) n += (int)s->obj[k].shape == shape;
    return n;
}

/* A statement about (l, r) whose truth is `want` when one can be made with
 * the drawn template; returns its truth (or -1: try another draw). */
static int statement(xv_rng *g, const xv_synth_scene *l, const xv_synth_scene *r, bool want, char *buf, size_t cap) {
    const int kind = (int)xv_rng_below(g, 4);
    if (kind == 0) { /* "the left image has a red circle" */
        const bool left = xv_rng_below(g, 2);
        const xv_synth_scene *s = left ? l : r;
        int shape, colour;
        if (want) {
            const xv_synth_object *o = &s->obj[xv_rng_below(g, (uint64_t)s->n)];
            shape = (int)o->shape, colour = (int)o->colour;
        } else {
            shape = (int)xv_rng_below(g, XV_SYNTH_N_SHAPES), colour = (int)xv_rng_below(g, XV_SYNTH_N_COLOURS);
        }
        snprintf(buf, cap, "the %s image has a %s %s", left ? "left" : "right", xv_synth_colour_names[colour],
                 xv_synth_shape_names[shape]);
        return has(s, shape, colour);
    }
    if (kind == 1) { /* "both images contain a square" */
        const xv_synth_scene *s = xv_rng_below(g, 2) ? l : r;
        int shape = want ? (int)s->obj[xv_rng_below(g, (uint64_t)s->n)].shape : (int)xv_rng_below(g, XV_SYNTH_N_SHAPES);
        snprintf(buf, cap, "both images contain a %s", xv_synth_shape_names[shape]);
        return has(l, shape, -1) && has(r, shape, -1);
    }
    if (kind == 2) { /* "there are three triangles in total" */
        const xv_synth_scene *s = xv_rng_below(g, 2) ? l : r;
        int shape = (int)s->obj[xv_rng_below(g, (uint64_t)s->n)].shape, n = count(l, shape) + count(r, shape);
        int said = want ? n : n + (xv_rng_below(g, 2) && n > 1 ? -1 : 1);
        if (said < 1 || said > 9) return -1;
        snprintf(buf, cap, said == 1 ? "there is %s %s in total" : "there are %s %s in total", NUMBERS[said],
                 said == 1 ? xv_synth_shape_names[shape] : xv_synth_shape_plurals[shape]);
        return said == n;
    }
    /* "the left image has more objects than the right one" */
    if (l->n == r->n) return -1;
    const bool left = xv_rng_below(g, 2);
    snprintf(buf, cap, "the %s image has more objects than the %s one", left ? "left" : "right", left ? "right" : "left");
    return left ? l->n > r->n : r->n > l->n;
}

/* Statements about images [first, last): image i on the left, a random other
 * one of the range on the right; each statement true with probability 1/2. */
static cJSON *pairs(const xv_synth_dataset *d, int first, int last, xv_rng *g) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = first; i < last && arr && last - first > 1; i++) {
        int j = first + (int)xv_rng_below(g, (uint64_t)(last - first - 1));
        if (j >= i) j++;
        const bool want = xv_rng_below(g, 2);
        char text[160];
        int truth = -1;
        for (int tries = 0; tries < 64 && truth != (int)want; tries++)
            truth = statement(g, &d->img[i].scene, &d->img[j].scene, want, text, sizeof text);
        if (truth < 0) continue;
        char a[64], b[64];
        xv_synth_image_path(d, i, a, sizeof a);
        xv_synth_image_path(d, j, b, sizeof b);
        cJSON *e = cJSON_CreateObject();
        const char *im[2] = {a, b};
        cJSON_AddItemToObject(e, "images", cJSON_CreateStringArray(im, 2));
        cJSON_AddStringToObject(e, "sentence", text);
        cJSON_AddStringToObject(e, "label", truth ? "True" : "False");
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

/* One proposal box [x, y, w, h] clipped to the image. */
static cJSON *box(double x, double y, double w, double h, int size) {
    if (x < 0) w += x, x = 0;
    if (y < 0) h += y, y = 0;
    if (x + w > size) w = size - x;
    if (y + h > size) h = size - y;
    const double v[4] = {(int)x, (int)y, (int)(w < 2 ? 2 : w), (int)(h < 2 ? 2 : h)};
    return cJSON_CreateDoubleArray(v, 4);
}

/* Detector-like proposals of a test image: every true box, a jittered copy of
 * each (centre moved and sides scaled by up to 25 %), and two random boxes. */
static cJSON *proposals(const xv_synth_scene *s, xv_rng *g) {
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; k < s->n; k++) {
        const int *b = s->obj[k].bb;
        cJSON_AddItemToArray(arr, box(b[0], b[1], b[2], b[3], s->size));
        double w = b[2] * (0.75 + 0.5 * xv_rng_uniform_double(g)), h = b[3] * (0.75 + 0.5 * xv_rng_uniform_double(g));
        double cx = b[0] + b[2] / 2.0 + b[2] * 0.25 * (2 * xv_rng_uniform_double(g) - 1);
        double cy = b[1] + b[3] / 2.0 + b[3] * 0.25 * (2 * xv_rng_uniform_double(g) - 1);
        cJSON_AddItemToArray(arr, box(cx - w / 2, cy - h / 2, w, h, s->size));
    }
    for (int k = 0; k < 2; k++) {
        double w = s->size * (0.15 + 0.35 * xv_rng_uniform_double(g)), h = s->size * (0.15 + 0.35 * xv_rng_uniform_double(g));
        cJSON_AddItemToArray(arr, box((s->size - w) * xv_rng_uniform_double(g), (s->size - h) * xv_rng_uniform_double(g), w,
                                      h, s->size));
    }
    return arr;
}

xv_status xv_synth_write_nlvr(const xv_synth_dataset *d, const char *dir) {
    xv_rng root, g;
    xv_rng_seed(&root, d->p.seed);
    g = xv_rng_split(&root, NLVR_STREAM);
    const int half = d->n_train + d->n_test / 2, end = d->n_train + d->n_test;
    XV_TRY(xv_json_write_file(dir, "nlvr_train.json", pairs(d, 0, d->n_train, &g), XV_JSON_PRETTY, XV_FS_DURABLE));
    XV_TRY(xv_json_write_file(dir, "nlvr_dev.json", pairs(d, d->n_train, half, &g), XV_JSON_PRETTY, XV_FS_DURABLE));
    XV_TRY(xv_json_write_file(dir, "nlvr_test.json", pairs(d, half, end, &g), XV_JSON_PRETTY, XV_FS_DURABLE));
    g = xv_rng_split(&root, DETS_STREAM);
    cJSON *dets = cJSON_CreateObject();
    for (int i = d->n_train; i < end && dets; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i - d->n_train);
        cJSON_AddItemToObject(dets, key, proposals(&d->img[i].scene, &g));
    }
    return xv_json_write_file(dir, "dets.json", dets, XV_JSON_PRETTY, XV_FS_DURABLE);
}
