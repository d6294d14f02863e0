/* Parity beyond the tiny fixture: `xvlm forward --grads` on golden sets of
 * other shapes and resolutions (tests/data/golden/<set>: 384 px / window 12 with a
 * single-window last stage, 192 px / window 6 with depths 2-2-4-2, other text
 * depths, fusion_layer, batch sizes). They were made by our own PyTorch
 * reference (tools/torchref), which reproduces the official fixture bit for bit
 * in its outputs and to 1e-6 in its gradients.
 * Tolerance as the fixture README: max|diff| <= 1e-4 · max(1, max|ref|). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

int main(void) {
    const char *bin = getenv("XV_BIN"), *src = getenv("XV_SOURCE_DIR");
    if (!bin || !src) return xv_test_skip("XV_BIN / XV_SOURCE_DIR not set (run through ctest)");
    char golden[2048];
    snprintf(golden, sizeof golden, "%s/tests/data/golden", src);
    DIR *d = opendir(golden);
    if (!d) return xv_test_skip("tests/data/golden missing");
    char tmp[64];
    if (!xv_test_scratch_dir("xv_golden", tmp, sizeof tmp)) return 1;
    int sets = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[1024], cmd[8192], ref[4200], out[4200];
        if (snprintf(dir, sizeof dir, "%s/%.200s", golden, e->d_name) >= (int)sizeof dir) continue;
        snprintf(out, sizeof out, "%s/%s.safetensors", tmp, e->d_name);
        snprintf(cmd, sizeof cmd, "%s forward --grads --model %s --inputs %s/inputs.safetensors --out %s", bin, dir,
                 dir, out);
        printf("== golden set %s\n", e->d_name);
        CHECK(xv_test_run(cmd) == 0, "%s: forward failed", e->d_name);
        snprintf(ref, sizeof ref, "%s/outputs.safetensors", dir);
        int n = xv_test_compare_st(ref, out, "", NULL, 1e-4);
        CHECK(n > 100, "%s: compared only %d tensors", e->d_name, n);
        sets++;
    }
    closedir(d);
    CHECK(sets >= 2, "expected at least two golden sets, found %d", sets);
    xv_test_remove_dir(tmp);
    return xv_test_finish("test_forward_golden_shapes");
}
