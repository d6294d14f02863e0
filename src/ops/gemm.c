#include "ops/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "ops/dense_internal.h"

/* OpenBLAS threads: a tall product is split by rows into one block per thread,
 * each running single-threaded BLAS and its epilogue, all inside one parallel
 * region (on this project's shared 2-core machines every fork/join can cost a
 * scheduler time slice); from 64 rows per thread, below which BLAS threads
 * the product itself. */
#define FWD_SPLIT_ROWS 64

/* Rows [r0, r1): bias rows, then beta = 1 (the bias add costs no pass of its
 * own; beta = 0 would make OpenBLAS zero y first anyway); GELU and the
 * residual after, while the block is still in cache. */
static void blas_rows(const float *x, const float *w, const xv_gemm_epilogue *ep, float *y, int64_t r0, int64_t r1,
                      int64_t in, int64_t out) {
    const float *b = ep->bias, *res = ep->residual;
    float *yb = y + r0 * out;
    int64_t n = (r1 - r0) * out;
    if (b)
        for (int64_t r = r0; r < r1; r++) memcpy(y + r * out, b, sizeof(float) * (size_t)out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)out, (int)in, 1.0f, x + r0 * in,
                (int)in, w, (int)in, b ? 1.0f : 0.0f, yb, (int)out);
    if (ep->act == XV_GEMM_GELU) xv_dense_gelu(yb, yb, n);
    if (res) {
        const float *rb = res + r0 * out;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) yb[i] += rb[i];
    }
}

static void blas_linear(const float *x, const float *w, const xv_gemm_epilogue *ep, float *y, int64_t rows,
                        int64_t in, int64_t out) {
    if (rows < (int64_t)omp_get_max_threads() * FWD_SPLIT_ROWS) {
        blas_rows(x, w, ep, y, 0, rows, in, out);
        return;
    }
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        blas_rows(x, w, ep, y, rows * tid / nt, rows * (tid + 1) / nt, in, out);
    }
}

static void blas_product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                         bool accumulate, float *c) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                1.0f, a, (int)(ta ? m : k), b, (int)(tb ? k : n), accumulate ? 1.0f : 0.0f, c, (int)n);
}

#ifdef XV_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

static dnnl_engine_t g_engine;
static bool g_use_dnnl;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* Streams are not to be shared between threads; one per thread, kept. */
static _Thread_local dnnl_stream_t t_stream;

static void init_backend(void) {
    const char *env = getenv("XV_GEMM");
    if (env && !strcmp(env, "blas")) return;
    g_use_dnnl = dnnl_engine_create(&g_engine, dnnl_cpu, 0) == dnnl_success;
}

/* oneDNN matmul: src [rows, in] (x_tag ab: x is [rows, in]; ba: x is stored
 * [in, rows]), weights [in, out] (w_tag ab: w is [in, out]; ba: w is stored
 * [out, in], the Linear forward's weight, no copy), both of type dt (f32, or
 * bf16 with fp32 accumulation), bias [1, out] and dst [rows, out] in f32,
 * added to dst's old values when `accumulate` (the sum post-op, first). Primitive descriptors and
 * primitives come from oneDNN's primitive cache after the first call of a
 * shape; the scratchpad (packed blocks) is taken from the graph arena.
 * Returns false when oneDNN refuses (the caller falls back to OpenBLAS). */
static bool onednn_matmul(xv_graph *g, const void *x, dnnl_format_tag_t x_tag, const void *w, dnnl_format_tag_t w_tag,
                        dnnl_data_type_t dt, const xv_gemm_epilogue *ep, bool accumulate, float *y, int64_t rows,
                        int64_t in, int64_t out, bool *oom) {
    const float *b = ep->bias;
    if (!t_stream && dnnl_stream_create(&t_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        t_stream = NULL;
        return false;
    }
    dnnl_dims_t sd = {rows, in}, wd = {in, out}, bd = {1, out}, dd = {rows, out};
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_matmul_desc_t mmd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t mem[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    bool ok = dnnl_memory_desc_init_by_tag(&smd, 2, sd, dt, x_tag) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dt, w_tag) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab) == dnnl_success &&
              dnnl_matmul_desc_init(&mmd, &smd, &wmd, b ? &bmd : NULL, &dmd) == dnnl_success &&
              dnnl_primitive_attr_create(&attr) == dnnl_success &&
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
              dnnl_post_ops_create(&post) == dnnl_success &&
              (!accumulate || dnnl_post_ops_append_sum(post, 1.0f) == dnnl_success) &&
              (ep->act != XV_GEMM_GELU ||
               dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f) == dnnl_success) &&
              (!ep->residual || dnnl_post_ops_append_binary(post, dnnl_binary_add, &dmd) == dnnl_success) &&
              dnnl_primitive_attr_set_post_ops(attr, post) == dnnl_success &&
              dnnl_primitive_desc_create(&pd, &mmd, attr, g_engine, NULL) == dnnl_success &&
              dnnl_primitive_create(&prim, pd) == dnnl_success;
    void *scratch = NULL;
    const dnnl_memory_desc_t *spd = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    if (ok && spd) {
        size_t bytes = dnnl_memory_desc_get_size(spd);
        if (bytes) {
            scratch = xv_graph_alloc(g, bytes);
            ok = scratch != NULL;
            *oom = !ok;
        }
    }
    /* The handles are only read (src, weights, bias) or written (dst) by the primitive. */
    ok = ok && dnnl_memory_create(&mem[0], &smd, g_engine, (void *)x) == dnnl_success &&
         dnnl_memory_create(&mem[1], &wmd, g_engine, (void *)w) == dnnl_success &&
         dnnl_memory_create(&mem[3], &dmd, g_engine, y) == dnnl_success &&
         (!b || dnnl_memory_create(&mem[2], &bmd, g_engine, (void *)b) == dnnl_success) &&
         (!spd || dnnl_memory_create(&mem[4], spd, g_engine, scratch) == dnnl_success) &&
         (!ep->residual || dnnl_memory_create(&mem[5], &dmd, g_engine, (void *)ep->residual) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[3]}};
        int n = 3;
        if (b) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mem[2]};
        if (spd) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem[4]};
        /* the residual is the last post-op, after the sum and the GELU when there are */
        int idx = (accumulate ? 1 : 0) + (ep->act == XV_GEMM_GELU ? 1 : 0);
        if (ep->residual) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, mem[5]};
        ok = dnnl_primitive_execute(prim, t_stream, n, args) == dnnl_success &&
             dnnl_stream_wait(t_stream) == dnnl_success;
    }
    for (int i = 0; i < 6; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (post) dnnl_post_ops_destroy(post);
    return ok;
}

bool xv_gemm_linear(xv_graph *g, const float *x, const float *w, const xv_gemm_epilogue *ep, float *y,
                    int64_t rows, int64_t in, int64_t out) {
    pthread_once(&g_once, init_backend);
    if (g_use_dnnl) {
        bool oom = false;
        if (onednn_matmul(g, x, dnnl_ab, w, dnnl_ba, dnnl_f32, ep, false, y, rows, in, out, &oom)) return true;
        if (oom) return false;
    }
    blas_linear(x, w, ep, y, rows, in, out);
    return true;
}

bool xv_gemm_product(xv_graph *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                     bool accumulate, float *c) {
    pthread_once(&g_once, init_backend);
    if (g_use_dnnl) {
        bool oom = false;
        const xv_gemm_epilogue none = {NULL, XV_GEMM_PLAIN, NULL};
        if (onednn_matmul(g, a, ta ? dnnl_ba : dnnl_ab, b, tb ? dnnl_ba : dnnl_ab, dnnl_f32, &none, accumulate, c, m, k,
                        n, &oom))
            return true;
        if (oom) return false;
    }
    blas_product(ta, tb, m, n, k, a, b, accumulate, c);
    return true;
}

const char *xv_gemm_backend(void) {
    pthread_once(&g_once, init_backend);
    return g_use_dnnl ? "onednn" : "openblas";
}

/* oneDNN's name of the instruction set its kernels use (ONEDNN_MAX_CPU_ISA
 * may lower it). The values are bit sets: a later ISA contains the earlier. */
static dnnl_cpu_isa_t effective_isa(void) { return dnnl_get_effective_cpu_isa(); }

static bool isa_has(dnnl_cpu_isa_t isa, dnnl_cpu_isa_t want) { return ((unsigned)isa & (unsigned)want) == (unsigned)want; }

const char *xv_gemm_isa(void) {
    pthread_once(&g_once, init_backend);
    if (!g_use_dnnl) return "none";
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } k_names[] = {{dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"}, {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
                   {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"}, {dnnl_cpu_isa_avx512_core, "avx512_core"},
                   {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"}, {dnnl_cpu_isa_avx2, "avx2"}, {dnnl_cpu_isa_avx, "avx"},
                   {dnnl_cpu_isa_sse41, "sse41"}};
    dnnl_cpu_isa_t isa = effective_isa();
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++)
        if (isa_has(isa, k_names[i].isa)) return k_names[i].name;
    return "generic";
}

xv_status xv_gemm_bf16_ready(void) {
    pthread_once(&g_once, init_backend);
    if (!g_use_dnnl)
        return xv_error(XV_ERR_UNSUPPORTED, "bf16 precision needs oneDNN's matmul, which XV_GEMM=blas turned off");
    if (!isa_has(effective_isa(), dnnl_cpu_isa_avx512_core_bf16))
        return xv_error(XV_ERR_UNSUPPORTED,
                        "bf16 precision needs a CPU with AVX512-BF16 or AMX; oneDNN reports only %s here "
                        "(use --precision fp32)",
                        xv_gemm_isa());
    return XV_OK;
}

/* Converting the input rows costs about 1/out of the product (one pass over
 * rows x in floats against rows x in x out multiply-adds): threaded from this
 * many values, below which one fork/join costs more than it saves. */
#define BF16_SPLIT_VALUES (1 << 16)

bool xv_gemm_linear_bf16(xv_graph *g, const float *x, const uint16_t *w, const xv_gemm_epilogue *ep, float *y,
                         int64_t rows, int64_t in, int64_t out) {
    pthread_once(&g_once, init_backend);
    int64_t n = rows * in;
    uint16_t *xb = xv_graph_alloc(g, sizeof(uint16_t) * (size_t)n);
    if (!xb) return false;
    /* inside a batch stream (nn/batch_split.h) this thread converts alone */
    int chunks = n >= BF16_SPLIT_VALUES && !omp_in_parallel() ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int c = 0; c < chunks; c++) {
        int64_t i0 = n * c / chunks, i1 = n * (c + 1) / chunks;
        xv_f32_to_bf16_n(x + i0, xb + i0, (size_t)(i1 - i0));
    }
    bool oom = false;
    if (g_use_dnnl && onednn_matmul(g, xb, dnnl_ab, w, dnnl_ba, dnnl_bf16, ep, false, y, rows, in, out, &oom))
        return true;
    if (oom) return false;
    xv_graph_fail(g, XV_ERR_UNSUPPORTED, "bf16 Linear product [%lld, %lld] x [%lld, %lld]^T: oneDNN has no kernel for it",
                  (long long)rows, (long long)in, (long long)out, (long long)in);
    return false;
}

#else

bool xv_gemm_linear(xv_graph *g, const float *x, const float *w, const xv_gemm_epilogue *ep, float *y,
                    int64_t rows, int64_t in, int64_t out) {
    (void)g;
    blas_linear(x, w, ep, y, rows, in, out);
    return true;
}

bool xv_gemm_product(xv_graph *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                     bool accumulate, float *c) {
    (void)g;
    blas_product(ta, tb, m, n, k, a, b, accumulate, c);
    return true;
}

const char *xv_gemm_backend(void) { return "openblas"; }

const char *xv_gemm_isa(void) { return "none"; }

xv_status xv_gemm_bf16_ready(void) {
    return xv_error(XV_ERR_UNSUPPORTED, "bf16 precision needs oneDNN's matmul: this build has no oneDNN "
                                        "(install libdnnl-dev and rebuild)");
}

bool xv_gemm_linear_bf16(xv_graph *g, const float *x, const uint16_t *w, const xv_gemm_epilogue *ep, float *y,
                         int64_t rows, int64_t in, int64_t out) {
    (void)x, (void)w, (void)ep, (void)y;
    xv_graph_fail(g, XV_ERR_UNSUPPORTED, "bf16 Linear product [%lld, %lld] x [%lld, %lld]^T: built without oneDNN",
                  (long long)rows, (long long)in, (long long)out, (long long)in);
    return false;
}

#endif
