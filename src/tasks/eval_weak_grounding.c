#include "tasks/eval_weak_grounding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tasks/metrics.h"

/* PyTorch's cubic convolution kernels (upsample_bicubic2d, A = -0.75). */
#define CUBIC_A (-0.75f)
static float cubic1(float x) { return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1; }
static float cubic2(float x) { return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A; }

/* Source start index and the four tap weights of output index o. */
static int taps(int o, float scale, float w[4]) {
    float real = scale * ((float)o + 0.5f) - 0.5f; /* not clamped for cubic */
    float fl = floorf(real), t = real - fl;
    w[0] = cubic2(t + 1);
    w[1] = cubic1(t);
    w[2] = cubic1(1 - t);
    w[3] = cubic2(2 - t);
    return (int)fl - 1;
}

static int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

void xv_upsample_bicubic_torch(const float *in, int ih, int iw, float *out, int oh, int ow) {
    const float sy = (float)ih / (float)oh, sx = (float)iw / (float)ow;
    for (int y = 0; y < oh; y++) {
        float wy[4];
        int y0 = taps(y, sy, wy);
        for (int x = 0; x < ow; x++) {
            float wx[4];
            int x0 = taps(x, sx, wx);
            float acc = 0;
            for (int k = 0; k < 4; k++) {
                const float *row = in + (int64_t)clampi(y0 + k, ih - 1) * iw;
                float r = 0;
                for (int j = 0; j < 4; j++) r += row[clampi(x0 + j, iw - 1)] * wx[j];
                acc += r * wy[k];
            }
            out[(int64_t)y * ow + x] = acc;
        }
    }
}

/* Python's a[int(lo) : int(hi)] bounds on an axis of length n. */
static void py_slice(double lo, double hi, int n, int *start, int *stop) {
    long s = (long)lo, e = (long)hi; /* int(): toward zero */
    if (s < 0) s += n;
    if (e < 0) e += n;
    *start = (int)(s < 0 ? 0 : s > n ? n : s);
    *stop = (int)(e < 0 ? 0 : e > n ? n : e);
}

float xv_weak_box_score(const float *up, int H, int W, const double box[4], double alpha) {
    int y0, y1, x0, x1;
    py_slice(box[1], box[1] + box[3], H, &y0, &y1);
    py_slice(box[0], box[0] + box[2], W, &x0, &x1);
    double sum = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) sum += up[(int64_t)y * W + x];
    /* float32 tensor divided by a Python float: float32 arithmetic */
    return (float)sum / (float)pow(box[2] * box[3], alpha);
}

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
        float best = 0;
        int chosen = -1;
        for (int k = 0; k < e->n_dets; k++) {
            float s = out->box_scores[at + k] = xv_weak_box_score(up, e->height, e->width, e->dets[k], alpha);
            if (s > best) best = s, chosen = k;
        }
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
