/* Parity with the official 2-process pretraining step (fixtures/ddp2): under
 * `mpirun -np 2 xvlm forward --grads`, each rank runs its own batch, ITC
 * gathers the features of both, and the gradients are averaged over the
 * ranks. Every per-rank output, the global ITC logits and the averaged region
 * gradients must match the official values.
 *
 * Tolerance (fixtures/README.md, ddp2/): max|diff| <= 1e-4 · max(1, max|ref|)
 * per tensor, as for tiny/: the averaging adds no error, the per-rank
 * forward/backward has fp32 summation-order noise of ~1e-5 relative. The
 * temperature's gradient is the clearest check of the semantics: averaged as
 * the other parameters are, it would be off by 1.8. Skipped without MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

int main(void) {
    const char *fx = xv_fixtures_dir();
    const char *bin = getenv("XV_BIN");
    const char *mpirun = xv_test_mpirun(2);
    if (!fx) return xv_test_skip("fixtures absent");
    if (!bin) return xv_test_skip("XV_BIN not set");
    if (!mpirun) return xv_test_skip("no MPI in this build, or mpirun absent");
    char dir[1024], ref_path[1200], out_path[256], cmd[4096];
    snprintf(dir, sizeof dir, "%s/ddp2", fx);
    if (access(dir, R_OK) != 0) return xv_test_skip("fixtures/ddp2 absent");
    snprintf(ref_path, sizeof ref_path, "%s/outputs.safetensors", dir);
    char name[64];
    snprintf(name, sizeof name, "xv_forward_ddp2_%d.safetensors", (int)getpid());
    xv_test_tmp_path(name, out_path, sizeof out_path);

    snprintf(cmd, sizeof cmd, "%s'%s' forward --model '%s' --inputs '%s/inputs.safetensors' --out '%s' --grads --threads 1",
             mpirun, bin, dir, dir, out_path);
    CHECK(xv_test_run(cmd) == 0, "mpirun xvlm forward failed");

    static const struct {
        const char *prefix;
        int count;
    } groups[] = {
        {"rank0.image.", 9}, {"rank1.image.", 9}, {"rank0.region.", 12}, {"rank1.region.", 12},
        {"image.sim_i2t_global", 1}, {"region.sim_i2t_global", 1}, {"region.grad.", 232},
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
        int n = xv_test_compare_st(ref_path, out_path, groups[i].prefix, NULL, 1e-4);
        CHECK(n == groups[i].count, "%s: %d tensors compared, expected %d", groups[i].prefix, n, groups[i].count);
    }
    unlink(out_path);
    return xv_test_finish("test_forward_ddp2");
}
