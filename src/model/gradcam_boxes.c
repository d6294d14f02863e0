#include "model/gradcam_boxes.h"

#include <math.h>

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

int xv_weak_choose(const float *scores, int n) {
    float best = 0;
    int chosen = -1;
    for (int k = 0; k < n; k++)
        if (scores[k] > best) best = scores[k], chosen = k;
    return chosen;
}
