/* Relative-position table interpolation (official X-VLM / BEiT loader). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/relpos_interp.h"
#include "testutil.h"

/* The official bisection gives these ratios (architecture notes §2.12). */
static void test_ratio(void) {
    double q23 = xv_relpos_ratio(13, 23), q29 = xv_relpos_ratio(13, 29);
    CHECK(fabs(q23 - 1.2407239723) < 1e-10, "q(13->23) = %.12f", q23);
    CHECK(fabs(q29 - 1.3375149727) < 1e-10, "q(13->29) = %.12f", q29);
    double nodes[13];
    xv_relpos_nodes(13, q23, nodes);
    CHECK(nodes[6] == 0.0 && nodes[7] == 1.0 && nodes[5] == -1.0, "inner nodes %g %g %g", nodes[5], nodes[6], nodes[7]);
    CHECK(fabs(nodes[12] - 11.00002) < 1e-4 && nodes[0] == -nodes[12], "outer node %.6f", nodes[12]);
    xv_relpos_nodes(13, q29, nodes);
    CHECK(fabs(nodes[12] - 14.00002) < 1e-4, "outer node %.6f", nodes[12]);
}

/* p is of degree <= 3 in each variable: the tensor-product not-a-knot cubic
 * spline reproduces it exactly, so the only error is float rounding. */
static double poly(double x, double y) {
    return 0.25 + 0.3 * x - 0.2 * y + 0.05 * x * y + 0.01 * x * x * y - 0.002 * x * x * x + 0.001 * y * y * y +
           2e-6 * x * x * x * y * y * y;
}

static void test_polynomial_exact(int dst_side) {
    const int ns = 13, heads = 2;
    double nodes[13];
    xv_relpos_nodes(ns, xv_relpos_ratio(ns, dst_side), nodes);
    float src[169 * 2];
    double zmax = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ns; j++)
            for (int h = 0; h < heads; h++) {
                double v = (h ? -1.0 : 1.0) * poly(nodes[i], nodes[j]); /* [dh][dw] = (y, x) */
                src[(i * ns + j) * heads + h] = (float)v;
                if (fabs(v) > zmax) zmax = fabs(v);
            }
    int nd = dst_side, rows = nd * nd;
    float *dst = malloc(sizeof(float) * (size_t)rows * heads);
    CHECK_OK(xv_relpos_interp(src, ns * ns, heads, dst, rows));

    /* Error bound: inputs rounded to float (relative 2^-24) pass through the
     * interpolation matrix twice, so they grow by at most Lambda^2 (Lambda =
     * largest absolute row sum); the output is rounded to float once more. */
    double targets[64], w[64 * 13], lambda = 0;
    for (int a = 0; a < nd; a++) targets[a] = a - nd / 2;
    CHECK_OK(xv_spline_weights(nodes, ns, targets, nd, w));
    for (int a = 0; a < nd; a++) {
        double s = 0;
        for (int i = 0; i < ns; i++) s += fabs(w[a * ns + i]);
        if (s > lambda) lambda = s;
    }
    double worst = 0, worst_ratio = 0;
    for (int a = 0; a < nd; a++)
        for (int b = 0; b < nd; b++)
            for (int h = 0; h < heads; h++) {
                double want = (h ? -1.0 : 1.0) * poly(targets[a], targets[b]);
                double tol = lambda * lambda * zmax * 0x1p-24 + fabs(want) * 0x1p-24 + 1e-12;
                double err = fabs(dst[(a * nd + b) * heads + h] - want);
                if (err > worst) worst = err;
                if (err / tol > worst_ratio) worst_ratio = err / tol;
            }
    printf("13->%d: polynomial max error %.3g = %.3f x its fp32 bound (Lambda %.3f)\n", nd, worst, worst_ratio, lambda);
    CHECK(worst_ratio <= 1.0, "13->%d: polynomial reproduced to %.3g (%.2f x the fp32 bound, Lambda %.3f)", nd, worst,
          worst_ratio, lambda);
    free(dst);
}

/* Values scipy's interp2d(kind='cubic') gives in the official function for
 * table[i*13+j][h] = float(sin(0.7 i + 1.3 j + h)) (tools/check_relpos_scipy.py
 * compares whole tables; these few catch regressions without scipy). */
static void test_scipy_reference(void) {
    const int ns = 13, heads = 2;
    float src[169 * 2];
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ns; j++)
            for (int h = 0; h < heads; h++) src[(i * ns + j) * heads + h] = (float)sin(0.7 * i + 1.3 * j + h);
    struct { int side, row, head; float want; } ref[] = {
        {23, 0, 0, 0x1.a6458cp-17f},   {23, 0, 1, 0x1.aed6b0p-1f},   {23, 1, 0, 0x1.cab682p-2f},
        {23, 1, 1, 0x1.1ac498p+0f},    {23, 37, 0, -0x1.ec84c2p-1f}, {23, 37, 1, -0x1.22cdd6p-2f},
        {23, 264, 0, -0x1.12b9b0p-1f}, {23, 264, 1, 0x1.ae4044p-2f}, {23, 528, 0, -0x1.cfa93ap-1f},
        {23, 528, 1, -0x1.0f154ep-3f}, {23, 100, 0, -0x1.5d8dd0p-1f}, {23, 100, 1, 0x1.efee70p-3f},
        {23, 333, 0, 0x1.dc0bb2p-1f},  {23, 333, 1, 0x1.9e5c78p-1f},
        {29, 0, 0, 0x1.0e43f6p-17f},   {29, 0, 1, 0x1.aed658p-1f},   {29, 1, 0, 0x1.226e8cp-2f},
        {29, 1, 1, 0x1.12d902p+0f},    {29, 37, 0, 0x1.3d9142p-3f},  {29, 37, 1, -0x1.7b29d0p-1f},
        {29, 420, 0, -0x1.12b9b0p-1f}, {29, 420, 1, 0x1.ae4044p-2f}, {29, 840, 0, -0x1.cfa8f2p-1f},
        {29, 840, 1, -0x1.0f12eep-3f}, {29, 100, 0, 0x1.3f1726p-1f}, {29, 100, 1, 0x1.fc5f0ap-1f},
        {29, 333, 0, -0x1.8ddcf8p-1f}, {29, 333, 1, -0x1.e4d732p-1f},
    };
    static float out23[529 * 2], out29[841 * 2];
    CHECK_OK(xv_relpos_interp(src, 169, heads, out23, 529));
    CHECK_OK(xv_relpos_interp(src, 169, heads, out29, 841));
    for (size_t k = 0; k < sizeof ref / sizeof *ref; k++) {
        float got = (ref[k].side == 23 ? out23 : out29)[ref[k].row * heads + ref[k].head];
        /* The spline is evaluated in double and rounded once: bit-equal to scipy. */
        CHECK(got == ref[k].want, "13->%d row %d head %d: %a, scipy %a", ref[k].side, ref[k].row, ref[k].head,
              (double)got, (double)ref[k].want);
    }
    /* The centre (offset 0,0) is a node: the value passes through unchanged. */
    CHECK(out23[264 * heads] == src[84 * heads], "centre %a vs %a", (double)out23[264 * heads], (double)src[84 * heads]);
}

static void test_edges(void) {
    float src[169], dst[169];
    for (int i = 0; i < 169; i++) src[i] = (float)i;
    CHECK_OK(xv_relpos_interp(src, 169, 1, dst, 169));
    CHECK(!memcmp(src, dst, sizeof src), "same size copies");
    CHECK(xv_relpos_interp(src, 168, 1, dst, 169) == XV_ERR_SHAPE, "168 rows is not a square");
    CHECK(strstr(xv_error_message(), "168") != NULL, "message: %s", xv_error_message());
    CHECK(xv_relpos_interp(src, 9, 1, dst, 25) == XV_ERR_SHAPE, "3x3 is too small for a cubic spline");
    CHECK(strstr(xv_error_message(), "too small") != NULL, "message: %s", xv_error_message());
}

int main(void) {
    test_ratio();
    test_polynomial_exact(23);
    test_polynomial_exact(29);
    test_scipy_reference();
    test_edges();
    return xv_test_finish("test_relpos_interp");
}
