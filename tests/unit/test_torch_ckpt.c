/* PyTorch checkpoints (tests/data/torch/, made by tools/make_torch_checkpoints.py
 * with torch 1.13): every tensor read bit for bit as saved, conversion to
 * safetensors keeps or drops exactly what the official loader does, and
 * hostile or broken files are refused with a message naming the problem. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/convert_torch.h"
#include "io/relpos_interp.h"
#include "io/safetensors.h"
#include "io/torch_ckpt.h"
#include "testutil.h"

static char data_dir[1024];
static char tmp_dir[64];

/* dir/name in a rotating set of buffers: use the result right away. */
static const char *path_in(const char *dir, const char *name) {
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

typedef struct {
    char p[1200];
} path_buf;

static path_buf tmp_path(const char *name) {
    path_buf b;
    snprintf(b.p, sizeof b.p, "%s/%s", tmp_dir, name);
    return b;
}

static bool same_shape(int nd, const int64_t *a, int nd2, const int64_t *b) {
    if (nd != nd2) return false;
    for (int i = 0; i < nd; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* Every tensor of `ckpt` equals the expected file (names in order, dtype,
 * shape, bytes). */
static void test_read_exact(const char *ckpt, const char *expected) {
    xv_tc_file *f = NULL;
    xv_st_file *e = NULL;
    CHECK_OK(xv_tc_open(path_in(data_dir, ckpt), &f));
    CHECK_OK(xv_st_open(path_in(data_dir, expected), &e));
    if (!f || !e) goto done;
    CHECK(xv_tc_count(f) == xv_st_count(e), "%s: %d tensors, expected %d", ckpt, xv_tc_count(f), xv_st_count(e));
    int mismatches = 0;
    for (int i = 0; i < xv_tc_count(f); i++) {
        const xv_tc_tensor *t = xv_tc_at(f, i);
        const xv_st_tensor *x = xv_st_find(e, t->name);
        const void *data = NULL;
        CHECK_OK(xv_tc_data(f, t, &data));
        bool ok = x && data && x->dtype == t->dtype && same_shape(t->ndim, t->shape, x->ndim, x->shape) &&
                  x->nbytes == t->nbytes && !memcmp(data, x->data, t->nbytes);
        if (!ok && mismatches++ < 5) CHECK(ok, "%s: tensor '%s' differs from the saved one", ckpt, t->name);
    }
    CHECK(mismatches == 0, "%s: %d tensors differ", ckpt, mismatches);
done:
    xv_st_close(e);
    xv_tc_close(f);
}

static void test_special_layout(void) {
    xv_tc_file *f = NULL;
    CHECK_OK(xv_tc_open(path_in(data_dir, "special.th"), &f));
    if (!f) return;
    const xv_tc_tensor *w = xv_tc_find(f, "w"), *wt = xv_tc_find(f, "w_t"), *a = xv_tc_find(f, "first"),
                       *b = xv_tc_find(f, "second"), *ex = xv_tc_find(f, "expanded");
    CHECK(w && wt && a && b && ex, "tensors present");
    if (w && wt && a && b && ex) {
        CHECK(w->contiguous && !wt->contiguous && !strcmp(w->storage_key, wt->storage_key), "transposed view shares storage");
        CHECK(!strcmp(a->storage_key, b->storage_key) && a->storage_offset == 0 && b->storage_offset == 10,
              "one storage at offsets 0 and 10");
        CHECK(ex->stride[0] == 0, "expanded has stride 0");
        const void *d1, *d2;
        CHECK_OK(xv_tc_data(f, w, &d1));
        CHECK_OK(xv_tc_data(f, w, &d2));
        CHECK(d1 == d2, "data is read once");
    }
    const cJSON *cfg = xv_tc_config(f);
    char *s = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    const char *want = "{\"image_res\":384,\"name\":\"spécial ✓\",\"none\":null,\"flag\":true,\"ratio\":2.5,"
                       "\"big\":1099511627776,\"neg\":-7,\"pair\":[1,2],\"nested\":{\"list\":[1,[2,[3]]],\"empty\":{}}}";
    CHECK(s && !strcmp(s, want), "config JSON: %s", s ? s : "(none)");
    cJSON_free(s);
    xv_tc_close(f);
}

/* A pickle can repeat a dict key; as in Python the key keeps its first place
 * and the last value counts. */
static void test_duplicate_config_keys(void) {
    xv_tc_file *f = NULL;
    CHECK_OK(xv_tc_open(path_in(data_dir, "dup_config_keys.th"), &f));
    if (!f) return;
    char *s = xv_tc_config(f) ? cJSON_PrintUnformatted(xv_tc_config(f)) : NULL;
    CHECK(s && !strcmp(s, "{\"image_res\":384,\"x\":1}"), "config %s", s ? s : "(none)");
    cJSON_free(s);
    const xv_tc_tensor *w = xv_tc_find(f, "w");
    const void *d = NULL;
    if (w) CHECK_OK(xv_tc_data(f, w, &d));
    float v[2] = {0};
    if (d) memcpy(v, d, sizeof v);
    CHECK(v[0] == 1.5f && v[1] == -2.0f, "w = %g %g", v[0], v[1]);
    xv_tc_close(f);
}

/* Converted output = expected minus the dropped buffers, everything else
 * bit-equal; interpolated tables equal the interpolation of the saved ones. */
static void check_converted(const char *out, const char *expected, bool tables_resized) {
    xv_st_file *o = NULL, *e = NULL;
    CHECK_OK(xv_st_open(out, &o));
    CHECK_OK(xv_st_open(path_in(data_dir, expected), &e));
    if (!o || !e) goto done;
    int kept = 0, bad = 0, tables = 0;
    for (int i = 0; i < xv_st_count(e); i++) {
        const xv_st_tensor *x = xv_st_at(e, i), *y = xv_st_find(o, x->name);
        if (xv_convert_drops(x->name)) {
            CHECK(!y, "%s: buffer %s should be dropped", out, x->name);
            continue;
        }
        kept++;
        if (!y) {
            CHECK(y, "%s: %s missing", out, x->name);
            continue;
        }
        if (tables_resized && strstr(x->name, "relative_position_bias_table")) {
            tables++;
            float *src = malloc(sizeof(float) * (size_t)x->numel), *want = malloc(sizeof(float) * (size_t)y->numel),
                  *got = malloc(sizeof(float) * (size_t)y->numel);
            CHECK_OK(xv_st_read_f32(e, x, src));
            CHECK_OK(xv_st_read_f32(o, y, got));
            CHECK(y->dtype == XV_ST_F32 && y->ndim == 2 && y->shape[1] == x->shape[1], "%s: F32 [rows, heads]", y->name);
            CHECK_OK(xv_relpos_interp(src, (int)x->shape[0], (int)x->shape[1], want, (int)y->shape[0]));
            if (memcmp(want, got, sizeof(float) * (size_t)y->numel) && bad++ < 3) CHECK(0, "%s: table differs", y->name);
            free(src), free(want), free(got);
            continue;
        }
        bool ok = y->dtype == x->dtype && same_shape(x->ndim, x->shape, y->ndim, y->shape) &&
                  !memcmp(x->data, y->data, x->nbytes);
        if (!ok && bad++ < 3) CHECK(ok, "%s: %s differs", out, x->name);
    }
    CHECK(bad == 0, "%s: %d tensors differ", out, bad);
    CHECK(xv_st_count(o) == kept, "%s: %d tensors, expected %d", out, xv_st_count(o), kept);
    if (tables_resized) CHECK(tables == 8, "%s: %d tables resized", out, tables);
done:
    xv_st_close(o);
    xv_st_close(e);
}

static int cfg_int(const cJSON *c, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void test_convert(void) {
    xv_infer_opts o = {.text_heads = 2};
    path_buf pw = tmp_path("weights.safetensors"), pc = tmp_path("config.json"), p16 = tmp_path("retrieval.safetensors"),
             pbig = tmp_path("w5.safetensors");
    const char *dir_w = pw.p, *dir_c = pc.p, *f16 = p16.p, *big = pbig.p;
    CHECK_OK(xv_convert_torch(path_in(data_dir, "micro_pretrain_fp32.th"), dir_w, dir_c, &o, NULL, NULL));
    check_converted(dir_w, "micro_pretrain_fp32.expected.safetensors", false);

    /* The config: from the shapes, image_res from the checkpoint's own config. */
    xv_st_file *w = NULL;
    CHECK_OK(xv_st_open(dir_w, &w));
    const char *meta = w ? xv_st_metadata(w, "config") : NULL;
    cJSON *cfg = meta ? cJSON_Parse(meta) : NULL;
    CHECK(cfg != NULL, "config metadata");
    if (cfg) {
        CHECK(cfg_int(cfg, "vision", "window_size") == 3 && cfg_int(cfg, "vision", "image_res") == 96, "window/res");
        CHECK(cfg_int(cfg, "vision", "embed_dim") == 2 && cfg_int(cfg, "vision", "vision_width") == 16, "vision dims");
        const cJSON *heads = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "vision"), "num_heads");
        char *hs = cJSON_PrintUnformatted(heads);
        CHECK(hs && !strcmp(hs, "[1,1,2,2]"), "vision heads %s", hs ? hs : "?");
        cJSON_free(hs);
        CHECK(cfg_int(cfg, "text", "hidden_size") == 8 && cfg_int(cfg, "text", "num_hidden_layers") == 4 &&
                  cfg_int(cfg, "text", "fusion_layer") == 2 && cfg_int(cfg, "text", "encoder_width") == 16 &&
                  cfg_int(cfg, "text", "vocab_size") == 50 && cfg_int(cfg, "text", "num_attention_heads") == 2,
              "text config");
        CHECK(cfg_int(cfg, "embed_dim", NULL) == 4 && cfg_int(cfg, "max_tokens", NULL) == 40, "top-level config");
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(cfg, "text_prefix")->valuestring, "text_encoder.bert."), "prefix");
    }
    /* config.json holds the same object */
    uint8_t *text = NULL;
    size_t n = 0;
    cJSON *file_cfg = xv_fs_read_file(dir_c, 8191, &text, &n) == XV_OK ? cJSON_Parse((const char *)text) : NULL;
    free(text);
    CHECK(file_cfg && cfg && cJSON_Compare(cfg, file_cfg, true), "config.json equals the metadata");
    cJSON_Delete(file_cfg);
    cJSON_Delete(cfg);
    xv_st_close(w);

    /* A bare fp16 state_dict has no config: the resolution must be given. */
    CHECK(xv_convert_torch(path_in(data_dir, "micro_retrieval_fp16.th"), f16, NULL, &o, NULL, NULL) == XV_ERR_INVALID_ARG,
          "no image_res known");
    CHECK(strstr(xv_error_message(), "cannot infer image_res") && strstr(xv_error_message(), "give --image-res"), "message: %s", xv_error_message());
    o.image_res = 96;
    CHECK_OK(xv_convert_torch(path_in(data_dir, "micro_retrieval_fp16.th"), f16, NULL, &o, NULL, NULL));
    check_converted(f16, "micro_retrieval_fp16.expected.safetensors", false);

    /* A new window: tables interpolated (from fp32 and from fp16), the rest unchanged. */
    o.image_res = 160, o.window = 5;
    xv_convert_stats st;
    CHECK_OK(xv_convert_torch(path_in(data_dir, "micro_pretrain_fp32.th"), big, NULL, &o, NULL, &st));
    CHECK(st.interpolated == 8 && st.dropped == 12 && st.written == 232, "stats %d %d %d", st.interpolated, st.dropped,
          st.written);
    check_converted(big, "micro_pretrain_fp32.expected.safetensors", true);
    CHECK_OK(xv_convert_torch(path_in(data_dir, "micro_retrieval_fp16.th"), big, NULL, &o, NULL, &st));
    check_converted(big, "micro_retrieval_fp16.expected.safetensors", true);

    /* Not an X-VLM state dict. */
    CHECK(xv_convert_torch(path_in(data_dir, "special.th"), big, NULL, &o, NULL, NULL) == XV_ERR_MISSING, "special");
    CHECK(strstr(xv_error_message(), "no BERT text encoder") != NULL, "message: %s", xv_error_message());
    o.text_heads = 3; /* 8 is not divisible by 3 */
    CHECK(xv_convert_torch(path_in(data_dir, "micro_pretrain_fp32.th"), big, NULL, &o, NULL, NULL) == XV_ERR_INVALID_ARG,
          "3 heads");
    unlink(dir_w), unlink(dir_c), unlink(f16), unlink(big);
}

/* ---- refused files ---- */

static void test_refused(void) {
    static const struct { const char *file; xv_status code; const char *needle; } cases[] = {
        {"os_system.th", XV_ERR_FORMAT, "global 'os.system' is not allowed"},
        {"builtins_eval.th", XV_ERR_FORMAT, "global '__builtin__.eval' (Python 3: builtins.eval) is not allowed"},
        {"subprocess_popen.th", XV_ERR_FORMAT, "(Python 3: subprocess.Popen) is not allowed"},
        {"posix_system_nested.th", XV_ERR_FORMAT, "global 'posix.system' is not allowed"},
        {"stack_global.th", XV_ERR_FORMAT, "global 'posix.system' is not allowed"},
        {"missing_storage.th", XV_ERR_MISSING, "refers to storage '7' but the archive has no entry archive/data/7"},
        {"size_past_storage.th", XV_ERR_FORMAT, "(size [4,4], stride [4,1], offset 0) reaches past the end of storage '0' (12 elements)"},
        {"offset_past_storage.th", XV_ERR_FORMAT, "offset 100) reaches past the end"},
        {"stride_past_storage.th", XV_ERR_FORMAT, "stride [100,1]"},
        {"extent_overflow.th", XV_ERR_FORMAT, "tensor extent overflows"},
        {"numel_mismatch.th", XV_ERR_FORMAT, "declared as 100 x float32 (4 bytes each) but its archive entry has 48 bytes"},
        {"path_key.th", XV_ERR_FORMAT, "storage key '../../etc/passwd'"},
        {"dup_tensor.th", XV_ERR_FORMAT, "tensor name 'w' appears twice"},
        {"view_bomb.th", XV_ERR_FORMAT, "the tensors declare 4294967296 bytes from 4 bytes of storage"},
        {"big_endian.th", XV_ERR_UNSUPPORTED, "'big'-endian"},
        {"float64.th", XV_ERR_UNSUPPORTED, "dtype float64"},
        {"not_a_dict.th", XV_ERR_FORMAT, "the checkpoint is a list, expected a dict of tensors"},
        {"legacy.th", XV_ERR_UNSUPPORTED, "legacy PyTorch format (torch < 1.6"},
        {"truncated.th", XV_ERR_FORMAT, "truncated or damaged zip archive"},
        {"zip_bomb.th", XV_ERR_FORMAT, "declares 4294967280 bytes from 1033 compressed (more than 1032x): zip bomb"},
    };
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/bad", data_dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        xv_tc_file *f = NULL;
        xv_status st = xv_tc_open(path_in(bad, cases[i].file), &f);
        CHECK(st == cases[i].code && !f, "%s: status %d, want %d", cases[i].file, (int)st, (int)cases[i].code);
        CHECK(strstr(xv_error_message(), cases[i].needle) != NULL, "%s: message '%s' lacks '%s'", cases[i].file,
              xv_error_message(), cases[i].needle);
        CHECK(strstr(xv_error_message(), cases[i].file) != NULL, "%s: message names the file", cases[i].file);
        xv_tc_close(f);
    }
    xv_tc_file *f = NULL;
    CHECK(xv_tc_open(path_in(bad, "no_such_file.th"), &f) == XV_ERR_IO, "missing file");
    /* Never created by any of the above: nothing was executed. */
    CHECK(access("/tmp/xvlm_pwned", F_OK) != 0, "no side effect");
}

/* Every prefix of a valid file is refused cleanly (no crash, no leak), and the
 * absolute caps apply to what the directory declares. */
static void test_truncations(void) {
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK_OK(xv_fs_read_file(path_in(data_dir, "special.th"), 1 << 16, &buf, &n));
    CHECK(n > 1000, "special.th read");
    xv_tc_file *f = NULL;
    CHECK_OK(xv_tc_open_memory(buf, n, "special", &f));
    xv_tc_close(f);
    int accepted = 0;
    for (size_t len = 0; len < n; len += 3) {
        f = NULL;
        if (xv_tc_open_memory(buf, len, "cut", &f) == XV_OK) accepted++;
        xv_tc_close(f);
    }
    CHECK(accepted == 0, "%d truncated copies accepted", accepted);
    free(buf);
}

/* Fuzz seeds for fuzz_torch_zip open and read completely (also the deflated one). */
static void test_fuzz_seeds(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    static const char *seeds[] = {"special.th", "special_deflated.th", "bare_fp16.th"};
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/fuzz/seeds/torch_zip", src ? src : ".");
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        xv_tc_file *f = NULL;
        CHECK_OK(xv_tc_open(path_in(dir, seeds[i]), &f));
        for (int k = 0; f && k < xv_tc_count(f); k++) {
            const void *d;
            CHECK_OK(xv_tc_data(f, xv_tc_at(f, k), &d));
        }
        xv_tc_close(f);
    }
}

int main(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/torch", src ? src : ".");
    if (!xv_test_scratch_dir("xvlm_torch_ckpt", tmp_dir, sizeof tmp_dir)) return xv_test_skip("cannot create a temporary directory");
    test_read_exact("micro_pretrain_fp32.th", "micro_pretrain_fp32.expected.safetensors");
    test_read_exact("micro_retrieval_fp16.th", "micro_retrieval_fp16.expected.safetensors");
    test_read_exact("special.th", "special.expected.safetensors");
    test_special_layout();
    test_duplicate_config_keys();
    test_convert();
    test_refused();
    test_truncations();
    test_fuzz_seeds();
    rmdir(tmp_dir);
    return xv_test_finish("test_torch_ckpt");
}
