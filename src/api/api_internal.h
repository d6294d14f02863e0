/* What the public handles of include/xvlm.h hold (used by src/api only). */
#ifndef XV_API_INTERNAL_H
#define XV_API_INTERNAL_H

#include <stdbool.h>

#include "core/error.h"
#include "data/tokenizer.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "xvlm.h"

struct xvlm_model {
    xv_model *m;
    xv_tokenizer *tok;
    uint64_t id; /* hash of the config and every parameter's shape and values */
    char id_hex[17];
};

struct xvlm_ctx {
    const xvlm_model *model;
    xv_graph *g; /* scratch of one forward pass, reset between passes */
};

/* Encoded images. Arrays are owned, or borrowed from `mapped` (an index file). */
struct xvlm_images {
    uint64_t model_id;
    int64_t n;
    int E, T, C;          /* feature width (0: model without ITC), tokens per image, token width */
    const float *feat;    /* [n, E] or NULL */
    xvlm_tokens tok_kind; /* XVLM_TOKENS_NONE: no tokens */
    const void *tokens;   /* [n, T, C] float or binary16 */
    const int32_t *sizes; /* [n, 2]: original width, height */
    const char *path_blob;     /* NUL-terminated paths back to back, or NULL */
    const int64_t *path_off;   /* [n]: offset into path_blob, -1 = no file */
    int64_t path_blob_bytes;
    void *owned[6]; /* what xvlm_images_free releases */
    int n_owned;
    xv_st_file *mapped;
};

/* Encoded texts: each text's states [len_i, H] stored back to back. */
struct xvlm_texts {
    uint64_t model_id;
    int64_t n;
    int E, H;
    float *feat;    /* [n, E] or NULL */
    float *states;  /* [sum len_i, H] */
    int64_t *off;   /* [n + 1]: text i = rows off[i] .. off[i+1] */
    int32_t *ids;   /* [sum len_i]: the token id of each row ([CLS] first) */
    char **clean;   /* pre_caption output per text */
};

/* The public calls of include/xvlm.h (documented there) with the library's
 * status: what src/api's own files, tasks/ and train/ call. The xvlm_
 * functions (src/api/public.c) only convert the status. */
xv_status xv_api_model_load(const char *path, const xvlm_model_params *params, xvlm_model **out);
xv_status xv_api_ctx_new(const xvlm_model *m, xvlm_ctx **out);
xv_status xv_api_encode_image_files(xvlm_ctx *ctx, const char *const *paths, int n, const xvlm_image_params *p,
                                    xvlm_images **out);
xv_status xv_api_encode_images_rgb(xvlm_ctx *ctx, const xvlm_rgb *images, int n, const xvlm_image_params *p,
                                   xvlm_images **out);
xv_status xv_api_encode_images_tensor(xvlm_ctx *ctx, const float *pixels, int n, const xvlm_image_params *p,
                                      xvlm_images **out);
xv_status xv_api_encode_texts(xvlm_ctx *ctx, const char *const *texts, int n, const xvlm_text_params *p,
                              xvlm_texts **out);
xv_status xv_api_similarity(const xvlm_images *im, const xvlm_texts *tx, float *sim);
xv_status xv_api_itm(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                     float *logit, float *prob);
xv_status xv_api_ground(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                        xvlm_box *out);
xv_status xv_api_nlvr(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_nlvr_pair *pairs, int n,
                       float *logits, float *prob_true);
xv_status xv_api_gradcam(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                         float *map, float *token_maps);
xv_status xv_api_ground_weak(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                             const float *boxes, int n_boxes, float *scores, int *chosen);
xv_status xv_api_search_images(xvlm_ctx *ctx, const xvlm_images *gallery, const xvlm_texts *queries, int64_t query,
                               const xvlm_search_params *p, xvlm_hit *hits, int *n_hits);
xv_status xv_api_search_texts(xvlm_ctx *ctx, const xvlm_texts *gallery, const xvlm_images *queries, int64_t query,
                              const xvlm_search_params *p, xvlm_hit *hits, int *n_hits);
xv_status xv_api_index_save(const xvlm_images *im, const char *path, xvlm_tokens tokens);
xv_status xv_api_index_open(const xvlm_model *m, const char *path, xvlm_images **out);
xv_status xv_api_index_build(xvlm_ctx *ctx, const char *const *paths, int64_t n, const char *path,
                             const xvlm_index_params *p, xvlm_index_stats *stats);

/* A new empty set for n images of model mm; the tokens array only when keep. */
xv_status xv_api_images_new(const xvlm_model *mm, int64_t n, bool keep_tokens, bool with_paths_room,
                            xvlm_images **out);
/* Track a malloc'd block to free with the set. */
xv_status xv_api_images_own(xvlm_images *im, void *p);

/* One vision forward pass of b preprocessed images [b, 3, R, R]: features into
 * feat[b, E] (if the model has ITC) and, when tokens != NULL, the tokens
 * [b, T, C] as float32. */
xv_status xv_api_vision_pass(xvlm_ctx *ctx, const float *pixels, int b, float *feat, float *tokens);

/* Decode a file and apply the test transform into out[3·R·R]; *w, *h get
 * the original size. Thread-safe. */
xv_status xv_api_preprocess_file(const char *path, int res, float *out, int *w, int *h);

/* Vision tokens of image i as float32 into dst[T·C] (converting binary16). */
void xv_api_image_tokens(const xvlm_images *im, int64_t i, float *dst);

/* Checks shared by the scoring calls: same model, indices in range. */
xv_status xv_api_check_pairs(const xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx,
                             const xvlm_pair *pairs, int n, const char *what);

/* Run the fusion encoder over pairs [0, n) in batches; for each batch call
 * head(ctx, cls [b, H] graph tensor, first pair index, user). */
typedef xv_status (*xv_api_cls_fn)(xvlm_ctx *ctx, xv_tensor *cls, int first, void *user);
xv_status xv_api_fusion_pairs(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs,
                              int n, xv_api_cls_fn head, void *user);

/* xvlm_index_save with extra __metadata__ entries (key, value, ..., NULL). */
xv_status xv_api_index_write(const xvlm_images *im, const char *path, xvlm_tokens tokens,
                             const char *const *extra_meta);

/* Join index chunk files (each written by xvlm_index_save with the same
 * tokens setting) into one index at `out`, atomically, without copying the
 * tensors into memory. *count gets the number of entries. */
xv_status xv_api_index_join(const xvlm_model *mm, const char *const *chunks, int n, xvlm_tokens tokens,
                            const char *out, int64_t *count);

#endif
