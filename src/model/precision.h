/* The precision of inference products: fp32 (the reference, the default) or
 * bf16 (--precision bf16): every Linear weight gets a bf16 copy once, at
 * load, which ops/linear.c then reads instead of the fp32 values (inputs
 * rounded to bf16 per product, sums and everything else in fp32:
 * ops/gemm.h). The fp32 weights stay (the model id, gradients and the ops
 * that are not Linear products read them), so bf16 costs half the weights'
 * size in extra memory and changes no fp32 number. */
#ifndef XV_MODEL_PRECISION_H
#define XV_MODEL_PRECISION_H

#include <stdbool.h>

#include "core/params.h"

typedef enum { XV_PRECISION_FP32 = 0, XV_PRECISION_BF16 = 1 } xv_precision;

/* "fp32" / "bf16". */
const char *xv_precision_name(xv_precision p);

/* Give every Linear weight of p (a 2-D parameter named *.weight that is not an
 * embedding table) its bf16 copy, or for fp32 drop any such copies. bf16
 * first checks the CPU and build (xv_gemm_bf16_ready: AVX512-BF16 or AMX
 * through oneDNN) and fails with that error, changing nothing; out of memory
 * leaves p in fp32. */
xv_status xv_params_set_precision(xv_params *p, xv_precision prec);

/* How many parameters have a bf16 copy (tests, `xvlm info`). */
int xv_params_bf16_count(const xv_params *p);

#endif
