/* The REFER index of the official grounding scripts (refTools/refer_python3.py,
 * REFER(refcoco_data, 'refcoco+', 'unc'); xvlm-nlvr-grounding.md §3.4):
 *
 * - DATA/refcoco+/refs(unc).p: a Python pickle, a list of refs
 *   {ref_id, ann_id, image_id, split, category_id, sentences, ...}, read with
 *   the restricted unpickler in plain-data mode (nothing executed);
 * - DATA/refcoco+/instances.json: COCO, images {id, width, height},
 *   annotations {id, image_id, bbox [x, y, w, h]}.
 *
 * What Grounding_bbox.py reads of it: refToAnn[ref_id]['bbox'] (the ground
 * truth, pixels of the original image), Refs[ref_id]['split'] (val / testA /
 * testB decide the metric it counts in) and Imgs[image_id] width / height.
 *
 * Also the detector proposals of the weakly-supervised grounding (det_file,
 * refcoco+/dets.json): {str(image_id): [[x, y, w, h, ...], ...]}. */
#ifndef XV_TASKS_REFER_H
#define XV_TASKS_REFER_H

#include <stdint.h>

#include "core/error.h"

typedef enum {
    XV_REFER_OTHER, /* any other split string: counted in no metric, as officially */
    XV_REFER_TRAIN,
    XV_REFER_VAL,
    XV_REFER_TESTA,
    XV_REFER_TESTB
} xv_refer_split;

/* "train", "val", "testA", "testB", "other". */
const char *xv_refer_split_name(xv_refer_split s);

typedef struct {
    int64_t ref_id, ann_id, image_id;
    xv_refer_split split;
    double bbox[4]; /* the annotation's [x, y, w, h] */
    int width, height; /* of the image (instances.json) */
} xv_refer_ref;

typedef struct {
    int64_t n;
    xv_refer_ref *refs; /* sorted by ref_id */
    char *refs_path;    /* for messages */
} xv_refer;

/* refs_path: refs(unc).p; instances_path: instances.json. Every ref must name
 * an annotation and an image of instances.json; errors name the file, the
 * ref's position and the key. */
xv_status xv_refer_read(const char *refs_path, const char *instances_path, xv_refer *out);
/* REFER(data_root, dataset, split_by): DATA_ROOT/DATASET/refs(SPLIT_BY).p and
 * DATA_ROOT/DATASET/instances.json. */
xv_status xv_refer_load(const char *data_root, const char *dataset, const char *split_by, xv_refer *out);
void xv_refer_free(xv_refer *r);

/* The ref, or NULL when absent. */
const xv_refer_ref *xv_refer_find(const xv_refer *r, int64_t ref_id);

typedef struct {
    int64_t image_id;
    int64_t n;         /* proposals */
    double (*box)[4];  /* [n] x, y, w, h in pixels of the original image (the first four numbers) */
} xv_dets_image;

typedef struct {
    int64_t n;            /* images */
    xv_dets_image *images; /* sorted by image_id */
} xv_dets;

/* det_file: {"<image_id>": [[x, y, w, h, ...], ...], ...}. */
xv_status xv_dets_read(const char *path, xv_dets *out);
void xv_dets_free(xv_dets *d);
/* The proposals of an image, or NULL when the file has none for it. */
const xv_dets_image *xv_dets_find(const xv_dets *d, int64_t image_id);

#endif
