#include "benchutil.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/fs.h"

static int bench_cpu_clock;

void xv_bench_use_cpu_clock(int on) { bench_cpu_clock = on; }

double xv_bench_now(void) { return bench_cpu_clock ? xv_cpu_seconds() : xv_monotonic_seconds(); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double xv_bench_sort_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v[n / 2];
}

int xv_bench_piece_index(const char *name, const void *table, int n, size_t stride) {
    for (int k = 0; k < n; k++) {
        const char *piece = *(const char *const *)((const char *)table + (size_t)k * stride);
        if (!strcmp(piece, name)) return k;
    }
    return -1;
}

double xv_bench_best(void (*fn)(void *), void *ctx, int reps) {
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = xv_bench_now();
        fn(ctx);
        double t = xv_bench_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

double xv_bench_median(void (*fn)(void *), void *ctx, double min_seconds) {
    double times[1000];
    int n = 0;
    fn(ctx); /* warm-up */
    double start = xv_bench_now();
    while (n < 1000 && (n < 3 || xv_bench_now() - start < min_seconds)) {
        double t0 = xv_bench_now();
        fn(ctx);
        times[n++] = xv_bench_now() - t0;
    }
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    return times[n / 2];
}

typedef struct {
    int M, N, K;
    float *A, *B, *C;
} sgemm_ctx;

static void run_sgemm(void *p) {
    sgemm_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->M, c->N, c->K, 1.0f, c->A, c->K, c->B,
                c->K, 0.0f, c->C, c->N);
}

double xv_bench_sgemm_gflops(int M, int N, int K, double min_seconds) {
    sgemm_ctx c = {M, N, K, malloc(sizeof(float) * (size_t)M * K), malloc(sizeof(float) * (size_t)N * K),
                   malloc(sizeof(float) * (size_t)M * N)};
    for (size_t i = 0; i < (size_t)M * K; i++) c.A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) c.B[i] = (float)(i % 7) * 0.01f;
    double t = xv_bench_median(run_sgemm, &c, min_seconds);
    free(c.A);
    free(c.B);
    free(c.C);
    return 2.0 * M * N * K / t * 1e-9;
}

double xv_bench_sgemm_gflops_cpu(int M, int N, int K, double min_seconds) {
    sgemm_ctx c = {M, N, K, malloc(sizeof(float) * (size_t)M * K), malloc(sizeof(float) * (size_t)N * K),
                   malloc(sizeof(float) * (size_t)M * N)};
    for (size_t i = 0; i < (size_t)M * K; i++) c.A[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) c.B[i] = (float)(i % 7) * 0.01f;
    double times[1000];
    int n = 0;
    run_sgemm(&c); /* warm-up */
    double start = xv_bench_now();
    while (n < 1000 && (n < 3 || xv_bench_now() - start < min_seconds)) {
        double t0 = xv_cpu_seconds();
        run_sgemm(&c);
        times[n++] = xv_cpu_seconds() - t0;
    }
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    free(c.A);
    free(c.B);
    free(c.C);
    return 2.0 * M * N * K / times[n / 2] * 1e-9;
}

double xv_bench_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

long xv_bench_minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}
