/* binary16 conversion: every half value survives half -> float -> half; the
 * float -> half rounding is to nearest, ties to even, at normal and subnormal
 * sizes; overflow gives infinity. Also the safetensors writer's parts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "testutil.h"

static float bits_f(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void test_half(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = xv_f16_to_f32((uint16_t)h);
        bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan) bad += !isnan(f);
        else bad += xv_f32_to_f16(f) != h;
    }
    CHECK(bad == 0, "all 65536 halves round-trip (%d off)", bad);
    CHECK(xv_f16_to_f32(0x3c00) == 1.0f && xv_f16_to_f32(0xc000) == -2.0f && xv_f16_to_f32(0x7bff) == 65504.0f,
          "known values");
    CHECK(xv_f16_to_f32(0x0001) == 5.9604644775390625e-08f, "smallest subnormal");
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even -> 1. */
    CHECK(xv_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie to even (down)");
    CHECK(xv_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie to even (up)");
    CHECK(xv_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01, "above the tie rounds up");
    /* Subnormal ties: 1.5 and 2.5 units of 2^-24. */
    CHECK(xv_f32_to_f16(1.5f * 0x1p-24f) == 0x0002 && xv_f32_to_f16(2.5f * 0x1p-24f) == 0x0002, "subnormal ties");
    CHECK(xv_f32_to_f16(0x1p-26f) == 0x0000 && xv_f32_to_f16(-0x1p-26f) == 0x8000, "underflow keeps the sign");
    CHECK(xv_f32_to_f16(65519.0f) == 0x7bff && xv_f32_to_f16(65520.0f) == 0x7c00, "overflow boundary");
    CHECK(xv_f32_to_f16(INFINITY) == 0x7c00 && xv_f32_to_f16(-INFINITY) == 0xfc00, "infinities");
    CHECK((xv_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (xv_f32_to_f16(NAN) & 0x3ff), "NaN stays NaN");
    /* The largest subnormal rounds up into the smallest normal. */
    CHECK(xv_f32_to_f16(bits_f(0x387fffff)) == 0x0400, "subnormal -> normal carry");
}

static void test_parts(void) {
    const float a[3] = {1, 2, 3}, b[2] = {4, 5};
    const void *parts[2] = {a, b};
    const size_t bytes[2] = {sizeof a, sizeof b};
    xv_st_writer *w = NULL;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add_parts(w, "joined", XV_ST_F32, XV_SHAPE(5), parts, bytes, 2));
    CHECK(xv_st_writer_add_parts(w, "short", XV_ST_F32, XV_SHAPE(6), parts, bytes, 2) == XV_ERR_INVALID_ARG,
          "parts must fill the shape");
    CHECK(xv_st_writer_add_parts(w, "joined", XV_ST_F32, XV_SHAPE(5), parts, bytes, 2) == XV_ERR_INVALID_ARG,
          "names stay unique");
    CHECK_OK(xv_st_writer_add(w, "after", XV_ST_F32, XV_SHAPE(1), a, false));
    char path[256];
    xv_test_tmp_path("xv_parts_XXXXXX", path, sizeof path);
    int fd = mkstemp(path);
    close(fd);
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    float got[5] = {0}, one = 0;
    if (f) {
        CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "joined"), got));
        CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "after"), &one));
        CHECK(got[0] == 1 && got[2] == 3 && got[3] == 4 && got[4] == 5 && one == 1, "concatenated in order");
        CHECK(!xv_st_find(f, "short"), "refused tensor not written");
        xv_st_close(f);
    }
    unlink(path);
}

/* float -> bf16 rounds to nearest, ties to even, as torch's .bfloat16(). */
static void test_bf16(void) {
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80u}, /* 1 exactly */
        {0x3f808000u, 0x3f80u}, /* halfway, even below: down */
        {0x3f818000u, 0x3f82u}, /* halfway, odd below: up */
        {0x3f808001u, 0x3f81u}, /* just above halfway: up */
        {0x3f807fffu, 0x3f80u}, /* just below halfway: down */
        {0xbf808001u, 0xbf81u}, /* the sign is kept */
        {0x7f7fffffu, 0x7f80u}, /* the largest float rounds to infinity */
        {0x7f800000u, 0x7f80u}, /* infinity */
        {0x00000001u, 0x0000u}, /* the smallest subnormal: to zero */
        {0x80000000u, 0x8000u}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float f;
        memcpy(&f, &cases[i].in, sizeof f);
        uint16_t got = xv_f32_to_bf16(f), got_n = 0;
        xv_f32_to_bf16_n(&f, &got_n, 1);
        CHECK(got == cases[i].out && got_n == got, "bf16(0x%08x) = 0x%04x / 0x%04x, want 0x%04x", cases[i].in, got,
              got_n, cases[i].out);
        uint32_t back;
        float b = xv_bf16_to_f32(cases[i].out);
        memcpy(&back, &b, sizeof back);
        CHECK(back == (uint32_t)cases[i].out << 16, "bf16 0x%04x widens to 0x%08x", cases[i].out, back);
    }
    uint16_t nan = xv_f32_to_bf16(NAN);
    CHECK((nan & 0x7f80u) == 0x7f80u && (nan & 0x7fu), "NaN stays NaN (0x%04x)", nan);
    /* a NaN whose payload sits in the low half only must not become infinity */
    uint32_t low_nan = 0x7f800001u;
    float ln;
    memcpy(&ln, &low_nan, sizeof ln);
    CHECK(isnan(xv_bf16_to_f32(xv_f32_to_bf16(ln))), "low-payload NaN stays NaN");
}

int main(void) {
    test_half();
    test_bf16();
    test_parts();
    return xv_test_finish("test_half");
}
