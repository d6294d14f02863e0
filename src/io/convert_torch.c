/* Official checkpoint -> safetensors + config: see convert_torch.h. */
#include "io/convert_torch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/relpos_interp.h"
#include "io/safetensors.h"
#include "io/torch_ckpt.h"

bool xv_convert_drops(const char *name) {
    size_t n = strlen(name);
    static const char tail[] = "position_ids";
    return strstr(name, "relative_position_index") || strstr(name, "attn_mask") ||
           (n >= sizeof tail - 1 && !strcmp(name + n - (sizeof tail - 1), tail));
}

static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        float v = (float)man * 0x1p-24f; /* zero or subnormal, exact */
        return sign ? -v : v;
    }
    bits = exp == 31 ? sign | 0x7f800000u | (man << 13) : sign | ((exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void to_f32(xv_st_dtype dt, const void *src, int64_t n, float *dst) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i++) {
        if (dt == XV_ST_F32) {
            memcpy(&dst[i], b + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            if (dt == XV_ST_F16) dst[i] = half_to_f32(h);
            else memcpy(&dst[i], &bits, 4); /* bfloat16 is the top half of a float */
        }
    }
}

/* Stage of "vision_encoder.layers.<s>.blocks.<b>.attn.relative_position_bias_table", or -1. */
static int table_stage(const char *name) {
    int s, consumed = 0;
    static const char tail[] = "attn.relative_position_bias_table";
    size_t n = strlen(name);
    if (n < sizeof tail || strcmp(name + n - (sizeof tail - 1), tail)) return -1;
    if (sscanf(name, "vision_encoder.layers.%d.%n", &s, &consumed) != 1 || consumed == 0) return -1;
    return s;
}

typedef struct {
    xv_tc_file *ckpt;
    xv_st_writer *writer;
    cJSON *config;
    xv_named_shape *shapes;
    float **tables; /* interpolated tables, alive until written */
    int n_tables;
} job;

/* A bias table interpolated to the stage's window, handed to the writer;
 * *done stays false when the table already has the right size. */
static xv_status add_table(job *j, const xv_tc_tensor *t, int stage, xv_convert_stats *st, bool *done) {
    *done = false;
    int w = xv_swin_stage_window(j->config, stage);
    int64_t rows = (int64_t)(2 * w - 1) * (2 * w - 1);
    if (t->ndim != 2 || w < 1) return xv_error(XV_ERR_SHAPE, "convert: %s is not a [rows, heads] table", t->name);
    if (t->shape[0] == rows) return XV_OK;
    if (t->dtype == XV_ST_I64) return xv_error(XV_ERR_FORMAT, "convert: %s is an integer tensor", t->name);
    const void *data;
    XV_TRY(xv_tc_data(j->ckpt, t, &data));
    int heads = (int)t->shape[1];
    float *src = malloc(sizeof(float) * (size_t)t->numel);
    float *dst = malloc(sizeof(float) * (size_t)rows * (size_t)heads);
    float **nt = realloc(j->tables, sizeof *nt * (size_t)(j->n_tables + 1));
    if (nt) j->tables = nt;
    if (!src || !dst || !nt) {
        free(src);
        free(dst);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    j->tables[j->n_tables++] = dst;
    to_f32(t->dtype, data, t->numel, src);
    xv_status s = xv_relpos_interp(src, (int)t->shape[0], heads, dst, (int)rows);
    free(src);
    if (s != XV_OK) return xv_error_wrap(s, "convert: %s", t->name);
    int64_t shape[2] = {rows, heads};
    XV_TRY(xv_st_writer_add(j->writer, t->name, XV_ST_F32, shape, 2, dst, true));
    *done = true;
    st->interpolated++;
    st->written++;
    st->bytes += sizeof(float) * (size_t)rows * (size_t)heads;
    return XV_OK;
}

static xv_status run(job *j, const char *in, const char *weights_path, const char *config_path,
                     const xv_infer_opts *opts, const char *vocab, xv_convert_stats *st) {
    XV_TRY(xv_tc_open(in, &j->ckpt));
    int n = xv_tc_count(j->ckpt);
    j->shapes = malloc(sizeof *j->shapes * (size_t)(n ? n : 1));
    if (!j->shapes) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const xv_tc_tensor *t = xv_tc_at(j->ckpt, i);
        j->shapes[i] = (xv_named_shape){t->name, t->ndim, t->shape};
    }
    XV_TRY(xv_infer_xvlm_config(j->shapes, n, xv_tc_config(j->ckpt), opts, &j->config));
    XV_TRY(xv_st_writer_new(&j->writer));
    for (int i = 0; i < n; i++) {
        const xv_tc_tensor *t = xv_tc_at(j->ckpt, i);
        if (xv_convert_drops(t->name)) {
            st->dropped++;
            continue;
        }
        int stage = table_stage(t->name);
        if (stage >= 0) {
            bool done;
            XV_TRY(add_table(j, t, stage, st, &done));
            if (done) continue;
        }
        const void *data;
        XV_TRY(xv_tc_data(j->ckpt, t, &data));
        XV_TRY(xv_st_writer_add(j->writer, t->name, t->dtype, t->shape, t->ndim, data, true));
        st->written++;
        st->bytes += t->nbytes;
    }
    char *compact = cJSON_PrintUnformatted(j->config);
    if (!compact) return xv_error(XV_ERR_NOMEM, "out of memory");
    const char *base = strrchr(in, '/');
    xv_status s = xv_st_writer_meta(j->writer, "config", compact);
    if (s == XV_OK) s = xv_st_writer_meta(j->writer, "format", "pt");
    if (s == XV_OK) s = xv_st_writer_meta(j->writer, "source", base ? base + 1 : in);
    if (s == XV_OK && vocab) s = xv_st_writer_meta(j->writer, "vocab", vocab);
    cJSON_free(compact);
    XV_TRY(s);
    XV_TRY(xv_st_writer_write(j->writer, weights_path));
    if (config_path) {
        char *pretty = cJSON_Print(j->config);
        if (!pretty) return xv_error(XV_ERR_NOMEM, "out of memory");
        s = xv_fs_write_file(config_path, pretty, strlen(pretty), XV_FS_DURABLE);
        cJSON_free(pretty);
        XV_TRY(s);
    }
    return XV_OK;
}

xv_status xv_convert_torch(const char *in, const char *weights_path, const char *config_path,
                           const xv_infer_opts *opts, const char *vocab, xv_convert_stats *stats) {
    xv_convert_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    job j = {0};
    xv_status st = run(&j, in, weights_path, config_path, opts, vocab, stats);
    xv_st_writer_free(j.writer);
    for (int i = 0; i < j.n_tables; i++) free(j.tables[i]);
    free(j.tables);
    free(j.shapes);
    cJSON_Delete(j.config);
    xv_tc_close(j.ckpt);
    return st;
}
