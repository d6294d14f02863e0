/* `xvlm info`: what this build is and what it will use. */
#include <cblas.h>
#include <stdio.h>

#include "dist/dist.h"
#include "options.h"
#include "xvlm.h"

int xv_cmd_info(int argc, char **argv) {
    int threads = 0;
    const xv_opt opts[] = {XV_OPT_THREADS(&threads), XV_OPT_END};
    const xv_cli_spec spec = {
        .cmd = "info",
        .usage = "xvlm info [--threads N]",
        .about = "Prints the version, the thread count the other commands would use, the BLAS build\n"
                 "and whether it runs over several processes (MPI).\n",
        .opts = opts,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_set_threads(threads);
    printf("xvlm %s\n", xvlm_version());
    printf("threads: %d\n", xvlm_get_threads());
    printf("blas: %s\n", openblas_get_config());
    printf("processes: %s; this one is rank %d of %d\n",
           xv_dist_has_mpi() ? "MPI (mpirun -np N: data-parallel)" : "one (built without MPI)", xv_dist_rank(),
           xv_dist_world());
    return 0;
}
