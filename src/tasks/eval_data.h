/* The data files of the official fine-tuning scripts (Retrieval.py,
 * Grounding_bbox.py), read for `xvlm finetune` and `xvlm evaluate`:
 *
 * - retrieval (re_train_dataset / re_eval_dataset, COCO-Karpathy style): a
 *   JSON array of {"image": path, "caption": [str, ...] | str}; texts are
 *   numbered in file order, image by image, as Retrieval.py builds txt2img /
 *   img2txt;
 * - grounding (grounding_dataset_bbox): a JSON array of {"image": path,
 *   "text": str, "ref_id": int}, the box and the split coming from the REFER
 *   index (refer.h) as the official code takes them; without an index, the
 *   VLUE format of grounding_eval_bbox_vlue with the box inline:
 *   {"image", "text", "bbox": [x, y, w, h] pixels, "width"?, "height"?}.
 *
 * A list of files is read in full, concatenated in order (the official
 * datasets do `for f in ann_file: self.ann += json.load(open(f))`).
 * Relative image paths are joined to images->root (NULL policy or root: as
 * written, i.e. from the working directory); with a root, an image that
 * resolves outside it (after "..", symbolic links, or absolute) is refused
 * unless images->allow_outside_root (core/fs.h's dataset path policy). Errors name the file, the element index in it
 * and the key. */
#ifndef XV_TASKS_EVAL_DATA_H
#define XV_TASKS_EVAL_DATA_H

#include <stdint.h>

#include "core/error.h"
#include "core/fs.h"
#include "tasks/refer.h"

/* Evaluation files larger than this are refused before reading (the COCO
 * Karpathy test file is 1.5 MB, RefCOCO+ 2 MB). */
#define XV_EVAL_MAX_FILE_BYTES (INT64_C(1) << 30)

typedef struct {
    int64_t n_images, n_texts;
    char **image_paths; /* [n_images], the root joined */
    char **texts;       /* [n_texts] as written (cleaning happens at encoding) */
    int64_t *txt2img;   /* [n_texts] */
} xv_retrieval_set;

xv_status xv_retrieval_set_read(const char *json_path, const xv_fs_root *images, xv_retrieval_set *out);
xv_status xv_retrieval_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                      xv_retrieval_set *out);
void xv_retrieval_set_free(xv_retrieval_set *s);

typedef struct {
    int64_t n;          /* expressions */
    char **texts;       /* [n] */
    int64_t *image;     /* [n] index into image_paths */
    double (*bbox)[4];  /* [n] ground truth (x, y, w, h) in pixels of the original image */
    int (*size)[2];     /* [n] width, height as the file (or REFER) states them (0, 0 when absent) */
    int64_t *ref_id;    /* [n] the entry's ref_id (-1 when absent) */
    xv_refer_split *split; /* [n] the ref's REFER split (XV_REFER_OTHER without REFER) */
    int64_t n_images;
    char **image_paths; /* distinct images, in order of first appearance, the root joined */
} xv_grounding_set;

/* Without REFER: the VLUE format, boxes inline. */
xv_status xv_grounding_set_read(const char *json_path, const xv_fs_root *images, xv_grounding_set *out);
/* refer NULL: boxes inline; else every entry needs a "ref_id" of the index,
 * which gives its box, image size and split. */
xv_status xv_grounding_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                      const xv_refer *refer, xv_grounding_set *out);
void xv_grounding_set_free(xv_grounding_set *s);

/* The mean-box baseline: the mean over the set of (x/W, y/H, w/W, h/H), each
 * box divided by its image's stated size. Fails, naming the entry, when a
 * width or height is absent. */
xv_status xv_grounding_mean_box(const xv_grounding_set *s, const char *label, double out[4]);

/* NLVR2 (dataset/nlvr_dataset.py): a JSON list of {"images": [left, right],
 * "sentence": str, "label": "True" | "False"} (any other label is an error
 * naming the entry, as the official dataset raises). */
typedef struct {
    int64_t n;          /* statements */
    char **sentences;   /* [n] as written */
    int32_t *label;     /* [n] 1 = "True", 0 = "False" */
    int64_t (*pair)[2]; /* [n] left, right: indices into image_paths */
    int64_t n_images;
    char **image_paths; /* distinct images, in order of first appearance, image_root joined */
} xv_nlvr_set;

xv_status xv_nlvr_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                 xv_nlvr_set *out);

/* The path to open for an image a dataset entry names, under the one dataset
 * path policy (core/fs.h's xv_fs_resolve): `name` joined to the root; a name
 * resolving outside the root (unless allow_outside_root), or holding a NUL
 * escape, is refused with a message saying why (callers add the file and
 * entry: an evaluation or a fine-tuning run that silently dropped images
 * would report another split's numbers). A missing or unreadable image is
 * kept: loading it reports that. The joined name is returned rather than the
 * real path, as results print it. */
xv_status xv_dataset_image_path(const xv_fs_root *images, const char *name, char **out);
void xv_nlvr_set_free(xv_nlvr_set *s);

#endif
