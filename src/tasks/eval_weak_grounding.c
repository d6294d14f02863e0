#include "tasks/eval_weak_grounding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tasks/metrics.h"

void xv_weak_grounding_result_free(xv_weak_grounding_result *r) {
    if (!r) return;
    free(r->box_scores);
    free(r->chosen);
    free(r->box);
    free(r->iou);
    free(r->correct);
    memset(r, 0, sizeof *r);
}

xv_status xv_weak_grounding_eval(const xv_weak_ref *refs, int n_refs, int n, double alpha,
                                 xv_weak_grounding_result *out, float **upsampled) {
    memset(out, 0, sizeof *out);
    int64_t total_dets = 0;
    for (int r = 0; r < n_refs; r++) {
        const xv_weak_ref *e = &refs[r];
        if (e->height < 1 || e->width < 1 || e->n_dets < 0 || (e->n_dets && !e->dets) || !e->map ||
            (unsigned)e->split >= XV_N_SPLITS)
            return xv_error(XV_ERR_INVALID_ARG, "weak grounding: expression %d: bad size %dx%d, proposals or split", r,
                            e->width, e->height);
        total_dets += e->n_dets;
    }
    out->box_scores = malloc(sizeof(float) * (size_t)(total_dets ? total_dets : 1));
    out->chosen = malloc(sizeof(int) * (size_t)(n_refs ? n_refs : 1));
    out->box = malloc(sizeof(double[4]) * (size_t)(n_refs ? n_refs : 1));
    out->iou = malloc(sizeof(double) * (size_t)(n_refs ? n_refs : 1));
    out->correct = malloc(sizeof(int) * (size_t)(n_refs ? n_refs : 1));
    if (!out->box_scores || !out->chosen || !out->box || !out->iou || !out->correct) {
        xv_weak_grounding_result_free(out);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; upsampled && r < n_refs; r++) upsampled[r] = NULL;
    int count[XV_N_SPLITS] = {0}, hits[XV_N_SPLITS] = {0};
    const double *prev = NULL;
    int64_t at = 0;
    xv_status st = XV_OK;
    for (int r = 0; r < n_refs && st == XV_OK; r++) {
        const xv_weak_ref *e = &refs[r];
        float *up = malloc(sizeof(float) * (size_t)e->height * (size_t)e->width);
        if (!up) {
            st = xv_error(XV_ERR_NOMEM, "out of memory for a %dx%d map", e->width, e->height);
            break;
        }
        xv_upsample_bicubic_torch(e->map, n, n, up, e->height, e->width);
        for (int k = 0; k < e->n_dets; k++)
            out->box_scores[at + k] = xv_weak_box_score(up, e->height, e->width, e->dets[k], alpha);
        int chosen = xv_weak_choose(out->box_scores + at, e->n_dets);
        at += e->n_dets;
        if (upsampled) upsampled[r] = up;
        else free(up);
        if (chosen >= 0) prev = e->dets[chosen];
        if (!prev) {
            st = xv_error(XV_ERR_INVALID_ARG, "weak grounding: expression %d has no proposal with a positive score "
                          "(the official evaluation fails here)", r);
            break;
        }
        out->chosen[r] = chosen;
        memcpy(out->box[r], prev, sizeof(double[4]));
        out->iou[r] = xv_iou_inclusive(e->gt, prev);
        out->correct[r] = out->iou[r] >= 0.5;
        count[e->split]++;
        hits[e->split] += out->correct[r];
    }
    for (int s = 0; s < XV_N_SPLITS; s++) out->accuracy[s] = count[s] ? (double)hits[s] / (double)count[s] : NAN;
    if (st != XV_OK) xv_weak_grounding_result_free(out);
    return st;
}
