/* IEEE 754 binary16 ("F16") <-> float32, bit-exact: float -> half rounds to
 * nearest, ties to even (as numpy and torch's .half() do), overflow gives
 * infinity, NaN stays NaN; half -> float is exact. Used for compact stores of
 * activations (the retrieval index's vision tokens).
 *
 * bfloat16 ("BF16", the top half of a float32) <-> float32: float -> bf16
 * rounds to nearest, ties to even (as torch's .bfloat16() and oneDNN's
 * reorders do; NaN stays a quiet NaN); bf16 -> float is exact. Used for the
 * weights and inputs of bf16 products (--precision bf16, ops/gemm.h). */
#ifndef XV_CORE_HALF_H
#define XV_CORE_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t xv_f32_to_f16(float f);
float xv_f16_to_f32(uint16_t h);
void xv_f32_to_f16_n(const float *in, uint16_t *out, size_t n);
void xv_f16_to_f32_n(const uint16_t *in, float *out, size_t n);

uint16_t xv_f32_to_bf16(float f);
float xv_bf16_to_f32(uint16_t b);
void xv_f32_to_bf16_n(const float *in, uint16_t *out, size_t n);

#endif
