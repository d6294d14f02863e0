/* `xvlm preprocess` round trip: the tensors it writes equal the in-process
 * test transform of each image, under the image's base name; bad input gives
 * exit code 1 (runtime) or 2 (usage) with a message naming the problem. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "data/image.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "testutil.h"

static char g_bin[4096], g_data[4096], g_tmp[64];

/* Run the program through the shell; returns its exit code, stderr in `err`. */
static int run(const char *args, char *err, size_t errlen) {
    return xv_test_cli_status(g_tmp, "preprocess", args, err, errlen);
}

static void check_round_trip(void) {
    const char *names[] = {"jpeg_420.jpg", "palette4_short.png", "rgba16.png"};
    char args[8192], out[256], err[4096];
    snprintf(out, sizeof out, "%s/out.safetensors", g_tmp);
    int o = snprintf(args, sizeof args, "--image-res 40 --out '%s'", out);
    for (int i = 0; i < 3; i++) o += snprintf(args + o, sizeof args - o, " '%s/%s'", g_data, names[i]);
    int rc = run(args, err, sizeof err);
    CHECK(rc == 0, "exit %d: %s", rc, err);
    xv_st_file *st = NULL;
    CHECK_OK(xv_st_open(out, &st));
    if (!st) return;
    CHECK(xv_st_count(st) == 3, "%d tensors", xv_st_count(st));
    const char *meta = xv_st_metadata(st, "image_res");
    CHECK(meta && !strcmp(meta, "40"), "image_res metadata %s", meta ? meta : "(none)");
    float *got = malloc(sizeof(float) * 3 * 40 * 40), *ref = malloc(sizeof(float) * 3 * 40 * 40);
    for (int i = 0; i < 3; i++) {
        const xv_st_tensor *t = xv_st_find(st, names[i]);
        CHECK(t && t->dtype == XV_ST_F32 && t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 40 && t->shape[2] == 40,
              "%s: missing or wrong shape", names[i]);
        if (!t) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", g_data, names[i]);
        xv_image im;
        CHECK_OK(xv_image_load(path, &im));
        CHECK_OK(xv_transform_test(&im, 40, ref));
        xv_image_free(&im);
        CHECK_OK(xv_st_read_f32(st, t, got));
        CHECK(!memcmp(got, ref, sizeof(float) * 3 * 40 * 40), "%s: stored tensor differs from the transform", names[i]);
    }
    free(got), free(ref);
    xv_st_close(st);
    unlink(out);
}

static void check_errors(void) {
    char args[16384], err[4096], bad[256];
    CHECK(run("--image-res 224", err, sizeof err) == 2, "no --out/images accepted");
    CHECK(run("--image-res 0 --out x.safetensors a.png", err, sizeof err) == 2, "res 0 accepted");
    CHECK(run("--bogus 1", err, sizeof err) == 2, "unknown option accepted");
    snprintf(args, sizeof args, "--image-res 8 --out '%s/o.safetensors' '%s/rgb8.png' '%s/../images/rgb8.png'", g_tmp,
             g_data, g_data);
    CHECK(run(args, err, sizeof err) == 2 && strstr(err, "rgb8.png"), "duplicate base names accepted: %s", err);
    snprintf(bad, sizeof bad, "%s/broken.png", g_tmp);
    FILE *f = fopen(bad, "wb");
    fwrite("\x89PNG\r\n\x1a\n\0\0", 1, 10, f);
    fclose(f);
    snprintf(args, sizeof args, "--image-res 8 --out '%s/o.safetensors' '%s/rgb8.png' '%s'", g_tmp, g_data, bad);
    CHECK(run(args, err, sizeof err) == 1 && strstr(err, bad), "corrupt image: exit/message wrong: %s", err);
    snprintf(args, sizeof args, "%s/o.safetensors", g_tmp);
    CHECK(access(args, F_OK) != 0, "output written despite a failing image");
    unlink(bad);
}

int main(void) {
    const char *bin = getenv("XV_BIN"), *src = getenv("XV_SOURCE_DIR");
    if (!bin || !src) return xv_test_skip("XV_BIN / XV_SOURCE_DIR not set (run through ctest)");
    snprintf(g_bin, sizeof g_bin, "%s", bin);
    snprintf(g_data, sizeof g_data, "%s/tests/data/images", src);
    if (!xv_test_scratch_dir("xvlm_preprocess", g_tmp, sizeof g_tmp)) return xv_test_skip("mkdtemp failed");
    check_round_trip();
    check_errors();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    CHECK(system(cmd) == 0, "cleanup");
    return xv_test_finish("test_cli_preprocess");
}
