/* `xvlm convert` on checkpoints written by PyTorch itself at real sizes: the
 * tiny fixture shapes and X-VLM base (~216M parameters, ~870 MB), at the
 * checkpoint's window and re-windowed to 384 px. Needs Debian's
 * /usr/bin/python3 with torch (skipped otherwise). Reports the converter's
 * peak RSS, which must stay within the output size plus a small constant
 * (tensors are streamed from their storages, never held twice). */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "io/convert_torch.h"
#include "io/safetensors.h"
#include "testutil.h"

#define RSS_SLACK_MB 64 /* program, libraries, pickle and index: well under this */

static char tmp_dir[64];
static const char *src_dir, *bin;

static uint32_t crc32_bytes(const void *data, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Run `xvlm convert args...`; returns the exit code, peak RSS (MiB) and seconds. */
static int run_convert(char *const args[], double *rss_mb, double *secs) {
    double t0 = xv_monotonic_seconds();
    pid_t pid = fork();
    if (pid == 0) {
        execv(bin, args);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return -1;
    *secs = xv_monotonic_seconds() - t0;
    *rss_mb = ru.ru_maxrss / 1024.0; /* KiB on Linux */
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static double file_mb(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size / 1048576.0 : 0;
}

static int generate(const char *set) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/make_torch_checkpoints.py %s %s", src_dir, set, tmp_dir);
    double t0 = xv_monotonic_seconds();
    int rc = system(cmd);
    printf("generated %s with torch in %.1f s\n", set, xv_monotonic_seconds() - t0);
    return rc;
}

/* Expected tensors from a safetensors file (tiny) or a CRC list (base). */
typedef struct {
    xv_st_file *st;
    cJSON *crc;
} expected;

static void check_output(const char *out, const expected *e, bool windowed) {
    xv_st_file *o = NULL;
    CHECK_OK(xv_st_open(out, &o));
    if (!o) return;
    int kept = 0, bad = 0, tables = 0;
    int n = e->st ? xv_st_count(e->st) : cJSON_GetArraySize(e->crc);
    const cJSON *item = e->crc ? e->crc->child : NULL;
    for (int i = 0; i < n; i++, item = item ? item->next : NULL) {
        const xv_st_tensor *x = e->st ? xv_st_at(e->st, i) : NULL;
        const char *name = x ? x->name : item->string;
        const xv_st_tensor *y = xv_st_find(o, name);
        if (xv_convert_drops(name)) {
            if (y && bad++ < 3) CHECK(!y, "%s: buffer %s kept", out, name);
            continue;
        }
        kept++;
        if (!y) {
            if (bad++ < 3) CHECK(y, "%s: %s missing", out, name);
            continue;
        }
        if (windowed && strstr(name, "relative_position_bias_table")) {
            tables++; /* values: unit tests; here the new size */
            if ((y->dtype != XV_ST_F32 || y->shape[0] != 529) && bad++ < 3) CHECK(0, "%s: not [529, heads] F32", name);
            continue;
        }
        bool ok;
        if (x) {
            ok = x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes &&
                 !memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim) && !memcmp(x->data, y->data, x->nbytes);
        } else {
            const cJSON *crc = cJSON_GetObjectItemCaseSensitive(item, "crc32");
            const cJSON *nb = cJSON_GetObjectItemCaseSensitive(item, "nbytes");
            const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
            ok = cJSON_IsNumber(crc) && cJSON_IsNumber(nb) && cJSON_IsString(dt) &&
                 !strcmp(dt->valuestring, xv_st_dtype_name(y->dtype)) && (double)y->nbytes == nb->valuedouble &&
                 (double)crc32_bytes(y->data, y->nbytes) == crc->valuedouble;
        }
        if (!ok && bad++ < 3) CHECK(ok, "%s: %s differs from the saved tensor", out, name);
    }
    CHECK(bad == 0, "%s: %d problems", out, bad);
    CHECK(xv_st_count(o) == kept, "%s: %d tensors, expected %d", out, xv_st_count(o), kept);
    if (windowed) CHECK(tables == 24, "%s: %d tables re-windowed (Swin-B has 24 blocks)", out, tables);
    xv_st_close(o);
}

static void convert_and_check(const char *ckpt, const char *out, const expected *e, char *const extra[],
                              bool windowed, const char *what) {
    char *args[12] = {(char *)bin, "convert", (char *)ckpt, (char *)out};
    int k = 4;
    for (int i = 0; extra && extra[i] && k < 11; i++) args[k++] = extra[i];
    args[k] = NULL;
    double rss = 0, secs = 0;
    int rc = run_convert(args, &rss, &secs);
    CHECK(rc == 0, "%s: xvlm convert exit code %d", what, rc);
    double out_mb = file_mb(out), in_mb = file_mb(ckpt);
    printf("%s: %.1f MB checkpoint -> %.1f MB safetensors in %.2f s, peak RSS %.1f MB (output size %+.1f MB)\n", what, in_mb,
           out_mb, secs, rss, rss - out_mb);
    CHECK(rss <= out_mb + RSS_SLACK_MB, "%s: peak RSS %.1f MB exceeds the output size %.1f MB + %d MB", what, rss, out_mb,
          RSS_SLACK_MB);
    if (rc == 0) check_output(out, e, windowed);
}

static char *in_tmp(const char *name) {
    static char buf[8][1200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

int main(void) {
    src_dir = getenv("XV_SOURCE_DIR");
    bin = getenv("XV_BIN");
    if (!src_dir || !bin) return xv_test_skip("XV_SOURCE_DIR / XV_BIN not set (run through ctest)");
    if (system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
        return xv_test_skip("/usr/bin/python3 with torch is not available");
    if (!xv_test_scratch_dir("xvlm_convert", tmp_dir, sizeof tmp_dir)) return xv_test_finish("test_torch_convert");
    /* A model is written with its vocabulary: like a user's official checkpoint with
     * bert's vocab.txt beside it, a small one (within every generated config's rows). */
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\ncircle\n";
    CHECK_OK(xv_fs_write_file(in_tmp("vocab.txt"), vocab, sizeof vocab - 1, XV_FS_NO_FSYNC));

    /* tiny: the fixture's shapes, compared tensor by tensor */
    CHECK(generate("tiny") == 0, "generator (tiny)");
    expected e = {0};
    CHECK_OK(xv_st_open(in_tmp("tiny_pretrain_fp32.expected.safetensors"), &e.st));
    if (e.st) {
        char *heads[] = {"--text-heads", "2", NULL};
        convert_and_check(in_tmp("tiny_pretrain_fp32.th"), in_tmp("tiny.safetensors"), &e, heads, false, "tiny");
    }
    xv_st_close(e.st);
    e.st = NULL;
    unlink(in_tmp("tiny_pretrain_fp32.th")), unlink(in_tmp("tiny_pretrain_fp32.expected.safetensors"));
    unlink(in_tmp("tiny.safetensors"));

    /* base: compared by CRC-32 per tensor (no second 870 MB copy on disk) */
    CHECK(generate("base") == 0, "generator (base)");
    uint8_t *json = NULL;
    size_t n;
    e.crc = xv_fs_read_file(in_tmp("base_pretrain_fp32.expected.json"), 1 << 20, &json, &n) == XV_OK
                ? cJSON_Parse((const char *)json)
                : NULL;
    free(json);
    CHECK(e.crc != NULL, "expected CRC list");
    if (e.crc) {
        convert_and_check(in_tmp("base_pretrain_fp32.th"), in_tmp("base224.safetensors"), &e, NULL, false,
                          "base @224 (window 7)");
        unlink(in_tmp("base224.safetensors"));
        char *res384[] = {"--image-res", "384", NULL};
        convert_and_check(in_tmp("base_pretrain_fp32.th"), in_tmp("base384.safetensors"), &e, res384, true,
                          "base -> 384 (window 12)");
        unlink(in_tmp("base384.safetensors"));
    }
    cJSON_Delete(e.crc);
    unlink(in_tmp("base_pretrain_fp32.th")), unlink(in_tmp("base_pretrain_fp32.expected.json"));
    unlink(in_tmp("vocab.txt"));
    rmdir(tmp_dir);
    return xv_test_finish("test_torch_convert");
}
