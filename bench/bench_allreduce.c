/* Gradient averaging across ranks (src/dist/): seconds per call of
 * xv_dist_average_grads over parameters of a given size, what one training
 * step of data-parallel pretraining adds, and the rate it reaches.
 *
 *   mpirun -np 2 build/bench/bench_allreduce [MILLION_FLOATS ...]
 *
 * Default sizes: the demo model (docs/demo.md, ~2.9 M) and 27 M (1/8 of
 * X-VLM base's 216 M, whose time scales linearly at this size). In one
 * process it prints that there is nothing to measure. */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "dist/dist.h"

/* Every rank makes the same number of calls (a timed loop could differ
 * between ranks and leave one waiting): the mean of REPS after one warm-up. */
enum { REPS = 5 };
static double seconds_per_average(xv_graph *g, xv_params *p) {
    double t0 = 0;
    for (int i = 0; i <= REPS; i++) {
        if (i == 1) {
            xv_dist_barrier();
            t0 = xv_bench_now();
        }
        if (xv_dist_average_grads(g, p) != XV_OK) xv_dist_abort(1, "bench_allreduce: %s", xv_error_message());
    }
    return (xv_bench_now() - t0) / REPS;
}

int main(int argc, char **argv) {
    if (xv_dist_init(&argc, &argv) != XV_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", xv_error_message());
        return 1;
    }
    if (xv_dist_world() == 1) {
        printf("bench_allreduce: one process, nothing to measure (run it under mpirun -np N)\n");
        return 0;
    }
    double sizes[8] = {2.9, 27};
    int n_sizes = 2;
    if (argc > 1) n_sizes = 0;
    for (int i = 1; i < argc && n_sizes < 8; i++) sizes[n_sizes++] = atof(argv[i]);
    for (int s = 0; s < n_sizes; s++) {
        xv_params p;
        xv_params_init(&p);
        xv_graph *g = xv_graph_new(0);
        const int64_t total = (int64_t)(sizes[s] * 1e6), chunk = 1 << 20;
        for (int64_t done = 0, k = 0; done < total; done += chunk, k++) {
            char name[32];
            snprintf(name, sizeof name, "p%lld", (long long)k);
            const int64_t n = total - done < chunk ? total - done : chunk;
            xv_tensor *t = xv_params_add(&p, name, XV_SHAPE(n));
            if (!t || !xv_grad(g, t)) xv_dist_abort(1, "bench_allreduce: out of memory");
        }
        const double sec = seconds_per_average(g, &p);
        if (xv_dist_rank() == 0)
            printf("world %d: %6.1f M floats (%7.1f MB) averaged in %8.2f ms  (%.2f GB/s of gradient per rank)\n",
                   xv_dist_world(), sizes[s], 4e-6 * (double)total, 1e3 * sec, 4e-9 * (double)total / sec);
        xv_graph_free(g);
        xv_params_free(&p);
    }
    xv_dist_finalize();
    return 0;
}
