/* `xvlm info`: what this build is and what it will use. */
#include <cblas.h>
#include <stdio.h>

#include "commands.h"
#include "xvlm.h"

int xv_cmd_info(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        printf("usage: xvlm info\n\nPrints the version, thread count and BLAS build.\n");
        return 0;
    }
    xvlm_set_threads(0);
    printf("xvlm %s\n", xvlm_version());
    printf("threads: %d\n", xvlm_get_threads());
    printf("blas: %s\n", openblas_get_config());
    return 0;
}
