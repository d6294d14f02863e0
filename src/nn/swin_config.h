/* Settings of the Swin Transformer vision encoder (the official Swin JSON's
 * keys, plus the X-VLM YAML's patch_size as region_stride), their defaults,
 * checks and per-stage geometry. Readers of files live in model/config.c. */
#ifndef XV_NN_SWIN_CONFIG_H
#define XV_NN_SWIN_CONFIG_H

#include <stdbool.h>

#include "core/error.h"

#define XV_SWIN_MAX_STAGES 8
/* The largest image_res a config may ask for (refused beyond, before any allocation). */
#define XV_SWIN_MAX_IMAGE_RES 4096

typedef struct {
    int image_res;      /* input pixels per side */
    int patch;          /* Swin patch embedding stride (4) */
    int in_chans;       /* 3 */
    int embed_dim;      /* channels of stage 0; stage s has embed_dim·2^s */
    int n_stages;       /* len(depths) */
    int depths[XV_SWIN_MAX_STAGES];
    int heads[XV_SWIN_MAX_STAGES];
    int window;         /* configured window; a stage no larger than it uses its own size */
    float mlp_ratio;    /* 4 */
    float drop_path_rate; /* stochastic depth, max rate (0.1 in the official build) */
    float ln_eps;       /* 1e-5 */
    int vision_width;   /* embed_dim·2^(n_stages-1) */
    int region_stride;  /* the yaml's patch_size (32): final stride, used for region masks */
    bool ape;           /* absolute position embedding after the patch embedding (the official
                           Swin's `ape`; X-VLM builds it off, small demo models trained from
                           scratch on flat backgrounds use it to localise) */
    bool ape_sincos;    /* "ape_init": "sincos": a fresh model starts its ape from the fixed 2-D
                           sine-cosine table (MAE's) instead of N(0, 0.02), so that tokens carry
                           where they are from the first step (not official; init only) */
} xv_swin_config;

/* Per-stage geometry derived from a Swin config. */
typedef struct {
    int res;      /* tokens per side at this stage */
    int dim;      /* channels */
    int heads;
    int window;   /* effective window (the stage size when it is <= the configured window) */
    int shift;    /* shift of odd blocks (0 when the window covers the stage) */
    int n_windows;/* windows per image */
} xv_swin_stage_geom;

/* The official code's values for every key a file may leave out. */
void xv_swin_config_defaults(xv_swin_config *v);

/* Refuses what the official code would refuse (windows that do not tile a
 * stage, heads that do not divide widths, ...), naming the setting. */
xv_status xv_swin_config_validate(const xv_swin_config *v);

/* Geometry of stage s (valid only for a validated config). */
xv_swin_stage_geom xv_swin_stage(const xv_swin_config *v, int s);

#endif
