/* The public entry points of include/xvlm.h that are not a handle's own:
 * errors, version, threads, and the fallible calls, which run their xv_api_
 * form (src/api/api_internal.h) and hand its status over as xvlm_status. */
#include "api/api_internal.h"
#include "core/threads.h"

/* The two status enums are one list of codes: same names after the prefix,
 * same values, so converting is a cast. */
#define XV_SAME_CODE(name) _Static_assert((int)XV_##name == (int)XVLM_##name, #name " differs")
XV_SAME_CODE(OK);
XV_SAME_CODE(ERR_INVALID_ARG);
XV_SAME_CODE(ERR_IO);
XV_SAME_CODE(ERR_FORMAT);
XV_SAME_CODE(ERR_SHAPE);
XV_SAME_CODE(ERR_NOMEM);
XV_SAME_CODE(ERR_MISSING);
XV_SAME_CODE(ERR_UNSUPPORTED);
XV_SAME_CODE(ERR_NUMERIC);
XV_SAME_CODE(ERR_INTERNAL);
XV_SAME_CODE(ERR_INTERRUPTED);

static xvlm_status to_public(xv_status s) { return (xvlm_status)s; }

const char *xvlm_last_error(void) { return xv_error_message(); }
const char *xvlm_status_name(xvlm_status s) { return xv_status_name((xv_status)s); }
const char *xvlm_version(void) { return XVLM_VERSION_STRING; }

void xvlm_set_threads(int n) { xv_set_threads(n); }
int xvlm_get_threads(void) { return xv_get_threads(); }

xvlm_status xvlm_model_load(const char *path, const xvlm_model_params *params, xvlm_model **out) {
    return to_public(xv_api_model_load(path, params, out));
}

xvlm_status xvlm_ctx_new(const xvlm_model *m, xvlm_ctx **out) {
    return to_public(xv_api_ctx_new(m, out));
}

xvlm_status xvlm_encode_image_files(xvlm_ctx *ctx, const char *const *paths, int n, const xvlm_image_params *p,
                                    xvlm_images **out) {
    return to_public(xv_api_encode_image_files(ctx, paths, n, p, out));
}

xvlm_status xvlm_encode_images_rgb(xvlm_ctx *ctx, const xvlm_rgb *images, int n, const xvlm_image_params *p,
                                   xvlm_images **out) {
    return to_public(xv_api_encode_images_rgb(ctx, images, n, p, out));
}

xvlm_status xvlm_encode_images_tensor(xvlm_ctx *ctx, const float *pixels, int n, const xvlm_image_params *p,
                                      xvlm_images **out) {
    return to_public(xv_api_encode_images_tensor(ctx, pixels, n, p, out));
}

xvlm_status xvlm_encode_texts(xvlm_ctx *ctx, const char *const *texts, int n, const xvlm_text_params *p,
                              xvlm_texts **out) {
    return to_public(xv_api_encode_texts(ctx, texts, n, p, out));
}

xvlm_status xvlm_similarity(const xvlm_images *im, const xvlm_texts *tx, float *sim) {
    return to_public(xv_api_similarity(im, tx, sim));
}

xvlm_status xvlm_itm(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                     float *logit, float *prob) {
    return to_public(xv_api_itm(ctx, im, tx, pairs, n, logit, prob));
}

xvlm_status xvlm_ground(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                        xvlm_box *out) {
    return to_public(xv_api_ground(ctx, im, tx, pairs, n, out));
}

xvlm_status xvlm_nlvr(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_nlvr_pair *pairs, int n,
                      float *logits, float *prob_true) {
    return to_public(xv_api_nlvr(ctx, im, tx, pairs, n, logits, prob_true));
}

xvlm_status xvlm_gradcam(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                         float *map, float *token_maps) {
    return to_public(xv_api_gradcam(ctx, im, tx, pair, layer, map, token_maps));
}

xvlm_status xvlm_ground_weak(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                             const float *boxes, int n_boxes, float *scores, int *chosen) {
    return to_public(xv_api_ground_weak(ctx, im, tx, pair, layer, boxes, n_boxes, scores, chosen));
}

xvlm_status xvlm_search_images(xvlm_ctx *ctx, const xvlm_images *gallery, const xvlm_texts *queries, int64_t query,
                               const xvlm_search_params *p, xvlm_hit *hits, int *n_hits) {
    return to_public(xv_api_search_images(ctx, gallery, queries, query, p, hits, n_hits));
}

xvlm_status xvlm_search_texts(xvlm_ctx *ctx, const xvlm_texts *gallery, const xvlm_images *queries, int64_t query,
                              const xvlm_search_params *p, xvlm_hit *hits, int *n_hits) {
    return to_public(xv_api_search_texts(ctx, gallery, queries, query, p, hits, n_hits));
}

xvlm_status xvlm_index_save(const xvlm_images *im, const char *path, xvlm_tokens tokens) {
    return to_public(xv_api_index_save(im, path, tokens));
}

xvlm_status xvlm_index_open(const xvlm_model *m, const char *path, xvlm_images **out) {
    return to_public(xv_api_index_open(m, path, out));
}

xvlm_status xvlm_index_build(xvlm_ctx *ctx, const char *const *paths, int64_t n, const char *path,
                             const xvlm_index_params *p, xvlm_index_stats *stats) {
    return to_public(xv_api_index_build(ctx, paths, n, path, p, stats));
}
