#include "tasks/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "api/itc_topk.h"
#include "core/error.h"

double xv_iou_inclusive(const double a[4], const double b[4]) {
    double ix1 = fmax(a[0], b[0]), iy1 = fmax(a[1], b[1]);
    double ix2 = fmin(a[0] + a[2] - 1, b[0] + b[2] - 1), iy2 = fmin(a[1] + a[3] - 1, b[1] + b[3] - 1);
    double inter = ix1 < ix2 && iy1 < iy2 ? (ix2 - ix1 + 1) * (iy2 - iy1 + 1) : 0;
    double uni = a[2] * a[3] + b[2] * b[3] - inter;
    return uni > 0 ? inter / uni : 0;
}

const char *const xv_recall_keys[XV_RECALL_N] = {"txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1",
                                                 "img_r5", "img_r10", "img_r_mean", "r_mean"};

void xv_recall_values(const xv_retrieval_result *r, double v[XV_RECALL_N]) {
    const double all[XV_RECALL_N] = {r->txt_r1, r->txt_r5, r->txt_r10, r->txt_r_mean, r->img_r1,
                                     r->img_r5, r->img_r10, r->img_r_mean, r->r_mean};
    for (int k = 0; k < XV_RECALL_N; k++) v[k] = all[k];
}

int xv_grounding_correct(const double pred[4], const double gt[4]) { return xv_iou_inclusive(gt, pred) >= 0.5; }

int64_t xv_rank_in_row(const float *row, int64_t n, int64_t target) {
    /* Descending with ties broken towards the higher index: everything strictly
     * greater, plus the equal entries after target, comes first. */
    float s = row[target];
    int64_t rank = 0;
    for (int64_t j = 0; j < n; j++) rank += row[j] > s || (row[j] == s && j > target);
    return rank;
}

xv_status xv_retrieval_score_matrix(const float *sims, int64_t rows, int64_t cols, int64_t k_test,
                                    xv_rescore_fn rescore, void *user, float *out) {
    if (rows < 0 || cols < 0 || k_test < 1 || !rescore)
        return xv_error(XV_ERR_INVALID_ARG, "retrieval score matrix: rows %lld, cols %lld, k_test %lld",
                        (long long)rows, (long long)cols, (long long)k_test);
    int64_t k = k_test < cols ? k_test : cols;
    int64_t *idx = malloc(sizeof *idx * (size_t)(k ? k : 1));
    float *sc = malloc(sizeof *sc * (size_t)(k ? k : 1));
    if (!idx || !sc) {
        free(idx);
        free(sc);
        return xv_error(XV_ERR_NOMEM, "retrieval score matrix: out of memory");
    }
    xv_status st = XV_OK;
    for (int64_t r = 0; r < rows && st == XV_OK; r++) {
        float *o = out + r * cols;
        for (int64_t c = 0; c < cols; c++) o[c] = -100.0f;
        int64_t got = xv_topk(sims + r * cols, cols, k, idx);
        st = rescore(user, r, idx, got, sc);
        for (int64_t i = 0; st == XV_OK && i < got; i++) o[idx[i]] = sc[i];
    }
    free(idx);
    free(sc);
    return st;
}

static double pct_below(const int64_t *ranks, int64_t n, int64_t K) {
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) hits += ranks[i] < K;
    return n ? 100.0 * (double)hits / (double)n : 0;
}

xv_status xv_retrieval_eval(const float *scores_i2t, const float *scores_t2i, int64_t n_img, int64_t n_txt,
                            const int64_t *txt2img, int64_t *ranks_i2t, int64_t *ranks_t2i,
                            xv_retrieval_result *out) {
    if (n_img < 1 || n_txt < 1)
        return xv_error(XV_ERR_INVALID_ARG, "retrieval eval: %lld images and %lld texts (need >= 1 of each)",
                        (long long)n_img, (long long)n_txt);
    for (int64_t t = 0; t < n_txt; t++)
        if (txt2img[t] < 0 || txt2img[t] >= n_img)
            return xv_error(XV_ERR_INVALID_ARG, "retrieval eval: text %lld belongs to image %lld, outside [0, %lld)",
                            (long long)t, (long long)txt2img[t], (long long)n_img);
    int64_t *ri = malloc(sizeof *ri * (size_t)n_img), *rt = malloc(sizeof *rt * (size_t)n_txt);
    if (!ri || !rt) {
        free(ri);
        free(rt);
        return xv_error(XV_ERR_NOMEM, "retrieval eval: out of memory");
    }
    for (int64_t i = 0; i < n_img; i++) ri[i] = INT64_MAX;
    for (int64_t t = 0; t < n_txt; t++) {
        int64_t i = txt2img[t];
        int64_t r = xv_rank_in_row(scores_i2t + i * n_txt, n_txt, t);
        if (r < ri[i]) ri[i] = r;
        rt[t] = xv_rank_in_row(scores_t2i + t * n_img, n_img, i);
    }
    out->txt_r1 = pct_below(ri, n_img, 1);
    out->txt_r5 = pct_below(ri, n_img, 5);
    out->txt_r10 = pct_below(ri, n_img, 10);
    out->img_r1 = pct_below(rt, n_txt, 1);
    out->img_r5 = pct_below(rt, n_txt, 5);
    out->img_r10 = pct_below(rt, n_txt, 10);
    out->txt_r_mean = (out->txt_r1 + out->txt_r5 + out->txt_r10) / 3;
    out->img_r_mean = (out->img_r1 + out->img_r5 + out->img_r10) / 3;
    out->r_mean = (out->txt_r_mean + out->img_r_mean) / 2;
    if (ranks_i2t)
        for (int64_t i = 0; i < n_img; i++) ranks_i2t[i] = ri[i];
    if (ranks_t2i)
        for (int64_t t = 0; t < n_txt; t++) ranks_t2i[t] = rt[t];
    free(ri);
    free(rt);
    return XV_OK;
}
