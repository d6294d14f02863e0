/* Evaluation metrics of the official fine-tuning scripts.
 *
 * Grounding (Grounding_bbox.py -> dataset/utils.py computeIoU): boxes are
 * (x, y, w, h) in pixels with the inclusive-pixel convention: x2 = x + w - 1;
 * the intersection counts only when ix1 < ix2 and iy1 < iy2 (strictly: boxes
 * overlapping by a single pixel row or column count as disjoint), and then has
 * area (ix2 - ix1 + 1)(iy2 - iy1 + 1); the union is w1·h1 + w2·h2 - inter (not
 * inclusive). A prediction is correct when IoU >= 0.5.
 *
 * Retrieval (Retrieval.py evaluation + itm_eval):
 * - score matrices start at -100; for each row only the k_test entries with
 *   the best ITC similarity (torch.topk) get a re-computed score (the ITM
 *   logit of class 1); the rest keep the -100 floor;
 * - a row is ranked as np.argsort(score)[::-1] orders it: descending score, and
 *   among equal scores the higher index first (the reverse of a stable
 *   ascending sort). numpy's default sort is only stable for rows of up to 16
 *   entries; longer rows may order exact ties differently there. Real ITM
 *   logits are not tied, so in practice ties are the -100 floor, where the rank
 *   is >= k_test either way and R@1/5/10 do not change for k_test >= 10;
 * - image->text: the best (smallest) rank among the image's texts; text->image:
 *   the rank of the text's image; R@K = 100·(fraction of ranks < K);
 *   r_mean = mean of the six R@K. */
#ifndef XV_TASKS_METRICS_H
#define XV_TASKS_METRICS_H

#include <stdint.h>

#include "core/error.h"

/* computeIoU of two (x, y, w, h) boxes. 0 when the union is not positive. */
double xv_iou_inclusive(const double a[4], const double b[4]);
/* IoU >= 0.5, the official "correct" rule. */
int xv_grounding_correct(const double pred[4], const double gt[4]);

/* 0-based position of `target` in row[0..n) ordered as np.argsort(row)[::-1]. */
int64_t xv_rank_in_row(const float *row, int64_t n, int64_t target);

/* Re-scores the k best columns `cols` of similarity row `row` (Retrieval.py: the
 * ITM class-1 logits of the pairs); writes k scores in the order of cols. */
typedef xv_status (*xv_rescore_fn)(void *user, int64_t row, const int64_t *cols, int64_t k, float *scores);

/* out[rows, cols] = -100 except, in each row, the min(k_test, cols) columns of
 * highest sims (xv_topk order), which get rescore's values. */
xv_status xv_retrieval_score_matrix(const float *sims, int64_t rows, int64_t cols, int64_t k_test,
                                    xv_rescore_fn rescore, void *user, float *out);

typedef struct {
    double txt_r1, txt_r5, txt_r10, txt_r_mean; /* image -> text */
    double img_r1, img_r5, img_r10, img_r_mean; /* text -> image */
    double r_mean;
} xv_retrieval_result;

/* The nine numbers of a result under itm_eval's keys, in the struct's order:
 * the one list that every JSON writer of recalls goes through. */
#define XV_RECALL_N 9
extern const char *const xv_recall_keys[XV_RECALL_N];
void xv_recall_values(const xv_retrieval_result *r, double v[XV_RECALL_N]);

/* itm_eval. scores_i2t [n_img, n_txt], scores_t2i [n_txt, n_img]; txt2img[t] is
 * text t's image (img2txt is its inverse: every text of an image counts). An
 * image without texts can never be a hit (its rank stays 1e20 in the official
 * code). ranks_i2t [n_img] / ranks_t2i [n_txt] (optional) receive the ranks
 * (INT64_MAX for an image without texts). */
xv_status xv_retrieval_eval(const float *scores_i2t, const float *scores_t2i, int64_t n_img, int64_t n_txt,
                            const int64_t *txt2img, int64_t *ranks_i2t, int64_t *ranks_t2i,
                            xv_retrieval_result *out);

#endif
