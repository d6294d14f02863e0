#include "nn/swin_config.h"

#include <string.h>

void xv_swin_config_defaults(xv_swin_config *v) {
    memset(v, 0, sizeof *v);
    v->patch = 4;
    v->in_chans = 3;
    v->mlp_ratio = 4.0f;
    v->drop_path_rate = 0.1f;
    v->ln_eps = 1e-5f;
    v->region_stride = 32;
}

xv_swin_stage_geom xv_swin_stage(const xv_swin_config *v, int s) {
    xv_swin_stage_geom g;
    g.res = (v->image_res / v->patch) >> s;
    g.dim = v->embed_dim << s;
    g.heads = v->heads[s];
    /* Official rule: a stage no larger than the window is one window, unshifted. */
    if (g.res <= v->window) {
        g.window = g.res;
        g.shift = 0;
    } else {
        g.window = v->window;
        g.shift = v->window / 2;
    }
    g.n_windows = (g.res / g.window) * (g.res / g.window);
    return g;
}

xv_status xv_swin_config_validate(const xv_swin_config *v) {
    if (v->n_stages < 1 || v->n_stages > XV_SWIN_MAX_STAGES)
        return xv_error(XV_ERR_INVALID_ARG, "vision: %d stages (expected 1..%d)", v->n_stages, XV_SWIN_MAX_STAGES);
    if (v->patch < 1 || v->in_chans < 1 || v->embed_dim < 1 || v->window < 1)
        return xv_error(XV_ERR_INVALID_ARG,
                        "vision: patch size %d, in_chans %d, embed_dim %d and window_size %d must be >= 1",
                        v->patch, v->in_chans, v->embed_dim, v->window);
    /* Bounded before anything is allocated: at 65536 px the shifted-window mask
     * alone would be ~17 GB. 4096 is over 10x the official resolutions. */
    if (v->image_res > XV_SWIN_MAX_IMAGE_RES)
        return xv_error(XV_ERR_INVALID_ARG, "vision: image_res %d is beyond the limit %d", v->image_res,
                        XV_SWIN_MAX_IMAGE_RES);
    if (v->image_res < 1 || v->image_res % v->patch)
        return xv_error(XV_ERR_INVALID_ARG, "vision: image_res %d is not a multiple of the patch size %d",
                        v->image_res, v->patch);
    if (v->embed_dim > (1 << 20) >> (v->n_stages - 1))
        return xv_error(XV_ERR_INVALID_ARG, "vision: embed_dim %d too large", v->embed_dim);
    for (int s = 0; s < v->n_stages; s++) {
        int res = (v->image_res / v->patch) >> s, dim = v->embed_dim << s;
        if (v->depths[s] > 1024 || v->heads[s] > 4096)
            return xv_error(XV_ERR_INVALID_ARG, "vision: stage %d has depth %d and %d heads (limits 1024 and 4096)",
                            s, v->depths[s], v->heads[s]);
        if (v->depths[s] < 1 || v->heads[s] < 1)
            return xv_error(XV_ERR_INVALID_ARG, "vision: stage %d has depth %d and %d heads (both must be >= 1)",
                            s, v->depths[s], v->heads[s]);
        if (dim % v->heads[s])
            return xv_error(XV_ERR_INVALID_ARG, "vision: stage %d: %d heads do not divide its %d channels", s,
                            v->heads[s], dim);
        if (s + 1 < v->n_stages && (res % 2 || res < 2))
            return xv_error(XV_ERR_INVALID_ARG,
                            "vision: stage %d has %dx%d tokens; patch merging needs an even size "
                            "(image_res %d / patch %d / 2^%d)",
                            s, res, res, v->image_res, v->patch, s);
        if (res > v->window && res % v->window)
            return xv_error(XV_ERR_INVALID_ARG,
                            "vision: stage %d has %dx%d tokens, not a multiple of window_size %d "
                            "(every stage must be divisible by the window or no larger than it)",
                            s, res, res, v->window);
    }
    if (v->vision_width != v->embed_dim << (v->n_stages - 1))
        return xv_error(XV_ERR_INVALID_ARG, "vision: vision_width %d but embed_dim %d over %d stages gives %d",
                        v->vision_width, v->embed_dim, v->n_stages, v->embed_dim << (v->n_stages - 1));
    if (v->region_stride != v->patch << (v->n_stages - 1))
        return xv_error(XV_ERR_INVALID_ARG,
                        "vision: patch_size %d (final stride for region masks) must be the Swin patch %d "
                        "times 2^%d = %d",
                        v->region_stride, v->patch, v->n_stages - 1, v->patch << (v->n_stages - 1));
    if (!(v->mlp_ratio > 0) || (int)(v->embed_dim * v->mlp_ratio) < 1)
        return xv_error(XV_ERR_INVALID_ARG, "vision: mlp_ratio %g gives an empty MLP", v->mlp_ratio);
    if (!(v->drop_path_rate >= 0 && v->drop_path_rate < 1))
        return xv_error(XV_ERR_INVALID_ARG, "vision: drop_path_rate %g outside [0, 1)", v->drop_path_rate);
    if (!(v->ln_eps > 0)) return xv_error(XV_ERR_INVALID_ARG, "vision: layer_norm_eps must be > 0");
    return XV_OK;
}
