#include "core/half.h"

#include <math.h>
#include <string.h>

uint16_t xv_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u); /* NaN, Inf */
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds past the largest half */
    if (a < 0x38800000u) {
        /* Below 2^-14: a half subnormal, in units of 2^-24. Scaling by 2^24 is
         * exact, and lrintf rounds to nearest even (the default mode); 1024
         * is the smallest normal's encoding, so rounding up into it is right. */
        float v;
        memcpy(&v, &a, sizeof v);
        return sign | (uint16_t)lrintf(v * 16777216.0f);
    }
    /* Rebias the exponent (127 -> 15) and round 23 mantissa bits to 10;
     * a carry out of the mantissa correctly bumps the exponent. */
    uint32_t r = a - 0x38000000u;
    r += 0x0fffu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
}

float xv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1f) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e) {
        x = sign | ((e + 112u) << 23) | (m << 13);
    } else {
        float v = (float)m * 5.9604644775390625e-08f; /* m·2^-24, exact */
        memcpy(&x, &v, sizeof x);
        x |= sign;
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

void xv_f32_to_f16_n(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = xv_f32_to_f16(in[i]);
}

void xv_f16_to_f32_n(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = xv_f16_to_f32(in[i]);
}

/* Branch-free but for NaN, so the loop below vectorises. */
static inline uint16_t bf16_round(uint32_t x) {
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN stays (quiet) NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

uint16_t xv_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return bf16_round(x);
}

float xv_bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

void xv_f32_to_bf16_n(const float *in, uint16_t *out, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint32_t x;
        memcpy(&x, in + i, sizeof x);
        out[i] = bf16_round(x);
    }
}
