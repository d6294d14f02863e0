/* Gradient averaging across ranks (src/dist/): seconds per call of
 * xv_dist_average_grads over parameters of a given size, what one training
 * step of data-parallel pretraining adds, and the rate it reaches.
 *
 *   mpirun -np 2 build/bench/bench_allreduce [MILLION_FLOATS ...]
 *
 * Default sizes: the demo model (docs/demo.md, ~2.9 M) and 27 M (1/8 of
 * X-VLM base's 216 M, whose time scales linearly at this size). In one
 * process it prints that there is nothing to measure.
 *
 *   mpirun -np 2 build/bench/bench_allreduce --overlap [WIDTH LAYERS ROWS]
 *
 * measures what the overlap of xv_dist_backward_averaged hides: an MLP of
 * LAYERS linear + GELU layers WIDTH wide (default 1024, 8: 8.4 M gradient
 * floats) on ROWS rows (64), timing the backward alone, the backward then
 * xv_dist_average_grads, and the overlapped backward. The all-reduce costs
 * the second minus the first; what the third adds to the first is what the
 * overlap leaves exposed. XV_DIST_BUCKET_FLOATS sets the bucket size (the
 * overlap needs several buckets: 8 Mi floats by default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/rng.h"
#include "dist/dist.h"
#include "ops/ops.h"

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

/* Uniform in [-scale, scale) from `seed`. */
static void fill(float *x, int64_t n, float scale, uint64_t seed) {
    xv_rng r;
    xv_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = scale * (float)(2 * xv_rng_uniform_double(&r) - 1);
}

enum { MODE_BACKWARD, MODE_SEQUENTIAL, MODE_OVERLAPPED, N_MODES };

/* One forward (untimed) and the timed backward of `mode`, in seconds. */
static double timed_backward(xv_graph *g, xv_params *p, const float *x, int width, int layers, int rows, int mode) {
    xv_graph_reset(g);
    xv_params_zero_grad(p);
    xv_tensor *h = xv_tensor_wrap_f32(g, (float *)x, XV_SHAPE(rows, width));
    for (int l = 0; l < layers; l++) h = xv_linear_gelu(g, h, p->items[2 * l], p->items[2 * l + 1]);
    xv_tensor *loss = xv_mean(g, h);
    if (!loss) xv_dist_abort(1, "bench_allreduce: %s", xv_error_message());
    xv_dist_barrier();
    const double t0 = xv_bench_now();
    xv_status st = mode == MODE_OVERLAPPED ? xv_dist_backward_averaged(g, loss, p) : xv_backward(g, loss);
    if (st == XV_OK && mode == MODE_SEQUENTIAL) st = xv_dist_average_grads(g, p);
    if (st != XV_OK) xv_dist_abort(1, "bench_allreduce: %s", xv_error_message());
    return xv_bench_now() - t0;
}

static void overlap_case(int width, int layers, int rows) {
    xv_params p;
    xv_params_init(&p);
    for (int l = 0; l < layers; l++) {
        char w[32], b[32];
        snprintf(w, sizeof w, "layer%d.weight", l), snprintf(b, sizeof b, "layer%d.bias", l);
        xv_tensor *tw = xv_params_add(&p, w, XV_SHAPE(width, width)), *tb = xv_params_add(&p, b, XV_SHAPE(width));
        if (!tw || !tb) xv_dist_abort(1, "bench_allreduce: out of memory");
        fill(tw->data, tw->numel, 0.03f, 100 + (uint64_t)l);
        fill(tb->data, tb->numel, 0.03f, 200 + (uint64_t)l);
    }
    float *x = malloc(sizeof *x * (size_t)rows * (size_t)width);
    xv_graph *g = xv_graph_new(0);
    if (!x || !g) xv_dist_abort(1, "bench_allreduce: out of memory");
    fill(x, (int64_t)rows * width, 1.0f, 7 + (uint64_t)xv_dist_rank());
    double sec[N_MODES] = {0};
    for (int i = 0; i <= REPS; i++) /* the modes interleaved, so a change of load hits them alike */
        for (int mode = 0; mode < N_MODES; mode++) {
            const double t = timed_backward(g, &p, x, width, layers, rows, mode);
            if (i > 0) sec[mode] += t / REPS;
        }
    xv_dist_allreduce_sum_f64(sec, N_MODES); /* the mean over the ranks */
    for (int mode = 0; mode < N_MODES; mode++) sec[mode] /= xv_dist_world();
    const double cost = sec[MODE_SEQUENTIAL] - sec[MODE_BACKWARD], exposed = sec[MODE_OVERLAPPED] - sec[MODE_BACKWARD];
    if (xv_dist_rank() == 0) {
        const double floats = (double)layers * width * (width + 1);
        printf("world %d: MLP %d x %d on %d rows, %.1f M gradient floats, buckets of %.1f M floats\n",
               xv_dist_world(), layers, width, rows, 1e-6 * floats, 1e-6 * (double)xv_dist_bucket_floats());
        printf("  backward alone %8.1f ms | then all-reduce %8.1f ms (+%.1f) | overlapped %8.1f ms (+%.1f): "
               "%.0f %% of the all-reduce hidden\n",
               1e3 * sec[MODE_BACKWARD], 1e3 * sec[MODE_SEQUENTIAL], 1e3 * cost, 1e3 * sec[MODE_OVERLAPPED],
               1e3 * exposed, cost > 0 ? 100.0 * (1 - exposed / cost) : 0.0);
    }
    free(x);
    xv_graph_free(g);
    xv_params_free(&p);
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
    if (argc > 1 && !strcmp(argv[1], "--overlap")) {
        overlap_case(argc > 2 ? atoi(argv[2]) : 1024, argc > 3 ? atoi(argv[3]) : 8, argc > 4 ? atoi(argv[4]) : 64);
        xv_dist_finalize();
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
