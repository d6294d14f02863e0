/* Copy tensors out of a safetensors mapping into float / int32 buffers.
 * Data may sit at any byte offset (the format does not promise alignment), so
 * elements are loaded with memcpy, never through a cast pointer. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"

static float bits_to_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* IEEE half to single: every half value (subnormals, ±inf, NaN payloads) is
 * exactly representable, so this is a re-encoding, not a rounding. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    if (exp == 0) { /* zero or subnormal: man · 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_f32(sign | 0x7F800000u | (man << 13)); /* inf / NaN */
    return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));       /* rebias 15 -> 127 */
}

/* `t` must be one of `f`'s tensors: its data pointer is only trusted then. */
static xv_status check_member(const xv_st_file *f, const xv_st_tensor *t, const void *out, const char *fn) {
    if (!f || !t || (!out && t && t->numel))
        return xv_error(XV_ERR_INVALID_ARG, "%s: file, tensor or output is NULL", fn);
    const xv_st_tensor *first = xv_st_at(f, 0);
    int n = xv_st_count(f);
    if (!first || t < first || t >= first + n)
        return xv_error(XV_ERR_INVALID_ARG, "%s: tensor '%s' does not belong to %s", fn, t->name,
                        xv_st_path(f));
    return XV_OK;
}

/* Element i of little-endian data (safetensors' byte order, as here) at any
 * alignment. */
static uint16_t u16_at(const uint8_t *p, int64_t i) {
    uint16_t v;
    memcpy(&v, p + 2 * i, 2);
    return v;
}

static int64_t i64_at(const uint8_t *p, int64_t i) {
    int64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

static double f64_at(const uint8_t *p, int64_t i) {
    double v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

xv_status xv_st_read_f32(const xv_st_file *f, const xv_st_tensor *t, float *out) {
    XV_TRY(check_member(f, t, out, "xv_st_read_f32"));
    const uint8_t *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case XV_ST_F32:
        if (n) memcpy(out, p, t->nbytes);
        return XV_OK;
    case XV_ST_F16:
        for (int64_t i = 0; i < n; i++) out[i] = f16_to_f32(u16_at(p, i));
        return XV_OK;
    case XV_ST_BF16: /* the top half of a float */
        for (int64_t i = 0; i < n; i++) out[i] = bits_to_f32((uint32_t)u16_at(p, i) << 16);
        return XV_OK;
    case XV_ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d = f64_at(p, i);
            out[i] = (float)d;
            /* Rounding is expected; turning a finite value into inf is not. */
            if (isinf(out[i]) && isfinite(d))
                return xv_error(XV_ERR_NUMERIC, "%s: tensor '%s' element %lld = %g does not fit in float32",
                                xv_st_path(f), t->name, (long long)i, d);
        }
        return XV_OK;
    default:
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s': expected a float dtype (F32 F16 BF16 F64), found %s",
                        xv_st_path(f), t->name, xv_st_dtype_name(t->dtype));
    }
}

static xv_status out_of_range(const xv_st_file *f, const xv_st_tensor *t, int64_t i, long long v) {
    return xv_error(XV_ERR_FORMAT, "%s: tensor '%s' element %lld = %lld is outside int32's range",
                    xv_st_path(f), t->name, (long long)i, v);
}

xv_status xv_st_read_i32(const xv_st_file *f, const xv_st_tensor *t, int32_t *out) {
    XV_TRY(check_member(f, t, out, "xv_st_read_i32"));
    const uint8_t *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case XV_ST_I64:
        for (int64_t i = 0; i < n; i++) {
            int64_t v = i64_at(p, i);
            if (v < INT32_MIN || v > INT32_MAX) return out_of_range(f, t, i, (long long)v);
            out[i] = (int32_t)v;
        }
        return XV_OK;
    case XV_ST_I32:
        if (n) memcpy(out, p, t->nbytes);
        return XV_OK;
    case XV_ST_I16:
        for (int64_t i = 0; i < n; i++) out[i] = (int16_t)u16_at(p, i);
        return XV_OK;
    case XV_ST_I8:
        for (int64_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        return XV_OK;
    case XV_ST_U8:
        for (int64_t i = 0; i < n; i++) out[i] = p[i];
        return XV_OK;
    case XV_ST_BOOL:
        for (int64_t i = 0; i < n; i++) {
            if (p[i] > 1)
                return xv_error(XV_ERR_FORMAT, "%s: tensor '%s' element %lld: BOOL byte is %u, expected 0 or 1",
                                xv_st_path(f), t->name, (long long)i, p[i]);
            out[i] = p[i];
        }
        return XV_OK;
    default:
        return xv_error(XV_ERR_FORMAT,
                        "%s: tensor '%s': expected an integer dtype (I64 I32 I16 I8 U8 BOOL), found %s",
                        xv_st_path(f), t->name, xv_st_dtype_name(t->dtype));
    }
}
