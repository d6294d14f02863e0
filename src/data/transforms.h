/* The official X-VLM image transforms (dataset/__init__.py, pretrain_dataset.py,
 * grounding_dataset.py), on 8-bit RGB images.
 *
 * Test transform: Resize((R,R), bicubic) -> ToTensor -> Normalize with CLIP's
 * statistics, giving float [3,R,R]. Training transforms draw from a seeded
 * xv_rng: RandomResizedCrop (torchvision 0.8.2's rule), horizontal flip, the
 * region crop of region/grounding batches that recomputes boxes, and the
 * RandomAugment of augment.h. */
#ifndef XV_DATA_TRANSFORMS_H
#define XV_DATA_TRANSFORMS_H

#include <stdbool.h>

#include "core/rng.h"
#include "data/image.h"
#include "data/resize.h"

/* Normalisation of every task (CLIP statistics), as float32 like torch. */
extern const float xv_image_mean[3];
extern const float xv_image_std[3];

/* ToTensor + Normalize: out[c][y][x] = (u8/255 - mean[c]) / std[c] in float32,
 * the same operations and rounding as torchvision; out holds 3·H·W floats. */
void xv_image_normalize(const xv_image *im, float *out);

/* The official test transform: PIL bicubic resize to res x res (no aspect
 * preservation), then normalise into out[3·res·res]. */
xv_status xv_transform_test(const xv_image *im, int res, float *out);

/* ---- RandomResizedCrop (torchvision 0.8.2) ----
 * Up to 10 tries: area fraction ~ U(scale_min, scale_max), log aspect ~
 * U(log ratio_min, log ratio_max), w = round(sqrt(A·r)), h = round(sqrt(A/r))
 * (Python rounding: half to even); accepted if 0 < w <= W and 0 < h <= H, with
 * the corner uniform over the valid positions. Otherwise the fallback: the
 * whole image clamped to the ratio range, centred. */
typedef struct {
    double scale_min, scale_max; /* pretraining (0.2, 1), fine-tuning (0.5, 1) */
    double ratio_min, ratio_max; /* (3/4, 4/3) */
} xv_rrc_params;
xv_rrc_params xv_rrc_default(double scale_min);

typedef struct { int x, y, w, h; } xv_rect;
xv_rect xv_rrc_draw(xv_rng *r, int width, int height, const xv_rrc_params *p);
/* Draw a rectangle, crop it and resize to res x res (PIL bicubic). */
xv_status xv_random_resized_crop(xv_rng *r, const xv_image *im, int res, const xv_rrc_params *p, xv_image *out);

/* Mirror left-right in place. */
void xv_image_hflip(xv_image *im);
/* A coin with probability 0.5 (RandomHorizontalFlip's draw). */
bool xv_rng_coin(xv_rng *r);

/* ---- the official training pipelines (dataset/__init__.py), to float [3,R,R] ---- */
typedef enum {
    XV_TRAIN_PRETRAIN,       /* RandomResizedCrop(R, scale 0.2..1) -> flip 0.5 -> RandAug(10 ops) */
    XV_TRAIN_FINETUNE,       /* RandomResizedCrop(R, scale 0.5..1) -> flip 0.5 -> RandAug(10 ops) */
    XV_TRAIN_FINETUNE_NOFLIP, /* VQA: as FINETUNE without the flip (the dataset flips, carefully) */
    XV_TRAIN_RESIZE_FLIP,    /* weakly-supervised grounding: Resize((R,R)) -> flip 0.5 -> RandAug(10 ops) */
    XV_TRAIN_BOX             /* region / box grounding, after xv_region_crop_apply: RandAug(5 colour ops) */
} xv_train_transform;

/* Apply one official training transform and normalise into out[3·res·res].
 * XV_TRAIN_BOX expects an image already res x res. */
xv_status xv_transform_train(xv_rng *r, const xv_image *im, int res, xv_train_transform kind, float *out);
/* The same with the RandomResizedCrop rectangle's parameters given (NULL = the
 * official ones); ignored by the kinds that do not crop. */
xv_status xv_transform_train_crop(xv_rng *r, const xv_image *im, int res, xv_train_transform kind,
                                  const xv_rrc_params *crop, float *out);

/* ---- captions and flips ----
 * The official code never rewrites captions when it flips. With careful_hflip
 * (grounding; VQA always; region pretraining only if configured) it skips the
 * flip when "left" or "right" occurs anywhere as a substring: "bright" or
 * "leftover" also block it. */
bool xv_text_mentions_left_right(const char *text);
/* Not used by the official pipeline: an alternative that keeps a flipped
 * sample consistent by swapping the whole words left<->right (and Left/Right,
 * LEFT/RIGHT) instead of skipping the flip. Returns a malloc'd string. */
char *xv_text_swap_left_right(const char *text);

typedef enum {
    XV_FLIP_ALWAYS_ALLOWED = 0, /* pretraining regions (careful_hflip off) */
    XV_FLIP_CAREFUL,            /* official careful_hflip: no flip if a text mentions left/right */
    XV_FLIP_SWAP_WORDS          /* flip and swap left/right in the texts (non-official option) */
} xv_flip_policy;
/* Whether a sample whose texts are texts[0..n) may be flipped under `policy`
 * (with XV_FLIP_SWAP_WORDS the caller then swaps the words of every text). */
bool xv_flip_allowed(xv_flip_policy policy, const char *const *texts, int n);
/* The VQA training flip (vqa_dataset.py, careful_hflip always on): a coin
 * with p 0.5 is drawn for every sample, and heads flips the whole image
 * (before the crop) unless "left" or "right" is a substring of the question
 * or of one of its answers (case-sensitive, as the official `in`). */
bool xv_vqa_flip_draw(xv_rng *r, const char *question, const char *const *answers, int n_answers);

/* ---- region crop (region pretraining batches and box grounding) ----
 * 1. crop corners x0 ~ U{0..floor(x)}, y0 ~ U{0..floor(y)},
 *    x1 ~ U{min(ceil(x+w), W)..W}, y1 ~ U{min(ceil(y+h), H)..H} around the anchor
 *    box, so the anchor stays inside; 2. flip with p 0.5 (if allowed);
 * 3. resize the crop to res x res. Boxes are (x, y, w, h) in pixels. */
typedef struct { double x, y, w, h; } xv_box;

typedef struct {
    int x0, y0, w0, h0; /* the crop in the source image */
    bool flipped;
    int res;
} xv_region_crop;

/* Draw the crop and the flip. `allow_flip` false = the careful_hflip skip (the
 * coin is still drawn, as in the official code). Fails if the anchor is not a
 * non-empty box inside the width x height image. */
xv_status xv_region_crop_draw(xv_rng *r, int width, int height, xv_box anchor, bool allow_flip, int res,
                              xv_region_crop *out);
/* Crop, flip and resize the image as drawn. */
xv_status xv_region_crop_apply(const xv_image *im, const xv_region_crop *c, xv_image *out);
/* Map a source box into the res x res output: intersect with the crop; keep it
 * only if the part inside covers more than min_fraction of the box's area
 * (strictly; pass -1 to keep any non-empty part); shift, mirror if flipped,
 * scale. Returns false when the box is dropped. */
bool xv_region_crop_box(const xv_region_crop *c, xv_box in, double min_fraction, xv_box *out);
/* The regression target of a mapped box: (cx/res, cy/res, w/res, h/res). */
void xv_box_target(const xv_box *b, int res, float target[4]);

#endif
