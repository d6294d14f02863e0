/* Helpers shared by the benchmarks: wall-clock timing, robust repetition,
 * the machine's sgemm reference rate, and peak memory. */
#ifndef XV_BENCHUTIL_H
#define XV_BENCHUTIL_H

#include <stddef.h>

double xv_bench_now(void); /* seconds, monotonic (or process CPU time, see below) */
/* Make xv_bench_now (and everything timed with it) read the process CPU clock:
 * with one thread on a machine shared with other jobs, that leaves out the
 * time the process waits for a core. */
void xv_bench_use_cpu_clock(int on);
/* Run fn(ctx) repeatedly for at least min_seconds (and >= 3 times); return the
 * median seconds per call. */
double xv_bench_median(void (*fn)(void *), void *ctx, double min_seconds);
/* Sorts v[0..n) ascending (v[0] is then the best) and returns its median. */
double xv_bench_sort_median(double *v, int n);
/* Fastest of `reps` runs of fn(ctx) in seconds: on a shared, loaded machine
 * the median mostly measures the other processes, so benches report both. */
double xv_bench_best(void (*fn)(void *), void *ctx, int reps);
/* GFLOP/s of raw cblas_sgemm on C[M,N] = A[M,K]·B[N,K]ᵀ, measured now. */
double xv_bench_sgemm_gflops(int M, int N, int K, double min_seconds);
/* The same sgemm per second of process CPU time (GFLOP per CPU-second, all
 * threads together): on a machine shared with other jobs this stays close to
 * the unloaded rate per core, where wall-clock rates drop with the load. */
double xv_bench_sgemm_gflops_cpu(int M, int N, int K, double min_seconds);
/* `--only NAME`: the index of NAME in a table of n pieces whose entries, each
 * `stride` bytes, start with their `const char *name`; -1 when absent. */
int xv_bench_piece_index(const char *name, const void *table, int n, size_t stride);
/* Peak resident set size of this process in MiB. */
double xv_bench_peak_rss_mib(void);
/* Minor page faults of this process so far (first touches of fresh memory:
 * a step that faults many is paying the kernel to zero pages). */
long xv_bench_minor_faults(void);

#endif
