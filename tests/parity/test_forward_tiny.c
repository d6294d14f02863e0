/* Parity with the official implementation: `xvlm forward` on the tiny golden
 * model must reproduce every output tensor of both steps (image-text and
 * region), then with --grads every parameter gradient.
 *
 * Tolerance (fixtures/README.md): max|diff| <= 1e-4 · max(1, max|ref|) per
 * tensor. The golden values agree with a float64 recomputation to ~1e-5 and
 * gradients move by ~2e-5 relative under a different fp32 reduction order, so
 * 1e-4 leaves room for summation order only; a real bug (a wrong mask, a
 * missing term, a transposed weight) shows up orders of magnitude above it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

int main(void) {
    const char *fx = xv_fixtures_dir();
    const char *bin = getenv("XV_BIN");
    if (!fx) return xv_test_skip("fixtures absent");
    if (!bin) return xv_test_skip("XV_BIN not set");
    char dir[1024], ref_path[1200], out_path[256], grad_path[256], cmd[4096];
    snprintf(dir, sizeof dir, "%s/tiny", fx);
    snprintf(ref_path, sizeof ref_path, "%s/outputs.safetensors", dir);
    char name[64];
    snprintf(name, sizeof name, "xv_forward_tiny_%d.safetensors", (int)getpid());
    xv_test_tmp_path(name, out_path, sizeof out_path);
    snprintf(name, sizeof name, "xv_forward_tiny_grads_%d.safetensors", (int)getpid());
    xv_test_tmp_path(name, grad_path, sizeof grad_path);

    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --inputs '%s/inputs.safetensors' --out '%s'", bin, dir, dir,
             out_path);
    CHECK(xv_test_run(cmd) == 0, "xvlm forward failed");
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --inputs '%s/inputs.safetensors' --out '%s' --grads", bin,
             dir, dir, grad_path);
    CHECK(xv_test_run(cmd) == 0, "xvlm forward --grads failed");

    /* Tolerance (fixtures README): 1e-4 · max(1, max|ref|) per tensor. */
    int n1 = xv_test_compare_st(ref_path, out_path, "image.", "grad.", 1e-4);
    int n2 = xv_test_compare_st(ref_path, out_path, "region.", "grad.", 1e-4);
    CHECK(n1 == 17 && n2 == 19, "forward outputs compared: %d image, %d region (expected 17 and 19)", n1, n2);
    int n3 = xv_test_compare_st(ref_path, grad_path, "image.grad.", NULL, 1e-4);
    int n4 = xv_test_compare_st(ref_path, grad_path, "region.grad.", NULL, 1e-4);
    CHECK(n3 == 232 && n4 == 232, "gradients compared: %d image, %d region (expected 232 each)", n3, n4);
    unlink(out_path);
    unlink(grad_path);
    return xv_test_finish("test_forward_tiny");
}
