/* exp and erf for float written with plain arithmetic and bit moves only, so
 * that `#pragma omp simd` loops calling them vectorise (glibc's expf/erff do
 * not without -ffast-math). The polynomial coefficients come from
 * tools/fit_fastmath.py (near-minimax fits), which also reports the worst
 * error in float: exp 0.9 ulp, erf 2.3 ulp (1.4e-7 absolute);
 * tests/unit/test_ops_dense.c measures both against double precision.
 * exp is exactly 0 below -87.34 (where the result would be subnormal), as
 * softmax needs for masked scores; +inf above 88.72. NaN in, NaN out (both). */
#ifndef XV_OPS_FASTMATH_H
#define XV_OPS_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float xv_exp_f32(float x) {
    const float lo = -87.336544f, hi = 88.72283f;
    float xc = x < lo ? lo : (x > hi ? hi : x);
    /* x = n·ln2 + r with |r| <= ln2/2; n by the 1.5·2^23 rounding trick, read back
     * from the float's bits (no float->int conversion, so NaN cannot trap). */
    const float shifter = 12582912.0f;
    float t = xc * 1.44269504f + shifter;
    float n = t - shifter;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    int32_t ni = (int32_t)(tb - 0x4B400000u);
    float r = xc - n * 0.693359375f; /* ln2 split in two: n times the high part is exact */
    r = r - n * -2.12194440e-4f;
    /* exp(r) = 1 + r + r²·P(r) */
    float p = 1.979035718e-04f;
    p = p * r + 1.394464927e-03f;
    p = p * r + 8.333497003e-03f;
    p = p * r + 4.166629508e-02f;
    p = p * r + 1.666666587e-01f;
    p = p * r + 5.000000068e-01f;
    float e = p * (r * r) + r + 1.0f;
    /* 2^n as two factors so that n = 128 (x near 88.7) does not overflow the exponent. */
    uint32_t b1 = (uint32_t)(ni / 2 + 127) << 23, b2 = (uint32_t)(ni - ni / 2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    float y = e * s1 * s2;
    y = x < lo ? 0.0f : y;
    y = x > hi ? __builtin_inff() : y;
    return x != x ? x : y;
}

static inline float xv_erf_f32(float x) {
    float a = x < 0 ? -x : x;
    /* |x| < 1: erf(x) = x·Q(x²) */
    float z = x * x;
    float q = 7.854024817e-05f;
    q = q * z - 8.010247164e-04f;
    q = q * z + 5.188334440e-03f;
    q = q * z - 2.685381603e-02f;
    q = q * z + 1.128358527e-01f;
    q = q * z - 3.761262584e-01f;
    q = q * z + 1.128379166e+00f;
    float small = x * q;
    /* 1 <= |x| < 4: erf(|x|) = 1 - exp(R(|x|)), R fitted to log(erfc) */
    float ac = a < 4.0f ? a : 4.0f;
    float rr = -2.916507271e-07f;
    rr = rr * ac + 6.228686503e-06f;
    rr = rr * ac - 5.732593925e-05f;
    rr = rr * ac + 2.794506559e-04f;
    rr = rr * ac - 5.625532970e-04f;
    rr = rr * ac - 1.978807523e-03f;
    rr = rr * ac + 2.187671150e-02f;
    rr = rr * ac - 1.050878973e-01f;
    rr = rr * ac - 6.353518735e-01f;
    rr = rr * ac - 1.128788254e+00f;
    rr = rr * ac + 5.910218183e-05f;
    float big = 1.0f - xv_exp_f32(rr);
    big = a >= 4.0f ? 1.0f : big; /* erf(4) rounds to 1 in float */
    big = x < 0 ? -big : big;
    float y = a < 1.0f ? small : big;
    return x != x ? x : y;
}

#endif
