/* `xvlm info`: what this build is and what it will use. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "dist/dist.h"
#include "model_opts.h"
#include "ops/gemm.h"
#include "options.h"
#include "xvlm.h"

int xv_cmd_info(int argc, char **argv) {
    int threads = 0;
    const char *precision = "fp32";
    const xv_opt opts[] = {XV_OPT_THREADS(&threads),
                           {.name = "--precision", .kind = XV_OPT_CHOICE, .dest = &precision, .value = "P",
                            .choices = xv_cli_precisions, .help = "the precision to report on (as the model commands take it)"},
                           XV_OPT_END};
    const xv_cli_spec spec = {
        .cmd = "info",
        .usage = "xvlm info [--threads N] [--precision fp32|bf16]",
        .about = "Prints the version, the thread count the other commands would use, the BLAS build,\n"
                 "the kernels of the Linear products at the given precision (exit status 1 when\n"
                 "this CPU or build cannot run it) and whether it runs over several processes (MPI).\n",
        .opts = opts,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_set_threads(threads);
    printf("xvlm %s\n", xvlm_version());
    printf("threads: %d\n", xvlm_get_threads());
    printf("blas: %s\n", openblas_get_config());
    bool bf16 = !strcmp(precision, "bf16");
    printf("precision: %s\n", precision);
    /* Linear products: the backend, oneDNN's instruction set and the types. */
    printf("linear products: %s, %s (oneDNN ISA: %s)\n", bf16 ? "onednn" : xv_gemm_backend(),
           bf16 ? "bf16 weights and inputs, fp32 sums" : "fp32", xv_gemm_isa());
    int rc_bf16 = 0;
    if (bf16 && xv_gemm_bf16_ready() != XV_OK) {
        printf("bf16: not available: %s\n", xv_error_message());
        rc_bf16 = 1;
    }
    printf("processes: %s; this one is rank %d of %d\n",
           xv_dist_has_mpi() ? "MPI (mpirun -np N: data-parallel)" : "one (built without MPI)", xv_dist_rank(),
           xv_dist_world());
    return rc_bf16;
}
