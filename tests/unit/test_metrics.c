/* Metrics of the official evaluation scripts, on hand-made cases with known
 * answers (the retrieval ones cross-checked once against Retrieval.py's
 * itm_eval under numpy 1.24): inclusive-pixel IoU including the exact 0.5
 * boundary and the one-pixel-overlap quirk, ranks with ties, several captions
 * per image, the -100 floor outside the top k_test; and the ITC top-k. */
#include <math.h>
#include <stdlib.h>

#include "api/itc_topk.h"
#include "tasks/metrics.h"
#include "testutil.h"

static void test_iou(void) {
    const double a[4] = {10, 10, 20, 20};
    CHECK(xv_iou_inclusive(a, a) == 1.0, "identical boxes");
    const double far[4] = {100, 100, 5, 5};
    CHECK(xv_iou_inclusive(a, far) == 0.0, "disjoint boxes");
    /* Inclusive corners: (0,0,10,10) spans pixels 0..9; (9,0,10,10) 9..18.
     * They share column 9, but the official test is ix1 < ix2 (9 < 9 fails). */
    const double p[4] = {0, 0, 10, 10}, q[4] = {9, 0, 10, 10};
    CHECK(xv_iou_inclusive(p, q) == 0.0, "one shared pixel column counts as no overlap");
    /* (8,0,10,10): columns 8..9 -> inter = (9-8+1)·10 = 20, union 200-20 = 180. */
    const double q2[4] = {8, 0, 10, 10};
    CHECK(fabs(xv_iou_inclusive(p, q2) - 20.0 / 180.0) < 1e-15, "two shared columns: %g", xv_iou_inclusive(p, q2));
    /* Exactly 0.5: inter = 10·5 = 50 (rows 0..4), union = 100 + 50 - 50. */
    const double half[4] = {0, 0, 10, 5};
    CHECK(xv_iou_inclusive(p, half) == 0.5, "IoU exactly 0.5: %.17g", xv_iou_inclusive(p, half));
    CHECK(xv_grounding_correct(half, p) == 1, "IoU 0.5 counts as correct (>=)");
    const double under[4] = {0, 0, 10, 4.99};
    CHECK(xv_iou_inclusive(p, under) < 0.5 && !xv_grounding_correct(under, p), "IoU just below 0.5 is wrong");
    /* Fractional boxes (predictions are floats): inter 9.5·9.5, union 200 - 90.25. */
    const double fr[4] = {0.5, 0.5, 10, 10};
    CHECK(fabs(xv_iou_inclusive(fr, p) - 90.25 / 109.75) < 1e-15, "fractional: %g", xv_iou_inclusive(fr, p));
    CHECK(xv_iou_inclusive(fr, p) == xv_iou_inclusive(p, fr), "symmetric");
    const double empty[4] = {0, 0, 0, 0};
    CHECK(xv_iou_inclusive(empty, empty) == 0.0, "zero union gives 0, not NaN");
}

static void test_rank(void) {
    /* np.argsort([1,3,3,2])[::-1] = [2,1,3,0]: among the tied 3s the higher index comes first. */
    const float row[4] = {1, 3, 3, 2};
    CHECK(xv_rank_in_row(row, 4, 2) == 0 && xv_rank_in_row(row, 4, 1) == 1 && xv_rank_in_row(row, 4, 3) == 2 &&
              xv_rank_in_row(row, 4, 0) == 3,
          "ranks with a tie");
}

static void test_eval(void) {
    /* 3 images, 5 texts: image 0 has texts 0 and 1, image 1 text 2, image 2 texts 3 and 4. */
    const int64_t txt2img[5] = {0, 0, 1, 2, 2};
    const float i2t[3 * 5] = {
        -100, 2, -100, 3, -100, /* best GT (text 1) behind text 3: rank 1 */
        -100, -100, -100, 1, 0.5, /* GT text 2 on the -100 floor, tied with 0 and 1: rank 2 */
        5, -100, -100, 1, 1,     /* GT texts 3, 4 tied at 1: text 4 first, rank 1 */
    };
    const float t2i[5 * 3] = {
        1, 1, -100,       /* GT image 0 tied with image 1, which comes first: rank 1 */
        2, -100, -100,    /* rank 0 */
        -100, -100, -100, /* all on the floor: order 2, 1, 0, GT image 1 at rank 1 */
        0.1f, 0.2f, 0.3f, /* rank 0 */
        3, 2, 1,          /* rank 2 */
    };
    int64_t ri[3], rt[5];
    xv_retrieval_result r;
    CHECK_OK(xv_retrieval_eval(i2t, t2i, 3, 5, txt2img, ri, rt, &r));
    CHECK(ri[0] == 1 && ri[1] == 2 && ri[2] == 1, "i2t ranks %lld %lld %lld", (long long)ri[0], (long long)ri[1],
          (long long)ri[2]);
    CHECK(rt[0] == 1 && rt[1] == 0 && rt[2] == 1 && rt[3] == 0 && rt[4] == 2, "t2i ranks");
    CHECK(r.txt_r1 == 0 && r.txt_r5 == 100 && r.txt_r10 == 100, "txt R@1/5/10 %g %g %g", r.txt_r1, r.txt_r5, r.txt_r10);
    CHECK(r.img_r1 == 40 && r.img_r5 == 100 && r.img_r10 == 100, "img R@1/5/10 %g %g %g", r.img_r1, r.img_r5, r.img_r10);
    CHECK(fabs(r.r_mean - 73.33333333333333) < 1e-12, "r_mean %.15g (itm_eval: 73.33333333333334)", r.r_mean);

    /* An image without texts is never a hit. */
    const int64_t lonely[2] = {0, 0};
    const float s2[3 * 2] = {1, 2, 3, 4, 5, 6}, s2t[2 * 3] = {1, 0, 0, 1, 0, 0};
    CHECK_OK(xv_retrieval_eval(s2, s2t, 3, 2, lonely, ri, rt, &r));
    CHECK(ri[1] == INT64_MAX && ri[2] == INT64_MAX && fabs(r.txt_r10 - 100.0 / 3) < 1e-12, "image without texts");
    const int64_t broken[2] = {0, 5};
    CHECK(xv_retrieval_eval(s2, s2t, 3, 2, broken, NULL, NULL, &r) == XV_ERR_INVALID_ARG, "text of a missing image");
}

/* The fake ITM: 10·row + column, so every written cell is recognisable. */
static xv_status fake_itm(void *user, int64_t row, const int64_t *cols, int64_t k, float *scores) {
    int *calls = user;
    ++*calls;
    for (int64_t i = 0; i < k; i++) scores[i] = (float)(10 * row + cols[i]);
    return XV_OK;
}

static void test_score_matrix(void) {
    const float sims[2 * 5] = {0.1f, 0.9f, 0.5f, 0.9f, 0.2f, /* tie 0.9 at 1 and 3: both in the top 2 */
                               0.3f, 0.3f, 0.3f, 0.8f, 0.3f}; /* top 2: 3, then the lowest-index 0.3 (0) */
    float out[2 * 5];
    int calls = 0;
    CHECK_OK(xv_retrieval_score_matrix(sims, 2, 5, 2, fake_itm, &calls, out));
    const float want[2 * 5] = {-100, 1, -100, 3, -100, 10, -100, -100, 13, -100};
    int bad = 0;
    for (int i = 0; i < 10; i++) bad += out[i] != want[i];
    CHECK(bad == 0 && calls == 2, "k_test floor: -100 outside the top 2 of each row");
    /* A ground truth left on the floor ranks behind every re-scored entry. */
    CHECK(xv_rank_in_row(out, 5, 2) >= 2, "GT outside the top k_test ranks >= k_test");
    CHECK_OK(xv_retrieval_score_matrix(sims, 2, 5, 99, fake_itm, &calls, out));
    CHECK(out[0] == 0 && out[9] == 14, "k_test larger than the row re-scores everything");
    CHECK(xv_retrieval_score_matrix(sims, 2, 5, 0, fake_itm, &calls, out) == XV_ERR_INVALID_ARG, "k_test 0 refused");
}

static void test_topk(void) {
    const float s[7] = {0.5f, 2, NAN, 2, -1, 7, 0.5f};
    int64_t idx[7];
    CHECK(xv_topk(s, 7, 4, idx) == 4, "count");
    CHECK(idx[0] == 5 && idx[1] == 1 && idx[2] == 3 && idx[3] == 0, "best first, ties by lower index: %lld %lld %lld %lld",
          (long long)idx[0], (long long)idx[1], (long long)idx[2], (long long)idx[3]);
    CHECK(xv_topk(s, 7, 50, idx) == 7 && idx[4] == 6 && idx[5] == 4 && idx[6] == 2, "k clamped; NaN last");
    CHECK(xv_topk(s, 7, 0, idx) == 0, "k = 0");
    /* Against a full sort on a larger random row. */
    enum { N = 5000, K = 37 };
    float *x = malloc(sizeof *x * N);
    xv_test_fill_uniform(x, N, -1, 1, 5);
    for (int i = 0; i < N; i += 97) x[i] = 0.25f; /* ties */
    int64_t top[K];
    xv_topk(x, N, K, top);
    int bad = 0;
    for (int k = 0; k < K; k++) {
        int64_t better = 0;
        for (int64_t j = 0; j < N; j++) better += x[j] > x[top[k]] || (x[j] == x[top[k]] && j < top[k]);
        bad += better != k;
    }
    CHECK(bad == 0, "each of the top %d has exactly its rank of better entries", K);
    /* ITC scores: one dot product per row. */
    float f[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f}, q[4] = {0.5f, -1, 2, 0}, o[3];
    xv_itc_scores(f, 3, 4, q, o);
    CHECK(o[0] == 0.5f && o[1] == -1 && o[2] == 0.75f, "itc scores %g %g %g", o[0], o[1], o[2]);
    free(x);
}

int main(void) {
    test_iou();
    test_rank();
    test_eval();
    test_score_matrix();
    test_topk();
    return xv_test_finish("test_metrics");
}
