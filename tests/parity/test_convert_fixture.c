/* An official-style PyTorch checkpoint of the tiny fixture model
 * (tests/data/torch/tiny_fixture.th, written by torch.save via
 * tools/make_fixture_checkpoint.py) converted by `xvlm convert` must give the
 * official outputs through `xvlm forward`: the converter keeps every tensor
 * bit for bit and infers a config the model accepts.
 * Tolerance as the fixture README: max|diff| <= 1e-4 · max(1, max|ref|). */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

int main(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("official fixtures not found (set XV_FIXTURES)");
    const char *bin = getenv("XV_BIN"), *src = getenv("XV_SOURCE_DIR");
    if (!bin || !src) return xv_test_skip("XV_BIN / XV_SOURCE_DIR not set (run through ctest)");
    char dir[64];
    if (!xv_test_scratch_dir("xv_convert_fixture", dir, sizeof dir)) return 1;
    char cmd[4096], ref[1024], out[1200];
    /* The fixture's BERT has 2 heads of 32: not inferable from shapes. */
    snprintf(cmd, sizeof cmd, "%s convert %s/tests/data/torch/tiny_fixture.th %s/model --text-heads 2", bin, src,
             dir);
    CHECK(xv_test_run(cmd) == 0, "convert failed");
    snprintf(cmd, sizeof cmd, "%s forward --model %s/model --inputs %s/tiny/inputs.safetensors --out %s/out.safetensors",
             bin, dir, fx, dir);
    CHECK(xv_test_run(cmd) == 0, "forward on the converted model failed");
    snprintf(ref, sizeof ref, "%s/tiny/outputs.safetensors", fx);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    int n = xv_test_compare_st(ref, out, "", "grad.", 1e-4);
    CHECK(n >= 30, "compared only %d outputs", n);

    /* `--model X.th` converts once into the cache (default heads = hidden/64, as
     * for every official checkpoint) and reuses it: same outputs as an explicit
     * conversion with the same defaults. */
    snprintf(cmd, sizeof cmd, "%s convert %s/tests/data/torch/tiny_fixture.th %s/model1", bin, src, dir);
    CHECK(xv_test_run(cmd) == 0, "convert with default heads failed");
    snprintf(cmd, sizeof cmd, "%s forward --model %s/model1 --inputs %s/tiny/inputs.safetensors --out %s/explicit.safetensors",
             bin, dir, fx, dir);
    CHECK(xv_test_run(cmd) == 0, "forward failed");
    for (int run = 0; run < 2; run++) {
        snprintf(cmd, sizeof cmd,
                 "XV_CACHE_DIR=%s/cache %s forward --model %s/tests/data/torch/tiny_fixture.th "
                 "--inputs %s/tiny/inputs.safetensors --out %s/fly.safetensors 2>%s/fly%d.log",
                 dir, bin, src, fx, dir, dir, run);
        CHECK(xv_test_run(cmd) == 0, "forward on the .th failed (run %d)", run);
    }
    snprintf(cmd, sizeof cmd, "grep -q 'converting' %s/fly0.log && ! grep -q 'converting' %s/fly1.log", dir, dir);
    CHECK(xv_test_run(cmd) == 0, "the first run converts, the second reuses the cache");
    snprintf(ref, sizeof ref, "%s/explicit.safetensors", dir);
    snprintf(out, sizeof out, "%s/fly.safetensors", dir);
    CHECK(xv_test_compare_st(ref, out, "", NULL, 0.0) >= 30, "on-the-fly outputs equal the explicit ones");

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    xv_test_run(cmd);
    return xv_test_finish("test_convert_fixture");
}
