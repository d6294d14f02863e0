/* Relative-position table interpolation: see relpos_interp.h. */
#include "io/relpos_interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define MAX_SIDE 255 /* (2W-1) for W up to 128: far beyond any Swin */

double xv_relpos_ratio(int src_size, int dst_size) {
    /* The official loop, operation for operation (Python floats are doubles). */
    int hs = src_size / 2, hd = dst_size / 2;
    double left = 1.01, right = 1.5, q = left;
    while (right - left > 1e-6) {
        q = (left + right) / 2.0;
        double gp = (1.0 - pow(q, hs)) / (1.0 - q); /* geometric sum 1 + q + ... + q^(hs-1) */
        if (gp > hd) right = q;
        else left = q;
    }
    return q;
}

void xv_relpos_nodes(int src_size, double q, double *nodes) {
    int hs = src_size / 2;
    double cur = 1.0;
    nodes[hs] = 0.0;
    for (int i = 0; i < hs; i++) {
        nodes[hs + 1 + i] = cur;
        nodes[hs - 1 - i] = -cur;
        cur += pow(q, i + 1);
    }
}

/* Solve A x = b (n x n, row-major, destroyed) by Gaussian elimination with
 * partial pivoting. */
static int solve(double *a, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c])) p = r;
        if (a[p * n + c] == 0.0) return -1;
        if (p != c) {
            for (int k = 0; k < n; k++) {
                double t = a[c * n + k];
                a[c * n + k] = a[p * n + k];
                a[p * n + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            if (f == 0.0) continue;
            for (int k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++) s -= a[r * n + k] * b[k];
        b[r] = s / a[r * n + r];
    }
    return 0;
}

/* Second derivatives M of the not-a-knot spline through (x, y):
 * interior rows are the usual C2 conditions, the first and last rows make the
 * third derivative continuous at x[1] and x[n-2]. */
static int spline_m(const double *x, const double *y, int n, double *m, double *work) {
    double *a = work;
    memset(a, 0, sizeof(double) * (size_t)n * (size_t)n);
    for (int i = 1; i < n - 1; i++) {
        double h0 = x[i] - x[i - 1], h1 = x[i + 1] - x[i];
        a[i * n + i - 1] = h0;
        a[i * n + i] = 2.0 * (h0 + h1);
        a[i * n + i + 1] = h1;
        m[i] = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
    }
    double h0 = x[1] - x[0], h1 = x[2] - x[1];
    a[0] = h1, a[1] = -(h0 + h1), a[2] = h0, m[0] = 0.0;
    h0 = x[n - 2] - x[n - 3], h1 = x[n - 1] - x[n - 2];
    a[(n - 1) * n + n - 3] = h1, a[(n - 1) * n + n - 2] = -(h0 + h1), a[(n - 1) * n + n - 1] = h0, m[n - 1] = 0.0;
    return solve(a, m, n);
}

static double spline_eval(const double *x, const double *y, const double *m, int n, double t) {
    if (t < x[0]) t = x[0]; /* FITPACK clamps arguments to the node range */
    if (t > x[n - 1]) t = x[n - 1];
    int k = 0;
    while (k < n - 2 && t > x[k + 1]) k++;
    double h = x[k + 1] - x[k], a = x[k + 1] - t, b = t - x[k];
    return m[k] * a * a * a / (6.0 * h) + m[k + 1] * b * b * b / (6.0 * h) + (y[k] / h - m[k] * h / 6.0) * a +
           (y[k + 1] / h - m[k + 1] * h / 6.0) * b;
}

xv_status xv_spline_weights(const double *nodes, int n_nodes, const double *out, int n_out, double *weights) {
    if (n_nodes < 4 || n_nodes > MAX_SIDE)
        return xv_error(XV_ERR_INVALID_ARG, "cubic spline needs 4..%d nodes, got %d", MAX_SIDE, n_nodes);
    for (int i = 1; i < n_nodes; i++)
        if (!(nodes[i] > nodes[i - 1])) return xv_error(XV_ERR_INVALID_ARG, "spline nodes must increase");
    double *buf = malloc(sizeof(double) * (size_t)(n_nodes * n_nodes + 2 * n_nodes));
    if (!buf) return xv_error(XV_ERR_NOMEM, "out of memory");
    double *y = buf + n_nodes * n_nodes, *m = y + n_nodes;
    /* The spline is linear in y: column j of the matrix is the spline of e_j. */
    for (int j = 0; j < n_nodes; j++) {
        for (int i = 0; i < n_nodes; i++) y[i] = i == j;
        if (spline_m(nodes, y, n_nodes, m, buf) != 0) {
            free(buf);
            return xv_error(XV_ERR_NUMERIC, "singular spline system");
        }
        for (int o = 0; o < n_out; o++) weights[o * n_nodes + j] = spline_eval(nodes, y, m, n_nodes, out[o]);
    }
    free(buf);
    return XV_OK;
}

static int exact_side(int rows) {
    int s = (int)lround(sqrt((double)rows));
    return s * s == rows ? s : -1;
}

xv_status xv_relpos_interp(const float *src, int src_rows, int heads, float *dst, int dst_rows) {
    int ns = exact_side(src_rows), nd = exact_side(dst_rows);
    if (ns < 1 || nd < 1 || ns % 2 == 0 || nd % 2 == 0 || ns > MAX_SIDE || nd > MAX_SIDE || heads < 1)
        return xv_error(XV_ERR_SHAPE, "relative-position table: %d and %d rows are not both (2W-1)^2 with W <= %d",
                        src_rows, dst_rows, (MAX_SIDE + 1) / 2);
    if (ns == nd) {
        memcpy(dst, src, sizeof(float) * (size_t)src_rows * (size_t)heads);
        return XV_OK;
    }
    if (ns < 4)
        return xv_error(XV_ERR_SHAPE, "relative-position table of %d rows (window %d) is too small for a cubic spline",
                        src_rows, (ns + 1) / 2);
    double nodes[MAX_SIDE], targets[MAX_SIDE];
    xv_relpos_nodes(ns, xv_relpos_ratio(ns, nd), nodes);
    for (int i = 0; i < nd; i++) targets[i] = (double)(i - nd / 2);
    double *w = malloc(sizeof(double) * (size_t)(nd * ns + ns * nd + ns * ns));
    if (!w) return xv_error(XV_ERR_NOMEM, "out of memory");
    double *tmp = w + nd * ns, *z = tmp + ns * nd;
    xv_status st = xv_spline_weights(nodes, ns, targets, nd, w);
    for (int h = 0; st == XV_OK && h < heads; h++) {
        for (int i = 0; i < ns * ns; i++) z[i] = src[(size_t)i * (size_t)heads + (size_t)h];
        /* along dw: tmp[i][b] = sum_j z[i][j] w[b][j] */
        for (int i = 0; i < ns; i++)
            for (int b = 0; b < nd; b++) {
                double s = 0.0;
                for (int j = 0; j < ns; j++) s += z[i * ns + j] * w[b * ns + j];
                tmp[i * nd + b] = s;
            }
        /* along dh: out[a][b] = sum_i w[a][i] tmp[i][b] */
        for (int a = 0; a < nd; a++)
            for (int b = 0; b < nd; b++) {
                double s = 0.0;
                for (int i = 0; i < ns; i++) s += w[a * ns + i] * tmp[i * nd + b];
                dst[(size_t)(a * nd + b) * (size_t)heads + (size_t)h] = (float)s;
            }
    }
    free(w);
    return st;
}
