/* Swin Transformer vision encoder as the official X-VLM builds it (§2 of
 * docs/architecture.md): conv patch embedding (as patchify + Linear), stages of
 * (shifted-)window attention blocks with relative-position bias, patch merging
 * between stages, final LayerNorm; optionally (cfg.ape, off in X-VLM) the
 * official Swin's learned absolute position embedding added after the patch
 * embedding. Parameters carry the official names under
 * `prefix` ("vision_encoder"); the relative-position index and the shift mask
 * are buffers recomputed here, never loaded. */
#ifndef XV_NN_SWIN_H
#define XV_NN_SWIN_H

#include "nn/swin_config.h"
#include "nn/layers.h"

typedef struct {
    xv_ln_p norm1, norm2;
    xv_linear_p qkv, proj, fc1, fc2;
    xv_tensor *rel_table; /* [(2W-1)², heads] */
    int32_t *rel_index;   /* [W²·W²]: row of rel_table for (query i, key j) */
    float *shift_mask;    /* [nW, W², W²] of 0 / -100, NULL when unshifted */
    int res, dim, heads, window, shift, n_windows;
    float drop_path;      /* stochastic depth rate of this block */
} xv_swin_block;

typedef struct {
    xv_swin_block *blocks;
    int depth;
    bool has_merge;        /* patch merging at the end (every stage but the last) */
    xv_ln_p merge_norm;    /* [4C] */
    xv_linear_p merge_red; /* [2C, 4C], no bias */
} xv_swin_stage_p;

typedef struct {
    xv_swin_config cfg;
    xv_tensor *patch_w;    /* [C, in_chans, p, p] (conv weight) */
    xv_tensor *patch_b;    /* [C] */
    xv_ln_p patch_norm;
    xv_tensor *ape;        /* absolute_pos_embed [1, P0, C] when cfg.ape, else NULL */
    xv_swin_stage_p stages[XV_SWIN_MAX_STAGES];
    xv_ln_p norm;          /* final, [vision_width] */
} xv_swin;

/* Create every parameter of a Swin for `cfg` (validated) under `prefix`. */
xv_status xv_swin_init(xv_swin *s, const xv_swin_config *cfg, xv_params *p, const char *prefix);
void xv_swin_free(xv_swin *s);

/* images [N, in_chans, R, R] -> tokens [N, P, vision_width] after the final
 * LayerNorm. If stage_out is non-NULL it receives each stage's output (after
 * its patch merging; n_stages entries). */
xv_tensor *xv_swin_forward(xv_graph *g, const xv_swin *s, xv_tensor *images, xv_tensor **stage_out);

/* Shift-window mask of §2.5 for a res×res map, window w, shift sh (> 0):
 * out[nW·w²·w²], 0 where two tokens share a region label, -100 elsewhere. */
void xv_swin_shift_mask(int res, int w, int sh, float *out);
/* Relative-position index of §2.6: out[w²·w²]. */
void xv_swin_rel_index(int w, int32_t *out);

#endif
