/* The evaluation files of the official fine-tuning scripts, read for
 * `xvlm evaluate`:
 *
 * - retrieval (re_eval_dataset, COCO-Karpathy style): a JSON array of
 *   {"image": path, "caption": [str, ...] | str}; texts are numbered in file
 *   order, image by image, as Retrieval.py builds txt2img / img2txt;
 * - grounding (RefCOCO+ with the box inline, the VLUE format of
 *   grounding_eval_bbox_vlue): a JSON array of {"image": path, "text": str,
 *   "bbox": [x, y, w, h] pixels, "width"?, "height"?, "ref_id"?}.
 *
 * Relative image paths are joined to image_root (NULL or "": as written).
 * Errors name the file, the element index and the key. */
#ifndef XV_TASKS_EVAL_DATA_H
#define XV_TASKS_EVAL_DATA_H

#include <stdint.h>

#include "core/error.h"

/* Evaluation files larger than this are refused before reading (the COCO
 * Karpathy test file is 1.5 MB, RefCOCO+ 2 MB). */
#define XV_EVAL_MAX_FILE_BYTES (INT64_C(1) << 30)

typedef struct {
    int64_t n_images, n_texts;
    char **image_paths; /* [n_images], image_root joined */
    char **texts;       /* [n_texts] as written (cleaning happens at encoding) */
    int64_t *txt2img;   /* [n_texts] */
} xv_retrieval_set;

xv_status xv_retrieval_set_read(const char *json_path, const char *image_root, xv_retrieval_set *out);
void xv_retrieval_set_free(xv_retrieval_set *s);

typedef struct {
    int64_t n;          /* expressions */
    char **texts;       /* [n] */
    int64_t *image;     /* [n] index into image_paths */
    double (*bbox)[4];  /* [n] ground truth (x, y, w, h) in pixels of the original image */
    int (*size)[2];     /* [n] width, height as the file states them (0, 0 when absent) */
    int64_t n_images;
    char **image_paths; /* distinct images, in order of first appearance, image_root joined */
} xv_grounding_set;

xv_status xv_grounding_set_read(const char *json_path, const char *image_root, xv_grounding_set *out);
void xv_grounding_set_free(xv_grounding_set *s);

/* The mean-box baseline: the mean over the set of (x/W, y/H, w/W, h/H), each
 * box divided by its image's stated size. Fails, naming the entry, when a
 * width or height is absent. */
xv_status xv_grounding_mean_box(const xv_grounding_set *s, const char *label, double out[4]);

#endif
