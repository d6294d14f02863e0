/* `xvlm synth`: writes what the library writes for the same parameters;
 * --vocab-out alone writes vocab.txt; usage errors exit 2, runtime errors 1,
 * each with a message naming the problem. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "data/image.h"
#include "data/synth.h"
#include "testutil.h"

static char g_bin[4096], g_tmp[64];

/* Run the program through the shell; returns its exit code, stderr in `err`. */
static int run(const char *args, char *err, size_t errlen) {
    return xv_test_cli_status(g_tmp, "synth", args, err, errlen);
}

static bool same_file(const char *a, const char *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool ok = xv_fs_read_file(a, 1 << 26, &x, &nx) == XV_OK && xv_fs_read_file(b, 1 << 26, &y, &ny) == XV_OK && nx == ny &&
              !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

static void check_matches_library(void) {
    char err[8192], args[4096], cli[256], lib[256];
    snprintf(cli, sizeof cli, "%s/cli", g_tmp);
    snprintf(lib, sizeof lib, "%s/lib", g_tmp);
    snprintf(args, sizeof args, "--out '%s' --images 6 --test-images 4 --size 64 --seed 3 --objects 2:3 --threads 2", cli);
    int rc = run(args, err, sizeof err);
    CHECK(rc == 0, "exit %d: %s", rc, err);
    CHECK(strstr(err, "6 train + 4 test images") != NULL, "summary missing: %s", err);
    xv_synth_params p = xv_synth_default_params();
    p.train_images = 6, p.test_images = 4, p.size = 64, p.seed = 3, p.min_objects = 2, p.max_objects = 3, p.threads = 1;
    CHECK_OK(xv_synth_generate(&p, lib, NULL));
    const char *files[] = {"world.json", "scenes.jsonl", "pretrain_regions.jsonl", "retrieval_test.json",
                           "grounding_train.json", "vocab.txt", "images/train_000005.jpg", "images/test_000003.jpg"};
    for (int k = 0; k < 8; k++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", cli, files[k]);
        snprintf(b, sizeof b, "%s/%s", lib, files[k]);
        CHECK(same_file(a, b), "%s differs between the CLI and the library", files[k]);
    }
    /* --no-left-right is the library's flip_invariant. */
    snprintf(args, sizeof args, "--out '%s/cli_flip' --images 6 --test-images 4 --size 64 --seed 3 --no-left-right", g_tmp);
    rc = run(args, err, sizeof err);
    CHECK(rc == 0, "--no-left-right exit %d: %s", rc, err);
    p.flip_invariant = true;
    char lib_flip[256];
    snprintf(lib_flip, sizeof lib_flip, "%s/lib_flip", g_tmp);
    p.min_objects = 2, p.max_objects = 4;
    CHECK_OK(xv_synth_generate(&p, lib_flip, NULL));
    for (int k = 0; k < 5; k++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/cli_flip/%s", g_tmp, files[k]);
        snprintf(b, sizeof b, "%s/%s", lib_flip, files[k]);
        CHECK(same_file(a, b), "--no-left-right: %s differs from the library's flip_invariant world", files[k]);
    }

    char vocab[256];
    snprintf(vocab, sizeof vocab, "%s/vocab_only.txt", g_tmp);
    snprintf(args, sizeof args, "--vocab-out '%s'", vocab);
    rc = run(args, err, sizeof err);
    CHECK(rc == 0, "--vocab-out exit %d: %s", rc, err);
    char ref[512];
    snprintf(ref, sizeof ref, "%s/vocab.txt", lib);
    CHECK(same_file(vocab, ref), "--vocab-out differs from the world's vocab.txt");
}

static void check_errors(void) {
    char err[8192];
    struct {
        const char *args, *message;
        int code;
    } cases[] = {
        {"--images 5", "--out DIR is required", 2},
        {"--out x --size 10", "--size", 2},
        {"--out x --images 0", "--images", 2},
        {"--out x --objects 3:2", "--objects", 2},
        {"--out x --objects 2:9", "--objects", 2},
        {"--out x --objects 0:1", "--objects", 2},
        {"--out x --seed -1", "--seed", 2},
        {"--out x --bogus", "unknown option", 2},
        {"--out", "--out", 2},
        {"--out /proc/xv_no_such/dir --images 2 --test-images 2 --size 64", "cannot create folder", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc = run(cases[k].args, err, sizeof err);
        CHECK(rc == cases[k].code, "'%s': exit %d, expected %d", cases[k].args, rc, cases[k].code);
        CHECK(strstr(err, cases[k].message) != NULL, "'%s': message '%s' lacks '%s'", cases[k].args, err, cases[k].message);
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' synth --help | grep -q 'usage: xvlm synth'", g_bin);
    CHECK(system(cmd) == 0, "--help");
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    const char *bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN not set (run through ctest)");
    snprintf(g_bin, sizeof g_bin, "%s", bin);
    if (!xv_test_scratch_dir("xv_test_cli_synth", g_tmp, sizeof g_tmp)) return xv_test_skip("mkdtemp failed");
    check_matches_library();
    check_errors();
    nftw(g_tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return xv_test_finish("test_cli_synth");
}
