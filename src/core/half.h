/* IEEE 754 binary16 ("F16") <-> float32, bit-exact: float -> half rounds to
 * nearest, ties to even (as numpy and torch's .half() do), overflow gives
 * infinity, NaN stays NaN; half -> float is exact. Used for compact stores of
 * activations (the retrieval index's vision tokens). */
#ifndef XV_CORE_HALF_H
#define XV_CORE_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t xv_f32_to_f16(float f);
float xv_f16_to_f32(uint16_t h);
void xv_f32_to_f16_n(const float *in, uint16_t *out, size_t n);
void xv_f16_to_f32_n(const uint16_t *in, float *out, size_t n);

#endif
