/* One thread count for OpenMP and OpenBLAS. We link the OpenMP build of
 * OpenBLAS, so a BLAS call made inside one of our parallel regions runs
 * single-threaded instead of oversubscribing the cores. */
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/threads.h"

void openblas_set_num_threads(int num_threads);

static int g_threads = 0;

void xv_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int xv_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

void xv_threads_wait_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return; /* the user's choice, or this program already re-executed */
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed: go on as started */
}
