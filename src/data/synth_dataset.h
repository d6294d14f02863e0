/* The generated data set in memory, between sampling (synth_generate.c) and
 * writing (synth_output.c). Private to the synth module. */
#ifndef XV_DATA_SYNTH_DATASET_H
#define XV_DATA_SYNTH_DATASET_H

#include <stddef.h>

#include "data/synth.h"

/* A relation region of a training image: the box around two objects. */
typedef struct {
    int bb[4];
    char *text; /* "red circle left of blue square" */
} xv_synth_region;

#define XV_SYNTH_MAX_RELATION_REGIONS 2

typedef struct {
    xv_synth_scene scene;
    xv_rng rng;     /* the image's own stream, where sampling left it */
    char **captions; /* captions_per_image whole-image captions */
    xv_synth_region regions[XV_SYNTH_MAX_RELATION_REGIONS];
    int n_regions;
    char *refs[XV_SYNTH_MAX_OBJECTS]; /* a referring expression per object, NULL if none */
    bool ref_spatial[XV_SYNTH_MAX_OBJECTS]; /* refs[k] is a relation or an extreme, not attributes */
} xv_synth_image;

typedef struct {
    xv_synth_params p;
    int n_train, n_test;
    xv_synth_image *img; /* n_train training images, then n_test test images */
} xv_synth_dataset;

static inline bool xv_synth_is_test(const xv_synth_dataset *d, int i) { return i >= d->n_train; }
/* "images/train_000012.jpg": relative to the output folder (the image root). */
void xv_synth_image_path(const xv_synth_dataset *d, int i, char *buf, size_t cap);

/* Write every JSON file, world.json and vocab.txt into dir (synth_output.c). */
xv_status xv_synth_write_outputs(const xv_synth_dataset *d, const char *dir, const xv_synth_stats *stats);

/* vqa_train.json, vqa_test.json, answer_list.json, caption_train.json,
 * caption_test.json (synth_vqa.c). */
xv_status xv_synth_write_vqa_captioning(const xv_synth_dataset *d, const char *dir);

/* NLVR2 statements about image pairs and detector-like proposals
 * (synth_nlvr.c):
 *   nlvr_train.json, nlvr_dev.json, nlvr_test.json
 *       [{"images": [left, right], "sentence", "label": "True" | "False"}]: train
 *       pairs from the train images, dev and test from the two halves of the test images
 *   dets.json  {"<test image number>": [[x, y, w, h], ...]}: every true box, a jittered
 *       copy of each and two random boxes (the official det_file form) */
xv_status xv_synth_write_nlvr(const xv_synth_dataset *d, const char *dir);

#endif
