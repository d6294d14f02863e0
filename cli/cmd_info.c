/* `xvlm info`: what this build is and what it will use. */
#include <cblas.h>
#include <stdio.h>

#include "options.h"
#include "xvlm.h"

int xv_cmd_info(int argc, char **argv) {
    int threads = 0;
    const xv_opt opts[] = {XV_OPT_THREADS(&threads), XV_OPT_END};
    const xv_cli_spec spec = {
        .cmd = "info",
        .usage = "xvlm info [--threads N]",
        .about = "Prints the version, the thread count the other commands would use, and the BLAS build.\n",
        .opts = opts,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_set_threads(threads);
    printf("xvlm %s\n", xvlm_version());
    printf("threads: %d\n", xvlm_get_threads());
    printf("blas: %s\n", openblas_get_config());
    return 0;
}
