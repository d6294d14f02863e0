/* Differentiable ops. Each op computes its forward now and, when recording,
 * registers a backward that adds into its inputs' gradients (see core/tensor.h).
 *
 * Shared rules
 * - Tensors are contiguous row-major F32 unless an argument says I32.
 * - "[..., C]" means any number of leading dims, flattened to rows.
 * - Every op returns NULL (and records a sticky graph error) on bad shapes or a
 *   NULL input; I32 inputs are never differentiated.
 * - Masks passed as F32 "additive" tensors hold values added to scores
 *   (0 = keep, -10000 / -1e9 / -100 = suppress), exactly as the official code. */
#ifndef XV_OPS_H
#define XV_OPS_H

#include "core/tensor.h"

/* ---------------------------------------------------------------- linear algebra */

/* y[..., out] = x[..., in] · W[out, in]ᵀ + b[out]  (b may be NULL). cblas_sgemm. */
xv_tensor *xv_linear(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b);

/* gelu(x·Wᵀ + b) (exact erf form). With recording on, xv_gelu of xv_linear.
 * Otherwise one op without the pre-activation tensor: with oneDNN the GELU
 * runs inside the product's kernel (its erf approximation: within
 * 2e-7·max(1, |x|) of the exact GELU, as ours; ops/gemm.h), else in place
 * right after it. */
xv_tensor *xv_linear_gelu(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b);

/* x·Wᵀ + b + res, res of the output's shape (a residual connection). With
 * recording on, xv_add of xv_linear; otherwise one op: oneDNN adds res inside
 * the product's kernel, OpenBLAS right after it. Same roundings in the same
 * order as the two ops. */
xv_tensor *xv_linear_add(xv_graph *g, xv_tensor *x, xv_tensor *w, xv_tensor *b, xv_tensor *res);

/* Batched matmul over equal leading dims: a[..., M, K] (or [..., K, M] with
 * trans_a), b[..., K, N] (or [..., N, K] with trans_b) -> alpha · op(a)·op(b). */
xv_tensor *xv_bmm(xv_graph *g, xv_tensor *a, xv_tensor *b, bool trans_a, bool trans_b, float alpha);

/* ---------------------------------------------------------------- elementwise */

/* a + b where b's shape equals a's or a suffix of it (b broadcast over leading dims). */
xv_tensor *xv_add(xv_graph *g, xv_tensor *a, xv_tensor *b);
/* a - b, same broadcasting as xv_add. */
xv_tensor *xv_sub(xv_graph *g, xv_tensor *a, xv_tensor *b);
/* a * b, same broadcasting as xv_add. */
xv_tensor *xv_mul(xv_graph *g, xv_tensor *a, xv_tensor *b);
/* alpha·x + beta. */
xv_tensor *xv_scale(xv_graph *g, xv_tensor *x, float alpha, float beta);
/* x / s where s is a one-element tensor (differentiable in both; ITC's / temp). */
xv_tensor *xv_div_scalar(xv_graph *g, xv_tensor *x, xv_tensor *s);
xv_tensor *xv_gelu(xv_graph *g, xv_tensor *x);    /* exact erf form */
xv_tensor *xv_sigmoid(xv_graph *g, xv_tensor *x);
xv_tensor *xv_abs(xv_graph *g, xv_tensor *x);     /* subgradient 0 at 0 */

/* ---------------------------------------------------------------- reductions */

xv_tensor *xv_sum(xv_graph *g, xv_tensor *x);  /* -> [1] */
xv_tensor *xv_mean(xv_graph *g, xv_tensor *x); /* -> [1] */

/* ---------------------------------------------------------------- normalisation */

/* LayerNorm over the last dim, biased variance, (x-mu)/sqrt(var+eps)·gamma + beta. */
xv_tensor *xv_layernorm(xv_graph *g, xv_tensor *x, xv_tensor *gamma, xv_tensor *beta, float eps);
/* x / max(||x||_2, eps) over the last dim. */
xv_tensor *xv_l2_normalize(xv_graph *g, xv_tensor *x, float eps);
/* Softmax over the last dim of x[..., N] after adding `mask_add` (F32, shape a
 * suffix of x's, broadcast; may be NULL). Masks get no gradient. */
xv_tensor *xv_softmax(xv_graph *g, xv_tensor *x, xv_tensor *mask_add);
xv_tensor *xv_log_softmax(xv_graph *g, xv_tensor *x);

/* ---------------------------------------------------------------- attention */

typedef struct {
    int heads;             /* q/k/v are [B, L, heads·D], head h = columns [h·D, (h+1)·D) */
    float scale;           /* multiplies q before q·kᵀ (Swin: D^-0.5; BERT: 1/sqrt(D)) */
    xv_tensor *key_mask;   /* F32 [B, Lk] additive, or NULL (text / image padding masks) */
    xv_tensor *bias;       /* F32 [heads, Lq, Lk] additive and differentiable, or NULL (Swin rel-pos) */
    xv_tensor *group_mask; /* F32 [G, Lq, Lk] additive, batch b uses b % G, or NULL (Swin shift) */
    float dropout;         /* on the probabilities, training mode only (Philox counters from
                              the graph RNG: element e of [B, heads, Lq, Lk] uses counter
                              base + e/4, lane e%4) */
    xv_tensor **probs_out; /* if non-NULL, receives the probabilities [B, heads, Lq, Lk] (before
                              dropout, like the official save_attention_map) as a recorded tensor:
                              after backward its grad holds dL/dP (Grad-CAM); else they stay
                              internal */
} xv_attn_args;

/* softmax(scale·q·kᵀ + bias + group_mask + key_mask) · v, heads concatenated -> [B, Lq, heads·D]. */
xv_tensor *xv_attention(xv_graph *g, xv_tensor *q, xv_tensor *k, xv_tensor *v, const xv_attn_args *a);
/* Self-attention on one packed projection qkv [B, L, 3·heads·D] (Swin's qkv
 * Linear): q, k, v are its column blocks [0, heads·D), [heads·D, 2·heads·D),
 * [2·heads·D, 3·heads·D), read in place. Same result and gradients (into qkv)
 * as xv_attention on the three slices, without copying them. */
xv_tensor *xv_attention_packed(xv_graph *g, xv_tensor *qkv, const xv_attn_args *a);

/* ---------------------------------------------------------------- indexing */
/* The pure data-movement ops (gather_rows, concat, slice, reshape, permute,
 * window partition / reverse) also accept I32 tensors (masks, ids, labels),
 * which are copied but never differentiated. `dim` may be negative (from the end). */

/* table[V, D] rows at ids (I32, any shape) -> [ids..., D]. Rows equal to
 * padding_idx get no gradient (pass -1 for none). Ids outside [0,V) are an error. */
xv_tensor *xv_embedding(xv_graph *g, xv_tensor *table, xv_tensor *ids, int padding_idx);
/* x[N, ...] -> x[idx] [M, ...]  (index_select on dim 0 with idx I32 [M]; backward
 * scatter-adds, duplicates accumulate). Indices outside [0,N) are an error. */
xv_tensor *xv_gather_rows(xv_graph *g, xv_tensor *x, xv_tensor *idx);
/* Concatenate along `dim` (all other dims equal). Any n >= 1. */
xv_tensor *xv_concat(xv_graph *g, xv_tensor *const *xs, int n, int dim);
/* x.narrow(dim, start, len) as a copy. */
xv_tensor *xv_slice(xv_graph *g, xv_tensor *x, int dim, int64_t start, int64_t len);
/* Same data (shared, not copied), new shape (same numel; one dim may be -1). */
xv_tensor *xv_reshape(xv_graph *g, xv_tensor *x, const int64_t *shape, int ndim);
/* General permutation of dims (copy). */
xv_tensor *xv_permute(xv_graph *g, xv_tensor *x, const int *perm);

/* ---------------------------------------------------------------- Swin layout */

/* x[B, H·W, C] (row-major H, W) -> cyclic shift by -shift on both axes, then
 * windows [B·nW, win², C] ordered image, window-row, window-col. */
xv_tensor *xv_window_partition(xv_graph *g, xv_tensor *x, int H, int W, int win, int shift);
/* Inverse of xv_window_partition: [B·nW, win², C] -> [B, H·W, C] (rolled back by +shift). */
xv_tensor *xv_window_reverse(xv_graph *g, xv_tensor *x, int H, int W, int win, int shift);
/* Patch merging gather: x[B, H·W, C] -> [B, (H/2)·(W/2), 4C] in the order
 * (even,even), (odd row,even col), (even row,odd col), (odd,odd). */
xv_tensor *xv_patch_merge(xv_graph *g, xv_tensor *x, int H, int W);
/* Non-overlapping p×p patches of img[B, Cin, H, W] -> [B, (H/p)·(W/p), Cin·p·p],
 * features ordered (c, kh, kw) so that a conv weight [out, Cin, p, p] is a Linear. */
xv_tensor *xv_patchify(xv_graph *g, xv_tensor *img, int p);

/* ---------------------------------------------------------------- pooling */

/* Mean over dim 1 of x[B, P, C] weighted by w[B, P] (F32 0/1, no gradient):
 * sum_p w·x / sum_p w; w NULL = plain mean. -> [B, C]. A row whose weights sum
 * to 0 is an error naming the row (the official code would return NaN). */
xv_tensor *xv_masked_mean(xv_graph *g, xv_tensor *x, xv_tensor *w);

/* ---------------------------------------------------------------- losses */

/* Mean over rows with target != ignore_index of -log_softmax(logits)[target];
 * logits [N, C], targets I32 [N]. -> [1]. (0 if every row is ignored.) */
xv_tensor *xv_cross_entropy(xv_graph *g, xv_tensor *logits, xv_tensor *targets, int ignore_index);
/* Mean over rows of -sum_c Y[n,c]·log_softmax(logits)[n,c]; Y F32 [N, C], no gradient. */
xv_tensor *xv_cross_entropy_soft(xv_graph *g, xv_tensor *logits, xv_tensor *y);
/* Per-row losses [N] (0 where target == ignore_index) of logits [N, C] and
 * targets I32 [N]: -(1-eps)·log p_t - (eps/C)·sum_{c != t} log p_c, the
 * official LabelSmoothSoftmaxCEV1 (eps 0: plain cross-entropy; the target does
 * not also get eps/C). Language-model losses sum or average these. */
xv_tensor *xv_token_cross_entropy(xv_graph *g, xv_tensor *logits, xv_tensor *targets, int ignore_index,
                                  float smoothing);
/* Per-box 1 - GIoU for boxes [N, 4] in (cx, cy, w, h) -> [N]. If any box of either
 * input is degenerate (x1<x0 or y1<y0), the whole result is 0 (official rule). */
xv_tensor *xv_giou_loss(xv_graph *g, xv_tensor *pred, xv_tensor *target);

/* ---------------------------------------------------------------- regularisation */

/* Inverted dropout with probability p (identity, returning x itself, in eval mode
 * or p == 0). Training: element i is kept iff word i%4 of the graph RNG's Philox
 * block base + i/4 (base reserved per call) is >= p, then scaled by 1/(1-p). */
xv_tensor *xv_dropout(xv_graph *g, xv_tensor *x, float p);
/* Stochastic depth on x[B, ...]: each sample kept with prob 1-p and scaled by
 * 1/(1-p), else zeroed (identity, returning x itself, in eval mode or p == 0).
 * Sample b uses counter base + b of the graph RNG. */
xv_tensor *xv_drop_path(xv_graph *g, xv_tensor *x, float p);

#endif
