/* The forward product of a Linear layer, y = x·wᵀ + b, on the fastest backend
 * built in: oneDNN's matmul (libdnnl, optional at build time: XV_HAVE_DNNL)
 * or OpenBLAS. On this project's AVX-512 machine oneDNN's brgemm kernels are
 * 10-50% faster than OpenBLAS's sgemm on every Linear shape of X-VLM base and
 * fuse the bias (bench/bench_linear). The Linear backward's products take the
 * same backend (xv_gemm_product).
 *
 * Environment: XV_GEMM=blas forces OpenBLAS (read once, for A/B measurements
 * and tests). Threads: both backends use the OpenMP thread count, and run
 * single-threaded inside a parallel region. The result of each element may
 * differ between backends by fp32 rounding (another summation order), never
 * between runs with the same backend, shapes and thread count. */
#ifndef XV_OPS_GEMM_H
#define XV_OPS_GEMM_H

#include <stdbool.h>

#include "core/tensor.h"

/* What is applied to the product before it is stored. */
typedef enum {
    XV_GEMM_PLAIN = 0,
    /* GELU, exact erf form. oneDNN applies it inside the product's kernel
     * (its gelu_erf: like ours, within 2e-7·max(1, |z|) of the exact GELU on
     * [-8, 8], tests/unit/test_ops_dense.c), saving a pass over the output;
     * OpenBLAS: xv_dense_gelu in place right after the product. */
    XV_GEMM_GELU = 1,
} xv_gemm_act;

/* What happens to each product row before it is stored, in this order. */
typedef struct {
    const float *bias;     /* [out] added to every row, or NULL */
    xv_gemm_act act;
    const float *residual; /* [rows, out] added last (a residual connection), or NULL */
} xv_gemm_epilogue;

/* y[rows, out] = act(x[rows, in]·w[out, in]ᵀ + bias) + residual, overwriting
 * y (never aliasing an input). Each addition rounds once, in that order, on
 * either backend: the same result as the separate ops up to the product's
 * own summation order. Needs rows, in, out >= 1 and within 32-bit BLAS
 * indices (the caller checks). Scratch comes from g's arena; false (graph
 * error set) only when that runs out. */
bool xv_gemm_linear(xv_graph *g, const float *x, const float *w, const xv_gemm_epilogue *ep, float *y,
                    int64_t rows, int64_t in, int64_t out);

/* c[m, n] = op(a)·op(b), or += when `accumulate`: a is [m, k] (stored [k, m]
 * when ta), b is [k, n] (stored [n, k] when tb), all dense row-major. The
 * backward products of the Linear layers, on the same backend as the forward
 * (oneDNN's matmul reads the transposed operands in place: 1.1-3.7× OpenBLAS's
 * sgemm on X-VLM base's gradient shapes here). Threads: the OpenMP thread
 * count, one inside a parallel region. Needs m, n, k >= 1 within 32-bit BLAS
 * indices. False (graph error set) only when g's arena runs out. */
bool xv_gemm_product(xv_graph *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                     bool accumulate, float *c);

/* Which backend xv_gemm_linear uses: "onednn" or "openblas". */
const char *xv_gemm_backend(void);

/* bf16 inference (--precision bf16): the same product with the weights as
 * bf16 ([out, in], converted once at load: model/precision.h) and x rounded to
 * bf16 on the way in (nearest even), products summed in fp32, the epilogue in
 * fp32. oneDNN only (its brgemm kernels on AVX512-BF16 or AMX). On a CPU
 * without those oneDNN would emulate bf16 more slowly than fp32, so
 * xv_gemm_bf16_ready refuses instead. False (graph error set) when out of
 * arena memory or when oneDNN has no kernel. */
bool xv_gemm_linear_bf16(xv_graph *g, const float *x, const uint16_t *w, const xv_gemm_epilogue *ep, float *y,
                         int64_t rows, int64_t in, int64_t out);

/* XV_OK when xv_gemm_linear_bf16 can run here; else an error (set) naming what is missing:
 * oneDNN in the build, oneDNN not turned off by XV_GEMM=blas, AVX512-BF16 or AMX. */
xv_status xv_gemm_bf16_ready(void);

/* The instruction set of oneDNN's kernels ("avx512_core_bf16", "avx512_core_amx", ...;
 * ONEDNN_MAX_CPU_ISA may lower it), or "none" when oneDNN is not in use. */
const char *xv_gemm_isa(void);

#endif
