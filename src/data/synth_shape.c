/* Shape outlines as polygons. Curves (circle, heart) are polygons too, so the
 * box computed from the vertices is exactly the box of what is drawn. */
#include <math.h>

#include "data/synth.h"

#define TWO_PI 6.283185307179586

/* Points on a circle of radius `radius`, starting straight up (y down). */
static int ring(float xy[][2], int n, const double *radius, int n_radii) {
    for (int k = 0; k < n; k++) {
        double t = TWO_PI * k / n - TWO_PI / 4;
        double r = radius[k % n_radii];
        xy[k][0] = (float)(r * cos(t));
        xy[k][1] = (float)(r * sin(t));
    }
    return n;
}

static int raw_outline(xv_synth_shape shape, float xy[][2]) {
    static const double one = 1.0;
    switch (shape) {
    case XV_SHAPE_CIRCLE: return ring(xy, 72, &one, 1); /* 72 = 4·18: extremes are vertices */
    case XV_SHAPE_TRIANGLE: return ring(xy, 3, &one, 1);
    case XV_SHAPE_HEXAGON: return ring(xy, 6, &one, 1); /* pointy top */
    case XV_SHAPE_STAR: {
        static const double radii[2] = {1.0, 0.42};
        return ring(xy, 10, radii, 2);
    }
    case XV_SHAPE_SQUARE: {
        static const float sq[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
        for (int k = 0; k < 4; k++) xy[k][0] = sq[k][0], xy[k][1] = sq[k][1];
        return 4;
    }
    case XV_SHAPE_DIAMOND: { /* narrower than tall, unlike a rotated square */
        static const float dm[4][2] = {{0, -1}, {0.72f, 0}, {0, 1}, {-0.72f, 0}};
        for (int k = 0; k < 4; k++) xy[k][0] = dm[k][0], xy[k][1] = dm[k][1];
        return 4;
    }
    case XV_SHAPE_CROSS: { /* a plus sign with arms a third of its width */
        const float a = 1.0f / 3.0f;
        const float cr[12][2] = {{-a, -1}, {a, -1}, {a, -a}, {1, -a}, {1, a},   {a, a},
                                 {a, 1},   {-a, 1}, {-a, a}, {-1, a}, {-1, -a}, {-a, -a}};
        for (int k = 0; k < 12; k++) xy[k][0] = cr[k][0], xy[k][1] = cr[k][1];
        return 12;
    }
    case XV_SHAPE_HEART: { /* the classic parametric heart, 64 points, lobes up */
        for (int k = 0; k < 64; k++) {
            double t = TWO_PI * k / 64, s = sin(t);
            xy[k][0] = (float)(16 * s * s * s);
            xy[k][1] = (float)(-(13 * cos(t) - 5 * cos(2 * t) - 2 * cos(3 * t) - cos(4 * t)));
        }
        return 64;
    }
    default: return 0;
    }
}

int xv_synth_outline(xv_synth_shape shape, float xy[XV_SYNTH_MAX_VERTICES][2], float *w, float *h) {
    int n = raw_outline(shape, xy);
    if (n == 0) {
        *w = *h = 0;
        return 0;
    }
    float x0 = xy[0][0], x1 = x0, y0 = xy[0][1], y1 = y0;
    for (int k = 1; k < n; k++) {
        x0 = fminf(x0, xy[k][0]), x1 = fmaxf(x1, xy[k][0]);
        y0 = fminf(y0, xy[k][1]), y1 = fmaxf(y1, xy[k][1]);
    }
    float scale = 1.0f / fmaxf(x1 - x0, y1 - y0), mx = 0.5f * (x0 + x1), my = 0.5f * (y0 + y1);
    for (int k = 0; k < n; k++) {
        xy[k][0] = (xy[k][0] - mx) * scale;
        xy[k][1] = (xy[k][1] - my) * scale;
    }
    *w = (x1 - x0) * scale;
    *h = (y1 - y0) * scale;
    return n;
}
