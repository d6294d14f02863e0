/* RandomAugment of the official dataset/randaugment.py (N=2, M=7), on 8-bit RGB.
 *
 * Two ops are drawn with replacement from the op set (10 ops for image
 * batches, the first 5 "colour" ops for region/box batches); each is applied
 * with probability 0.5. Magnitudes at M=7: enhance factor 0.7·1.8+0.1 = 1.36,
 * shear ±0.21, translate ±7 px, rotate ±21°; signs drawn with p 0.5.
 *
 * Each op reproduces the official numpy/OpenCV arithmetic, including its quirks:
 * - AutoContrast: the offset is computed as `-low * scale` on a numpy uint8
 *   `low`, which wraps to (256-low) mod 256; a channel whose minimum is above 0
 *   therefore becomes all 255. Reproduced, not corrected.
 * - Equalize: PIL's rule as the official numpy code writes it (float32 sums).
 * - Brightness: float32 table i·f, clipped, truncated.
 * - Sharpness: 3x3 kernel [[1,1,1],[1,5,1],[1,1,1]]/13 (float32, rounded to
 *   u8 like cv2.filter2D) blended as float32 on the interior only; the final
 *   float->uint8 cast truncates and wraps modulo 256 like numpy's astype on x86.
 * - Shear/Translate/Rotate: cv2.warpAffine with bilinear interpolation in
 *   OpenCV's fixed point (coordinates in 1/1024 then 1/32 px, 15-bit weights),
 *   constant border (128,128,128). Rotation about (W/2, H/2) as
 *   cv2.getRotationMatrix2D builds it. */
#ifndef XV_DATA_AUGMENT_H
#define XV_DATA_AUGMENT_H

#include "core/rng.h"
#include "data/image.h"

typedef enum {
    XV_AUG_IDENTITY = 0,
    XV_AUG_AUTOCONTRAST,
    XV_AUG_EQUALIZE,
    XV_AUG_BRIGHTNESS,
    XV_AUG_SHARPNESS,
    XV_AUG_SHEAR_X,
    XV_AUG_SHEAR_Y,
    XV_AUG_TRANSLATE_X,
    XV_AUG_TRANSLATE_Y,
    XV_AUG_ROTATE,
    XV_AUG_COUNT
} xv_aug_op;

#define XV_AUG_ALL_OPS 10   /* pretraining / fine-tuning image transforms */
#define XV_AUG_COLOUR_OPS 5 /* region and box-grounding transforms */

const char *xv_aug_name(xv_aug_op op);

/* RandomAugment(2, 7) over the first `n_ops` ops of the list above (10 or 5),
 * in place. */
xv_status xv_randaugment(xv_rng *r, xv_image *im, int n_ops);

/* The ops with explicit arguments (the official *_func functions). */
void xv_aug_autocontrast(xv_image *im);
void xv_aug_equalize(xv_image *im);
void xv_aug_brightness(xv_image *im, double factor);
xv_status xv_aug_sharpness(xv_image *im, double factor);
/* Forward 2x3 matrix (source -> destination pixel coordinates), as given to
 * cv2.warpAffine without WARP_INVERSE_MAP. */
xv_status xv_aug_warp_affine(xv_image *im, const double m[6]);
xv_status xv_aug_shear_x(xv_image *im, double factor);
xv_status xv_aug_shear_y(xv_image *im, double factor);
xv_status xv_aug_translate_x(xv_image *im, double offset);
xv_status xv_aug_translate_y(xv_image *im, double offset);
xv_status xv_aug_rotate(xv_image *im, double degrees);

#endif
