/* safetensors: writer/reader round trips of every dtype, exact half/bfloat
 * conversion, deterministic atomic writes, the official fixture files, and a
 * catalogue of broken files that must each be refused with a message naming
 * the file and the entry. */
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/safetensors.h"
#include "testutil.h"

static char g_dir[256];

static void path_in_dir(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *d = NULL;
    return xv_fs_read_file(path, INT64_C(1) << 30, &d, len) == XV_OK ? d : NULL;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(b, 1, n, fp);
    fclose(fp);
}

/* A file image: 8-byte length, the header text as given, then `data`. */
static uint8_t *blob(const char *header, const void *data, size_t data_len, size_t *len) {
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    uint8_t *b = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    if (data_len) memcpy(b + 8 + n, data, data_len);
    return b;
}

/* ---- round trips ---- */

static void test_round_trip_every_dtype(void) {
    float f32[6] = {1.5f, -2.25f, 0.f, 3.4028235e38f, -1e-45f, 7.f};
    uint16_t f16[8] = {0x3C00, 0x0001, 0x03FF, 0x7C00, 0xFC00, 0x8000, 0x7BFF, 0x7E00};
    float f16_want[7] = {1.f, 0x1p-24f, 1023 * 0x1p-24f, INFINITY, -INFINITY, -0.f, 65504.f};
    uint16_t bf16[5] = {0x3F80, 0x0001, 0xFF80, 0xC040, 0x7FC0};
    float bf16_want[4] = {1.f, 0x1p-133f, -INFINITY, -3.f};
    double f64[4] = {0.1, -1e-300, 6.5e4, 1e-40};
    int64_t i64[3] = {INT32_MIN, INT32_MAX, -7};
    int32_t i32[4] = {INT32_MIN, 0, 5, INT32_MAX};
    int16_t i16[2] = {-32768, 32767};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[3] = {0, 128, 255};
    uint8_t bools[4] = {0, 1, 1, 0};
    int64_t s6[2] = {2, 3}, s8[1] = {8}, s5[1] = {5}, s4[1] = {4}, s3[1] = {3}, s2[1] = {2}, s22[2] = {2, 2};
    int64_t empty_shape[3] = {2, 0, 5};
    float scalar = 42.f;

    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "f32", XV_ST_F32, s6, 2, f32, false));
    CHECK_OK(xv_st_writer_add(w, "f16", XV_ST_F16, s8, 1, f16, false));
    CHECK_OK(xv_st_writer_add(w, "bf16", XV_ST_BF16, s5, 1, bf16, false));
    CHECK_OK(xv_st_writer_add(w, "f64", XV_ST_F64, s4, 1, f64, true));
    CHECK_OK(xv_st_writer_add(w, "i64", XV_ST_I64, s3, 1, i64, false));
    CHECK_OK(xv_st_writer_add(w, "i32", XV_ST_I32, s22, 2, i32, false));
    CHECK_OK(xv_st_writer_add(w, "i16", XV_ST_I16, s2, 1, i16, false));
    CHECK_OK(xv_st_writer_add(w, "i8", XV_ST_I8, s3, 1, i8, false));
    CHECK_OK(xv_st_writer_add(w, "u8", XV_ST_U8, s3, 1, u8, false));
    CHECK_OK(xv_st_writer_add(w, "bool", XV_ST_BOOL, s4, 1, bools, false));
    CHECK_OK(xv_st_writer_add(w, "scalar", XV_ST_F32, NULL, 0, &scalar, false));
    CHECK_OK(xv_st_writer_add(w, "empty", XV_ST_F32, empty_shape, 3, NULL, false));
    CHECK_OK(xv_st_writer_meta(w, "format", "pt"));
    CHECK_OK(xv_st_writer_meta(w, "note", "quote \" backslash \\ newline \n tab \t"));
    CHECK(xv_st_writer_add(w, "f32", XV_ST_F32, s6, 2, f32, false) == XV_ERR_INVALID_ARG, "duplicate add refused");
    CHECK(xv_st_writer_add(w, "__metadata__", XV_ST_F32, s6, 2, f32, false) == XV_ERR_INVALID_ARG,
          "reserved name refused");
    int64_t neg[1] = {-1};
    CHECK(xv_st_writer_add(w, "neg", XV_ST_F32, neg, 1, f32, false) == XV_ERR_INVALID_ARG, "negative dim refused");
    CHECK(xv_st_writer_meta(w, "format", "again") == XV_ERR_INVALID_ARG, "duplicate metadata refused");

    char path[512];
    path_in_dir(path, sizeof path, "all.safetensors");
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);

    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (!f) return;
    CHECK(xv_st_count(f) == 12, "count %d", xv_st_count(f));
    CHECK(!strcmp(xv_st_path(f), path), "path");
    CHECK(xv_st_metadata(f, "format") && !strcmp(xv_st_metadata(f, "format"), "pt"), "metadata");
    CHECK(xv_st_metadata(f, "note") && !strcmp(xv_st_metadata(f, "note"), "quote \" backslash \\ newline \n tab \t"),
          "escaped metadata round-trips");
    CHECK(xv_st_metadata(f, "absent") == NULL, "absent metadata");
    CHECK(xv_st_find(f, "absent") == NULL, "absent tensor");

    const xv_st_tensor *t = xv_st_find(f, "f32");
    CHECK(t && t->dtype == XV_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6,
          "f32 header");
    float fo[8];
    if (t) {
        CHECK_OK(xv_st_read_f32(f, t, fo));
        CHECK(!memcmp(fo, f32, sizeof f32), "f32 bits");
        int32_t io[6];
        CHECK(xv_st_read_i32(f, t, io) == XV_ERR_FORMAT && strstr(xv_error_message(), "'f32'"),
              "float tensor refused as int: %s", xv_error_message());
    }
    t = xv_st_find(f, "f16");
    if (t) {
        CHECK(t->dtype == XV_ST_F16 && t->numel == 8 && t->nbytes == 16, "f16 header");
        CHECK_OK(xv_st_read_f32(f, t, fo));
        /* every half value is exact in float: compare exactly, sign of zero included */
        for (int i = 0; i < 7; i++)
            CHECK(fo[i] == f16_want[i] && signbit(fo[i]) == signbit(f16_want[i]), "f16[%d] = %a, want %a", i,
                  fo[i], f16_want[i]);
        CHECK(isnan(fo[7]), "f16 NaN stays NaN");
    }
    t = xv_st_find(f, "bf16");
    if (t) {
        CHECK_OK(xv_st_read_f32(f, t, fo));
        for (int i = 0; i < 4; i++) CHECK(fo[i] == bf16_want[i], "bf16[%d] = %a, want %a", i, fo[i], bf16_want[i]);
        CHECK(isnan(fo[4]), "bf16 NaN");
    }
    t = xv_st_find(f, "f64");
    if (t) {
        CHECK_OK(xv_st_read_f32(f, t, fo));
        for (int i = 0; i < 4; i++) CHECK(fo[i] == (float)f64[i], "f64[%d] rounds like a cast", i);
    }
    int32_t io[8];
    t = xv_st_find(f, "i64");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(io[0] == INT32_MIN && io[1] == INT32_MAX && io[2] == -7, "i64 values");
        CHECK(xv_st_read_f32(f, t, fo) == XV_ERR_FORMAT, "int tensor refused as float");
    }
    t = xv_st_find(f, "i32");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(!memcmp(io, i32, sizeof i32), "i32 values");
    }
    t = xv_st_find(f, "i16");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(io[0] == -32768 && io[1] == 32767, "i16 values");
    }
    t = xv_st_find(f, "i8");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(io[0] == -128 && io[1] == 0 && io[2] == 127, "i8 values");
    }
    t = xv_st_find(f, "u8");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(io[0] == 0 && io[1] == 128 && io[2] == 255, "u8 values");
    }
    t = xv_st_find(f, "bool");
    if (t) {
        CHECK_OK(xv_st_read_i32(f, t, io));
        CHECK(io[0] == 0 && io[1] == 1 && io[2] == 1 && io[3] == 0, "bool values");
    }
    t = xv_st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1, "rank-0 tensor");
    if (t) {
        CHECK_OK(xv_st_read_f32(f, t, fo));
        CHECK(fo[0] == 42.f, "scalar value");
    }
    t = xv_st_find(f, "empty");
    CHECK(t && t->ndim == 3 && t->numel == 0 && t->nbytes == 0, "empty tensor");
    if (t) CHECK_OK(xv_st_read_f32(f, t, fo));

    /* Layout: in offset order, contiguous from 0, each tensor aligned to its element size. */
    uintptr_t data0 = (uintptr_t)xv_st_at(f, 0)->data;
    uintptr_t expect = data0;
    for (int i = 0; i < xv_st_count(f); i++) {
        const xv_st_tensor *x = xv_st_at(f, i);
        CHECK((uintptr_t)x->data == expect, "'%s' follows the previous tensor without a gap", x->name);
        CHECK((uintptr_t)x->data % xv_st_dtype_size(x->dtype) == 0, "'%s' aligned", x->name);
        expect += x->nbytes;
    }
    CHECK(data0 % 8 == 0, "data section 8-aligned in the mapping");
    xv_st_close(f);

    size_t len;
    uint8_t *b = slurp(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    CHECK(hlen % 8 == 0, "header length %llu multiple of 8", (unsigned long long)hlen);
    CHECK(memmem(b + 8, hlen, "\"__metadata__\"", 14) != NULL, "metadata in header");
    /* header entries in name order */
    const char *order[] = {"\"bf16\"", "\"bool\"", "\"empty\"", "\"f16\"", "\"f32\"", "\"f64\"",
                           "\"i16\"",  "\"i32\"",  "\"i64\"",   "\"i8\"",  "\"scalar\"", "\"u8\""};
    const uint8_t *prev = b;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const uint8_t *at = memmem(b + 8, hlen, order[i], strlen(order[i]));
        CHECK(at && at > prev, "header entry %s in name order", order[i]);
        if (at) prev = at;
    }
    free(b);
}

/* All 65536 half values against an independent formula: (-1)^s · m · 2^e in double. */
static void test_every_f16(void) {
    enum { N = 65536 };
    uint16_t *h = malloc(N * sizeof *h);
    float *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    int64_t shape[1] = {N};
    char path[512];
    path_in_dir(path, sizeof path, "f16.safetensors");
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "h", XV_ST_F16, shape, 1, h, true));
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (f) {
        CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "h"), out));
        int bad = 0;
        for (int i = 0; i < N; i++) {
            int sign = i >> 15, e = (i >> 10) & 31, m = i & 1023;
            double mag = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
            float want = (float)(sign ? -mag : mag);
            bool ok = isnan(want) ? isnan(out[i]) : out[i] == want && signbit(out[i]) == signbit(want);
            if (!ok && bad++ < 5) fprintf(stderr, "f16 0x%04x -> %a, want %a\n", i, out[i], want);
        }
        CHECK(bad == 0, "%d half values converted wrongly", bad);
        xv_st_close(f);
    }
    free(h);
    free(out);
}

/* The same tensors added in another order give the same bytes. */
static void test_deterministic(void) {
    float a[3] = {1, 2, 3};
    int64_t s3[1] = {3};
    uint8_t c[2] = {9, 8};
    int64_t s2[1] = {2};
    char p1[512], p2[512];
    path_in_dir(p1, sizeof p1, "det1.safetensors");
    path_in_dir(p2, sizeof p2, "det2.safetensors");
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "zeta", XV_ST_U8, s2, 1, c, false));
    CHECK_OK(xv_st_writer_add(w, "alpha", XV_ST_F32, s3, 1, a, false));
    CHECK_OK(xv_st_writer_meta(w, "b", "2"));
    CHECK_OK(xv_st_writer_meta(w, "a", "1"));
    CHECK_OK(xv_st_writer_write(w, p1));
    xv_st_writer_free(w);
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_meta(w, "a", "1"));
    CHECK_OK(xv_st_writer_add(w, "alpha", XV_ST_F32, s3, 1, a, true));
    CHECK_OK(xv_st_writer_meta(w, "b", "2"));
    CHECK_OK(xv_st_writer_add(w, "zeta", XV_ST_U8, s2, 1, c, true));
    CHECK_OK(xv_st_writer_write(w, p2));
    xv_st_writer_free(w);
    size_t n1, n2;
    uint8_t *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "same bytes whatever the add order");
    /* The exact expected file: header text, padding and layout. */
    const char *want = "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\"},"
                       "\"alpha\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                       "\"zeta\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[12,14]}}";
    size_t wl = strlen(want), padded = (wl + 7) / 8 * 8;
    CHECK(b1 && n1 == 8 + padded + 14, "file size %zu", n1);
    if (b1 && n1 == 8 + padded + 14) {
        CHECK(b1[0] == (uint8_t)padded && !memcmp(b1 + 8, want, wl), "header text: %.*s", (int)padded, b1 + 8);
        for (size_t i = wl; i < padded; i++) CHECK(b1[8 + i] == ' ', "space padding");
        CHECK(!memcmp(b1 + 8 + padded, a, 12) && !memcmp(b1 + 8 + padded + 12, c, 2), "data bytes");
    }
    free(b1);
    free(b2);
}

/* Names that need JSON escaping, and non-ASCII UTF-8, come back unchanged. */
static void test_odd_names(void) {
    const char *names[] = {"quote\"back\\slash", "ctl\x01\x1f\ttab\nnl", "caf\xc3\xa9 \xe2\x82\xac", "", "a/b.c:d"};
    enum { N = sizeof names / sizeof *names };
    uint8_t v = 7;
    int64_t s1[1] = {1};
    char path[512];
    path_in_dir(path, sizeof path, "names.safetensors");
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    for (int i = 0; i < N; i++) CHECK_OK(xv_st_writer_add(w, names[i], XV_ST_U8, s1, 1, &v, false));
    CHECK_OK(xv_st_writer_meta(w, names[1], names[2]));
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (!f) return;
    CHECK(xv_st_count(f) == N, "count");
    for (int i = 0; i < N; i++) CHECK(xv_st_find(f, names[i]) != NULL, "name %d found after the round trip", i);
    CHECK(xv_st_metadata(f, names[1]) && !strcmp(xv_st_metadata(f, names[1]), names[2]), "metadata with odd text");
    xv_st_close(f);
}

/* An existing file is replaced only by a complete new one; failures leave no temp file. */
static void test_atomic_write(void) {
    char path[512], tmp[520];
    path_in_dir(path, sizeof path, "atomic.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    float small[2] = {1, 2};
    int64_t s2[1] = {2};
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "old", XV_ST_F32, s2, 1, small, false));
    CHECK_OK(xv_st_writer_write(w, path));
    CHECK_OK(xv_st_writer_write(w, path)); /* overwriting works */
    xv_st_writer_free(w);
    size_t old_len;
    uint8_t *old = slurp(path, &old_len);
    CHECK(!file_exists(tmp), "no temp file after success");

    /* A write that fails half-way (file size limit): old file intact, temp removed. */
    enum { BIG = 1 << 20 };
    float *big = calloc(BIG, sizeof *big);
    int64_t sb[1] = {BIG};
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "big", XV_ST_F32, sb, 1, big, true));
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 65536;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* make the write fail with EFBIG instead of killing us */
    setrlimit(RLIMIT_FSIZE, &lim);
    xv_status st = xv_st_writer_write(w, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    CHECK(st == XV_ERR_IO && strstr(xv_error_message(), tmp), "failed write reported with the temp path: %s",
          xv_error_message());
    CHECK(!file_exists(tmp), "temp file removed after a failed write");
    size_t now_len;
    uint8_t *now = slurp(path, &now_len);
    CHECK(now && now_len == old_len && !memcmp(now, old, old_len), "old file untouched");
    free(now);

    char nodir[512];
    path_in_dir(nodir, sizeof nodir, "no/such/dir/x.safetensors");
    CHECK(xv_st_writer_write(w, nodir) == XV_ERR_IO && strstr(xv_error_message(), "no/such/dir"),
          "missing directory reported: %s", xv_error_message());
    xv_st_writer_free(w);
    free(big);
    free(old);
}

/* Tensor data at an odd offset (after a 1-byte tensor, as tensors are
 * contiguous): read through memcpy (UBSan checks alignment). */
static void test_unaligned(void) {
    const char *h = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]},"
                    "\"y\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[9,17]}}";
    uint8_t data[17] = {0};
    float x[2] = {3.5f, -1.f};
    int64_t y = -123456789;
    memcpy(data + 1, x, 8);
    memcpy(data + 9, &y, 8);
    size_t len;
    uint8_t *b = blob(h, data, sizeof data, &len);
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open_memory(b, len, "unaligned", &f));
    if (f) {
        float o[2];
        int32_t i;
        CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "x"), o));
        CHECK(o[0] == 3.5f && o[1] == -1.f, "unaligned f32");
        CHECK_OK(xv_st_read_i32(f, xv_st_find(f, "y"), &i));
        CHECK(i == -123456789, "unaligned i64");
        xv_st_close(f);
    }
    free(b);
}

/* Values that exist in the file but not in the requested type are refused by name. */
static void test_conversion_refusals(void) {
    int64_t big[2] = {1, (int64_t)INT32_MAX + 1};
    double huge[2] = {1.0, 1e300};
    uint8_t badbool[1] = {2};
    int64_t s2[1] = {2}, s1[1] = {1};
    char path[512];
    path_in_dir(path, sizeof path, "refuse.safetensors");
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "big_ids", XV_ST_I64, s2, 1, big, false));
    CHECK_OK(xv_st_writer_add(w, "huge", XV_ST_F64, s2, 1, huge, false));
    CHECK_OK(xv_st_writer_add(w, "flag", XV_ST_BOOL, s1, 1, badbool, false));
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    xv_st_file *f = NULL, *g = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (!f) return;
    int32_t io[2];
    float fo[2];
    CHECK(xv_st_read_i32(f, xv_st_find(f, "big_ids"), io) == XV_ERR_FORMAT &&
              strstr(xv_error_message(), "'big_ids'") && strstr(xv_error_message(), "2147483648"),
          "int64 out of int32 range: %s", xv_error_message());
    CHECK(xv_st_read_f32(f, xv_st_find(f, "huge"), fo) == XV_ERR_NUMERIC && strstr(xv_error_message(), "'huge'"),
          "f64 beyond float range: %s", xv_error_message());
    CHECK(xv_st_read_i32(f, xv_st_find(f, "flag"), io) == XV_ERR_FORMAT && strstr(xv_error_message(), "'flag'"),
          "bool byte 2: %s", xv_error_message());
    /* a tensor of another file is not accepted */
    CHECK_OK(xv_st_open(path, &g));
    if (g) {
        CHECK(xv_st_read_i32(f, xv_st_find(g, "big_ids"), io) == XV_ERR_INVALID_ARG, "foreign tensor refused");
        xv_st_close(g);
    }
    xv_st_close(f);
}

/* ---- the official fixtures ---- */

static void test_fixtures(void) {
    const char *dir = xv_fixtures_dir();
    char path[1024];
    if (dir) snprintf(path, sizeof path, "%s/tiny/weights.safetensors", dir);
    if (!dir || !file_exists(path)) {
        printf("note: fixtures absent, fixture checks not run\n");
        return;
    }
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (f) {
        CHECK(xv_st_count(f) == 233, "weights: %d tensors, expected 233", xv_st_count(f));
        CHECK(xv_st_metadata(f, "config") != NULL, "weights: config metadata");
        const xv_st_tensor *t = xv_st_find(f, "text_encoder.bert.embeddings.word_embeddings.weight");
        CHECK(t && t->dtype == XV_ST_F32 && t->ndim == 2 && t->shape[0] == 1000 && t->shape[1] == 64,
              "word embeddings [1000, 64] F32");
        const xv_st_tensor *tied = xv_st_find(f, "text_encoder.cls.predictions.decoder.weight");
        CHECK(t && tied && t->nbytes == tied->nbytes && !memcmp(t->data, tied->data, t->nbytes),
              "tied parameters stored twice with equal values");
        t = xv_st_find(f, "text_encoder.bert.embeddings.position_ids");
        CHECK(t && t->dtype == XV_ST_I64 && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 64,
              "position_ids I64 [1, 64]");
        if (t && t->numel == 64) {
            int32_t ids[64];
            CHECK_OK(xv_st_read_i32(f, t, ids));
            int ok = 1;
            for (int i = 0; i < 64; i++) ok &= ids[i] == i;
            CHECK(ok, "position_ids = 0..63");
        }
        /* every F32 tensor converts */
        int64_t max_numel = 0;
        for (int i = 0; i < xv_st_count(f); i++)
            if (xv_st_at(f, i)->numel > max_numel) max_numel = xv_st_at(f, i)->numel;
        float *buf = malloc((size_t)max_numel * sizeof *buf);
        int bad = 0;
        for (int i = 0; i < xv_st_count(f); i++)
            if (xv_st_at(f, i)->dtype == XV_ST_F32) bad += xv_st_read_f32(f, xv_st_at(f, i), buf) != XV_OK;
        CHECK(bad == 0, "%d F32 tensors failed to read", bad);
        free(buf);
        xv_st_close(f);
    }
    snprintf(path, sizeof path, "%s/tiny/inputs.safetensors", dir);
    f = NULL;
    CHECK_OK(xv_st_open(path, &f));
    if (f) {
        CHECK(xv_st_count(f) == 20, "inputs: %d tensors, expected 20", xv_st_count(f));
        const xv_st_tensor *t = xv_st_find(f, "image.image");
        CHECK(t && t->dtype == XV_ST_F32 && t->ndim == 4 && t->shape[0] == 4 && t->shape[1] == 3 &&
                  t->shape[2] == 224 && t->shape[3] == 224,
              "image.image F32 [4, 3, 224, 224]");
        t = xv_st_find(f, "region.image");
        CHECK(t && t->ndim == 4 && t->shape[0] == 2, "region.image [2, 3, 224, 224]");
        t = xv_st_find(f, "image.text_ids");
        CHECK(t && t->dtype == XV_ST_I64 && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 16,
              "image.text_ids I64 [4, 16]");
        if (t && t->numel == 64) {
            int32_t ids[64];
            CHECK_OK(xv_st_read_i32(f, t, ids));
            CHECK(ids[0] == 101, "text starts with [CLS] (101), found %d", ids[0]);
        }
        xv_st_close(f);
    }
}

/* The fuzz seeds are meant to be valid files: keep them so. */
static void test_fuzz_seeds(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/seeds/safetensors", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        printf("note: %s absent, seed checks not run\n", dir);
        return;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        xv_st_file *f = NULL;
        CHECK_OK(xv_st_open(path, &f));
        xv_st_close(f);
        n++;
    }
    closedir(d);
    CHECK(n >= 5, "%d seed files", n);
}

/* ---- broken files ---- */

/* Expect `bytes` to be refused with `code` and a message containing the
 * label and each of the given fragments. */
static void expect_refused(const char *what, const uint8_t *b, size_t len, xv_status code, const char *frag1,
                           const char *frag2) {
    xv_st_file *f = (xv_st_file *)1;
    xv_status st = xv_st_open_memory(b, len, what, &f);
    const char *m = xv_error_message();
    CHECK(st == code, "%s: status %d, expected %d (%s)", what, (int)st, (int)code, m);
    CHECK(f == NULL, "%s: no handle on failure", what);
    CHECK(strstr(m, what) != NULL, "%s: message names the file: %s", what, m);
    CHECK(!frag1 || strstr(m, frag1), "%s: message lacks '%s': %s", what, frag1, m);
    CHECK(!frag2 || strstr(m, frag2), "%s: message lacks '%s': %s", what, frag2, m);
    if (st == XV_OK) xv_st_close(f);
}

static void expect_header_refused(const char *what, const char *header, size_t data_len, const char *frag1,
                                  const char *frag2) {
    uint8_t *data = calloc(1, data_len + 1);
    size_t len;
    uint8_t *b = blob(header, data, data_len, &len);
    expect_refused(what, b, len, XV_ERR_FORMAT, frag1, frag2);
    free(b);
    free(data);
}

static void test_broken_headers(void) {
    /* valid reference point */
    {
        size_t len;
        uint8_t data[8] = {0};
        uint8_t *b = blob("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ", data, 8, &len);
        xv_st_file *f = NULL;
        CHECK_OK(xv_st_open_memory(b, len, "good", &f));
        xv_st_close(f);
        free(b);
        b = blob("{}", NULL, 0, &len);
        CHECK_OK(xv_st_open_memory(b, len, "empty-object", &f));
        CHECK(f && xv_st_count(f) == 0 && xv_st_at(f, 0) == NULL, "no tensors");
        xv_st_close(f);
        free(b);
    }
    expect_header_refused("not-json", "this is not json", 0, "not valid JSON", NULL);
    expect_header_refused("unterminated", "{\"a\":{\"dtype\":\"F32\",", 0, "not valid JSON", NULL);
    expect_header_refused("trailing", "{}xyz", 0, "trailing", NULL);
    expect_header_refused("top-array", "[1,2]", 0, "must be a JSON object", "an array");
    expect_header_refused("bad-utf8", "{\"\xC3\x28\":{}}", 0, "UTF-8", NULL);
    expect_header_refused("nul-escape", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
                          "NUL", NULL);
    expect_header_refused("raw-control", "{\"a\x01\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
                          "control", NULL);
    {   /* an escaped backslash followed by "u0000" is an ordinary name */
        size_t len;
        uint8_t *b = blob("{\"a\\\\u0000\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", NULL, 0, &len);
        xv_st_file *f = NULL;
        CHECK_OK(xv_st_open_memory(b, len, "escaped-backslash", &f));
        CHECK(f && xv_st_find(f, "a\\u0000"), "name with a literal backslash");
        xv_st_close(f);
        free(b);
    }
    expect_header_refused("entry-not-object", "{\"w\":5}", 0, "'w'", "an object");
    expect_header_refused("unknown-dtype", "{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
                          "'w'", "unknown dtype \"F8\"");
    expect_header_refused("dtype-number", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                          "'w'", "must be a string");
    expect_header_refused("missing-shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "'w'",
                          "missing field \"shape\"");
    expect_header_refused("unknown-field",
                          "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
                          "'w'", "unknown field \"extra\"");
    expect_header_refused("twice-field",
                          "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                          "'w'", "appears twice");
    expect_header_refused("shape-not-array", "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}",
                          16, "'w'", "must be an array");
    expect_header_refused("negative-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                          "'w'", "shape[0]");
    expect_header_refused("fraction-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                          "'w'", "shape[0]");
    expect_header_refused("string-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                          "'w'", "a string");
    expect_header_refused("huge-rank",
                          "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
                          "'w'", "9 dimensions");
    expect_header_refused("overflow",
                          "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                          "\"data_offsets\":[0,4]}}",
                          4, "'w'", "more elements");
    expect_header_refused("overflow-bytes",
                          "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
                          8, "'w'", NULL);
    expect_header_refused("dim-beyond-2^53",
                          "{\"w\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,1]}}", 1, "'w'",
                          "shape[0]");
    expect_header_refused("size-mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                          "'w'", "expected 12");
    expect_header_refused("offsets-past-end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                          8, "'w'", "data section");
    expect_header_refused("begin-after-end", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 8,
                          "'w'", "begin <= end");
    expect_header_refused("offsets-one", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 8, "'w'",
                          "two non-negative integers");
    expect_header_refused("offsets-negative", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 8,
                          "'w'", "data_offsets");
    expect_header_refused("overlap",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                          12, "'a'", "overlap");
    expect_header_refused("overlap-same",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                          4, "'b'", "overlap");
    expect_header_refused("overlap-empty-inside",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                          8, "'e'", "overlap");
    expect_header_refused("duplicate-name",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          8, "'a'", "appears twice");
    /* As strict as the reference reader (huggingface safetensors). */
    expect_header_refused("gap",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                          12, "'b'", "gap of 4 bytes");
    expect_header_refused("gap-at-start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                          "'a'", "gap");
    expect_header_refused("trailing-data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 7,
                          "3 trailing bytes", "last tensor");
    expect_header_refused("trailing-data-no-tensor", "{}", 1, "1 trailing bytes", NULL);
    expect_header_refused("leading-space", " {}", 0, "start with '{'", "whitespace");
    expect_header_refused("float-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
                          "'1.0'", "not written as an integer");
    expect_header_refused("float-offsets",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4e0]}}", 4, "'0.0'",
                          "integer");
    expect_header_refused("leading-zero", "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
                          "'01'", "integer");
    expect_header_refused("fraction-named", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0.5],\"data_offsets\":[0,4]}}",
                          4, "shape[0]", "a fractional number");
    expect_header_refused("duplicate-name-same-span",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                          4, "'a'", "appears twice");
    expect_header_refused("meta-non-string", "{\"__metadata__\":{\"k\":1}}", 0, "\"k\"", "must be a string");
    expect_header_refused("meta-not-object", "{\"__metadata__\":[\"k\"]}", 0, "__metadata__", "an array");
    expect_header_refused("meta-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__",
                          "appears twice");
    expect_header_refused("meta-dup-key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "\"k\"",
                          "appears twice");
}

static void test_broken_lengths(void) {
    uint8_t b[16] = {0};
    expect_refused("short-file", b, 5, XV_ERR_FORMAT, "5 bytes", "at least 8");
    expect_refused("empty-file", b, 0, XV_ERR_FORMAT, "0 bytes", NULL);
    /* header length one past the end */
    b[0] = 9;
    memcpy(b + 8, "{}      ", 8);
    expect_refused("header-past-end", b, 16, XV_ERR_FORMAT, "header length 9", "8 bytes");
    /* header length over the cap */
    memset(b, 0, 8);
    b[5] = 1; /* 2^40 */
    expect_refused("header-cap", b, 16, XV_ERR_FORMAT, "cap", NULL);
    memset(b, 0xFF, 8);
    expect_refused("header-2^64-1", b, 16, XV_ERR_FORMAT, "cap", NULL);
}

/* A valid file cut at every length is refused each time (its data section
 * ends with the last tensor, so every cut removes needed bytes). */
static void test_truncated(void) {
    float a[5] = {1, 2, 3, 4, 5};
    uint16_t h[3] = {1, 2, 3};
    int64_t s5[1] = {5}, s3[1] = {3};
    char path[512], cut[512];
    path_in_dir(path, sizeof path, "full.safetensors");
    path_in_dir(cut, sizeof cut, "cut.safetensors");
    xv_st_writer *w;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "a", XV_ST_F32, s5, 1, a, false));
    CHECK_OK(xv_st_writer_add(w, "h", XV_ST_F16, s3, 1, h, false));
    CHECK_OK(xv_st_writer_meta(w, "k", "v"));
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    size_t len;
    uint8_t *full = slurp(path, &len);
    int accepted = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n + 1); /* exact size: ASan sees any read past the cut */
        memcpy(copy, full, n);
        xv_st_file *f = NULL;
        if (xv_st_open_memory(copy, n, "cut", &f) == XV_OK) {
            accepted++;
            xv_st_close(f);
        } else {
            CHECK(strstr(xv_error_message(), "cut") != NULL, "message names the label");
        }
        /* the same through the file path (mmap) for a sample of cuts */
        if (n % 7 == 0) {
            spit(cut, full, n);
            CHECK(xv_st_open(cut, &f) == XV_ERR_FORMAT && strstr(xv_error_message(), cut), "cut file %zu: %s", n,
                  xv_error_message());
        }
        free(copy);
    }
    CHECK(accepted == 0, "%d truncated files accepted", accepted);
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open_memory(full, len, "full", &f));
    xv_st_close(f);
    free(full);

    CHECK(xv_st_open("/nonexistent/x.safetensors", &f) == XV_ERR_MISSING && f == NULL &&
              strstr(xv_error_message(), "/nonexistent/x.safetensors"),
          "missing file: %s", xv_error_message());
    CHECK(xv_st_open(g_dir, &f) == XV_ERR_IO && f == NULL, "directory refused: %s", xv_error_message());
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(p);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_st_test", g_dir, sizeof g_dir)) return xv_test_finish("test_safetensors");
    test_round_trip_every_dtype();
    test_every_f16();
    test_deterministic();
    test_odd_names();
    test_atomic_write();
    test_unaligned();
    test_conversion_refusals();
    test_fixtures();
    test_fuzz_seeds();
    test_broken_headers();
    test_broken_lengths();
    test_truncated();
    if (nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return xv_test_finish("safetensors");
}
