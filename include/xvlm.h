/* xvlm — X-VLM (multi-grained vision-language model) in C. Public API.
 *
 * Conventions: every public name starts with xvlm_ / XVLM_. Every fallible
 * call returns an xvlm_status; on failure xvlm_last_error() describes what
 * went wrong (file, key, expected/actual). The library never exits on bad
 * input.
 *
 * Basic use (compiles pasted into a main(); examples/retrieve_and_ground.c
 * does more):
 *
 *     xvlm_model *model = NULL;
 *     xvlm_ctx *ctx = NULL;
 *     xvlm_images *im = NULL;
 *     xvlm_texts *tx = NULL;
 *     const char *image = "dog.jpg", *text = "a dog on a sofa";
 *     xvlm_status st = xvlm_model_load("model/", NULL, &model);
 *     if (st == XVLM_OK) st = xvlm_ctx_new(model, &ctx);
 *     if (st == XVLM_OK) st = xvlm_encode_image_files(ctx, &image, 1, NULL, &im);
 *     if (st == XVLM_OK) st = xvlm_encode_texts(ctx, &text, 1, NULL, &tx);
 *     float sim = 0;
 *     if (st == XVLM_OK) st = xvlm_similarity(im, tx, &sim);
 *     if (st == XVLM_OK) printf("ITC similarity %.4f\n", sim);
 *     else fprintf(stderr, "%s: %s\n", xvlm_status_name(st), xvlm_last_error());
 *     xvlm_texts_free(tx);
 *     xvlm_images_free(im);
 *     xvlm_ctx_free(ctx);
 *     xvlm_model_free(model);
 */
#ifndef XVLM_H
#define XVLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XVLM_VERSION_MAJOR 0
#define XVLM_VERSION_MINOR 1
#define XVLM_VERSION_PATCH 0
#define XVLM_VERSION_STRING "0.1.0"

typedef enum {
    XVLM_OK = 0,
    XVLM_ERR_INVALID_ARG = 1, /* a caller passed something out of contract */
    XVLM_ERR_IO = 2,          /* open/read/write/mmap failed */
    XVLM_ERR_FORMAT = 3,      /* a file's content is malformed or hostile */
    XVLM_ERR_SHAPE = 4,       /* tensor shapes do not fit together */
    XVLM_ERR_NOMEM = 5,       /* an allocation failed or a limit was hit */
    XVLM_ERR_MISSING = 6,     /* a required key/tensor/file is absent */
    XVLM_ERR_UNSUPPORTED = 7, /* valid input that this build cannot handle */
    XVLM_ERR_NUMERIC = 8,     /* NaN/Inf where a finite value is required */
    XVLM_ERR_INTERNAL = 9,
    XVLM_ERR_INTERRUPTED = 10 /* stopped at a safe point on request (xvlm_index_params.stop) */
} xvlm_status;

/* The message of the last failing call on this thread ("" if none). */
const char *xvlm_last_error(void);
const char *xvlm_status_name(xvlm_status s);
const char *xvlm_version(void);

/* Threads used by xvlm (OpenMP and BLAS together, no oversubscription).
 * n <= 0 means all available cores. */
void xvlm_set_threads(int n);
int xvlm_get_threads(void);

/* ======================================================================
 * Retrieval and grounding (src/api/)
 *
 * Load a model once, open one context per thread, encode images and texts
 * into caller-owned sets, then score them: ITC similarities, ITM scores,
 * grounding boxes, searches, image indexes on disk.
 *
 * Thread safety: a loaded xvlm_model is read-only and may be shared by any
 * number of threads. An xvlm_ctx holds the scratch memory of one forward pass
 * at a time: use one per thread. xvlm_images / xvlm_texts are read-only once
 * made and may be shared. Errors go to the calling thread's xvlm_last_error().
 * Work inside a call is spread over xvlm_set_threads() threads (OpenMP).
 *
 * Numbers follow the official code (Retrieval.py, Grounding_bbox.py): images
 * go through the official test transform (PIL-exact bicubic resize to the
 * model's image_res, CLIP normalisation); texts through pre_caption and the
 * WordPiece tokenizer ([CLS] + tokens, no [SEP]). Everything runs in eval
 * mode, fp32.
 * ====================================================================== */

typedef struct xvlm_model xvlm_model;
typedef struct xvlm_ctx xvlm_ctx;
typedef struct xvlm_images xvlm_images;
typedef struct xvlm_texts xvlm_texts;

/* XVLM_BF16: every Linear layer's weights are rounded to bfloat16 once, at
 * load, and each product's input on the way in; sums, LayerNorm, softmax,
 * GELU and attention stay fp32. Needs oneDNN and a CPU with AVX512-BF16 or
 * AMX (else loading fails with XVLM_ERR_UNSUPPORTED); keeps the fp32 weights
 * too (+50% weight memory). Scores move by about 1e-2 relative: see
 * docs/performance.md. The model id stays that of the weights. */
typedef enum { XVLM_FP32 = 0, XVLM_BF16 = 1 } xvlm_precision;

typedef struct {
    const char *vocab_path; /* NULL: vocab.txt in the model folder, the single file's own, or beside the .th file */
    int image_res;          /* .th only: input pixels when the checkpoint does not say (0: inferred) */
    int text_heads;         /* .th only: BERT attention heads (0: hidden size / 64) */
    bool copy_weights;      /* false: weights stay in the read-only file mapping (less memory) */
    xvlm_precision precision; /* of the Linear products (default XVLM_FP32; see xvlm_precision) */
} xvlm_model_params;
xvlm_model_params xvlm_model_params_default(void);

/* `path` is a folder with config.json + weights.safetensors + vocab.txt (what
 * `xvlm pretrain`, `finetune` and `convert` write), a single-file model (a
 * .safetensors file holding config and vocabulary in its metadata: `xvlm
 * convert --single-file`, or any model folder's weights.safetensors), or an official PyTorch
 * checkpoint (.th / .pth) converted once into a cache folder ($XV_CACHE_DIR,
 * else $XDG_CACHE_HOME/xvlm, else ~/.cache/xvlm; keyed by the file's path, size,
 * modification time and image_res / text_heads) and loaded from there. Refuses a model without
 * vocab.txt, and a vocabulary larger than the model's embeddings. */
xvlm_status xvlm_model_load(const char *path, const xvlm_model_params *params, xvlm_model **out);
void xvlm_model_free(xvlm_model *m);

typedef struct {
    int image_res;    /* input pixels per side */
    int embed_dim;    /* ITC feature width (256 in X-VLM base) */
    int image_tokens; /* 1 + patches: the vision tokens kept per image */
    int vision_width; /* channels of a vision token */
    int max_positions;/* longest text the text encoder accepts, in tokens */
    bool has_itc, has_itm, has_bbox;
    bool has_nlvr;    /* cls_head over the paired (NLVR2) fusion layers: xvlm_nlvr */
    int text_layers;  /* encoder layers (text + fusion); fusion layers are fusion_layer .. text_layers - 1 */
    int fusion_layer;
    int map_side;     /* patches per image side: Grad-CAM maps are map_side x map_side */
    char id[17];      /* 16 hex digits hashing config + weights: names the model in indexes */
} xvlm_model_info;
void xvlm_model_get_info(const xvlm_model *m, xvlm_model_info *out);

xvlm_status xvlm_ctx_new(const xvlm_model *m, xvlm_ctx **out);
void xvlm_ctx_free(xvlm_ctx *ctx);

/* ---- images ---- */
typedef struct {
    bool keep_tokens; /* keep the vision tokens [image_tokens, vision_width] of every image:
                         needed by xvlm_itm, xvlm_ground and ITM re-ranking (default true) */
    int batch;       /* images per encoder pass (default 8) */
} xvlm_image_params;
xvlm_image_params xvlm_image_params_default(void);

/* An 8-bit RGB image in memory: rows of width RGB triplets, `stride` bytes
 * apart (0 = width·3). */
typedef struct {
    const uint8_t *rgb;
    int width, height;
    size_t stride;
} xvlm_rgb;

/* Decode (JPEG/PNG) and encode n files; fails on the first unreadable one,
 * naming it. The set remembers each path and original size. */
xvlm_status xvlm_encode_image_files(xvlm_ctx *ctx, const char *const *paths, int n, const xvlm_image_params *p,
                                  xvlm_images **out);
xvlm_status xvlm_encode_images_rgb(xvlm_ctx *ctx, const xvlm_rgb *images, int n, const xvlm_image_params *p,
                                 xvlm_images **out);
/* Already preprocessed input: n normalised float images [n, 3, R, R] with R the
 * model's image_res (original sizes are taken as R x R). */
xvlm_status xvlm_encode_images_tensor(xvlm_ctx *ctx, const float *pixels, int n, const xvlm_image_params *p,
                                    xvlm_images **out);
void xvlm_images_free(xvlm_images *im);
int64_t xvlm_images_count(const xvlm_images *im);
/* Normalised ITC features [count, embed_dim], row i = image i. */
const float *xvlm_images_features(const xvlm_images *im);
bool xvlm_images_has_tokens(const xvlm_images *im);
/* The file image i came from (NULL if it came from memory) and its size. */
const char *xvlm_images_path(const xvlm_images *im, int64_t i);
void xvlm_images_size(const xvlm_images *im, int64_t i, int *width, int *height);

/* ---- texts ---- */
typedef struct {
    int max_words;  /* pre_caption word cap (30, as the official eval datasets) */
    int max_tokens; /* cap on [CLS] + tokens (40, as Retrieval.py; 0 = only the model's
                       position limit, as Grounding_bbox.py) */
} xvlm_text_params;
xvlm_text_params xvlm_text_params_default(void);

/* A text that is empty after cleaning (pre_caption) is refused, naming it. */
xvlm_status xvlm_encode_texts(xvlm_ctx *ctx, const char *const *texts, int n, const xvlm_text_params *p,
                            xvlm_texts **out);
void xvlm_texts_free(xvlm_texts *tx);
int64_t xvlm_texts_count(const xvlm_texts *tx);
const float *xvlm_texts_features(const xvlm_texts *tx); /* [count, embed_dim] */
/* The cleaned text (after pre_caption) of entry i. */
const char *xvlm_texts_text(const xvlm_texts *tx, int64_t i);
/* The token ids of entry i ([CLS] first), *len of them (NULL out of range). */
const int32_t *xvlm_texts_tokens(const xvlm_texts *tx, int64_t i, int64_t *len);
/* The WordPiece string of a token id ("[UNK]" out of range). */
const char *xvlm_model_token(const xvlm_model *m, int32_t id);

/* ---- scores ---- */
/* ITC cosine similarities sim[i·n_texts + t] = image i · text t (no temperature). */
xvlm_status xvlm_similarity(const xvlm_images *im, const xvlm_texts *tx, float *sim);

typedef struct {
    int64_t image, text;
} xvlm_pair;

/* ITM of each (image, text) pair: the fusion encoder over the text states with
 * all vision tokens visible, itm_head on [CLS]. logit = the raw class-1 logit
 * (Retrieval.py's re-rank score), prob = softmax(logits)[1]. Either output may
 * be NULL. Needs images encoded with keep_tokens. */
xvlm_status xvlm_itm(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                   float *logit, float *prob);

typedef struct {
    float cx, cy, w, h;        /* the box head's output: sigmoid, relative to the image */
    float x, y, width, height; /* in pixels of the original image, as Grounding_bbox.py
                                  converts: x = cx·W - (w·W)/2, y = cy·H - (h·H)/2 */
} xvlm_box;

/* The box each text describes in its image (bbox_head on the fusion [CLS]
 * with the full image). Needs a model with bbox_head and keep_tokens. */
xvlm_status xvlm_ground(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_pair *pairs, int n,
                      xvlm_box *out);

/* ---- NLVR2, Grad-CAM, weakly-supervised grounding (src/api/nlvr.c, src/api/gradcam.c) ---- */

/* A statement about two images: images left and right of an image set, text of a text set. */
typedef struct {
    int64_t left, right, text;
} xvlm_nlvr_pair;

/* NLVR2 (NLVR.py evaluation): the text states of the model's text layers go
 * through the paired fusion layers, even ones reading the left image, odd
 * ones the right, all vision tokens visible; cls_head on [CLS]. logits [n, 2]
 * (class 1 = "True") and prob_true = softmax(logits)[1] may each be NULL.
 * NLVR.py cuts no token: encode the texts with max_tokens 0. Needs a model
 * with cls_head (has_nlvr) and images encoded with keep_tokens. */
xvlm_status xvlm_nlvr(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xvlm_nlvr_pair *pairs, int n,
                      float *logits, float *prob_true);

/* The layer Grad-CAM reads by default: the official block_num 9 of X-VLM
 * base is fusion_layer + 3; a smaller model gets its last fusion layer that
 * has another layer after it (the last layer's map is the [CLS] row alone),
 * or its only fusion layer. */
int xvlm_gradcam_default_layer(const xvlm_model *m);

/* Grad-CAM of the ITM score (Grounding.py, gradcam_mode 'itm'): with A the
 * cross-attention probabilities of encoder layer `layer` (absolute index, a
 * fusion layer) for the pair's text and image, and G = d itm_logit[1] / dA,
 * token_maps[t][y·side + x] = mean over heads of A·max(G, 0) at patch (y, x)
 * (the image CLS key left out), for each of the text's len tokens
 * (xvlm_texts_tokens), and map = the sum of the token maps / len, the
 * official mean over the text (one expression: no padding). map [side²] and
 * token_maps [len·side²] may each be NULL; side = info.map_side. Needs
 * itm_head and images with tokens. Uses gradient scratch in the model's
 * parameters: do not run two Grad-CAM calls on one model at the same time. */
xvlm_status xvlm_gradcam(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                         float *map, float *token_maps);

/* Weakly-supervised grounding (Grounding.py evaluation, dataset/utils.py
 * grounding_eval) on proposals boxes[n_boxes][4] = (x, y, w, h) in pixels of
 * the original image: the Grad-CAM map upsampled bicubically (PyTorch, a =
 * −0.75) to the original size, each box scored Σ map inside / sqrt(w·h);
 * *chosen = the first box of highest score above 0, -1 when no score is
 * above 0. scores [n_boxes] may be NULL. */
xvlm_status xvlm_ground_weak(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, xvlm_pair pair, int layer,
                             const float *boxes, int n_boxes, float *scores, int *chosen);

/* ---- search ---- */
typedef struct {
    int k;      /* results wanted (default 10; clamped to the gallery size) */
    int rerank; /* the ITC top `rerank` are re-scored by ITM (default 16; 0 = ITC only) */
} xvlm_search_params;
xvlm_search_params xvlm_search_params_default(void);

typedef struct {
    int64_t index;   /* into the gallery */
    float score;     /* Retrieval.py's score: the ITM logit when re-ranked, else -100
                        (with rerank 0: the ITC similarity) */
    float itc;       /* ITC cosine similarity */
    float itm_logit; /* NAN when not re-ranked */
    float itm_prob;  /* NAN when not re-ranked */
    bool reranked;
} xvlm_hit;

/* Text query -> images: the ITC top max(k, rerank) of the gallery by one
 * sgemv, the top `rerank` re-scored by ITM, sorted by score (ITC similarity
 * among the -100 rest). hits holds p->k entries; *n_hits gets how many were
 * written (fewer when the gallery is smaller). A gallery without vision
 * tokens (an index built without them) re-encodes its re-ranked images from
 * their files. */
xvlm_status xvlm_search_images(xvlm_ctx *ctx, const xvlm_images *gallery, const xvlm_texts *queries, int64_t query,
                             const xvlm_search_params *p, xvlm_hit *hits, int *n_hits);
/* Image query -> texts, the same way (the query image needs its tokens). */
xvlm_status xvlm_search_texts(xvlm_ctx *ctx, const xvlm_texts *gallery, const xvlm_images *queries, int64_t query,
                            const xvlm_search_params *p, xvlm_hit *hits, int *n_hits);

/* ---- image indexes on disk (safetensors) ---- */
typedef enum {
    XVLM_TOKENS_NONE = 0, /* features only (~1 KiB/image); re-ranking re-encodes images from their files */
    XVLM_TOKENS_F16 = 1,  /* vision tokens as binary16 (X-VLM base at 384 px: 290 KiB/image) */
    XVLM_TOKENS_F32 = 2   /* vision tokens as float32 (twice that; exact) */
} xvlm_tokens;

/* Write a set (features, sizes, paths, optionally tokens) to `path`
 * atomically, stamped with the model id. */
xvlm_status xvlm_index_save(const xvlm_images *im, const char *path, xvlm_tokens tokens);
/* Map an index read-only (features are used in place). Refuses an index made
 * by another model (different id), naming both. */
xvlm_status xvlm_index_open(const xvlm_model *m, const char *path, xvlm_images **out);

typedef struct {
    int batch;          /* images per encoder pass and per chunk file (default 16) */
    xvlm_tokens tokens; /* what the index keeps for re-ranking (default XVLM_TOKENS_F16: re-ranking 16
                           candidates with X-VLM base at 384 px took 2.6 s from stored tokens and 87 s
                           re-encoding them, on 2 busy cores; docs/retrieval.md) */
    /* Called after each chunk: images done so far (encoded, reused or skipped) of total. */
    void (*progress)(void *user, int64_t done, int64_t total);
    /* Called for each image that cannot be read (it is skipped); NULL = silent. */
    void (*warn)(void *user, const char *message);
    void *user;
    /* Polled before each chunk and before its encoder pass (a signal handler's
     * flag, say): nonzero stops the build there with XVLM_ERR_INTERRUPTED, the
     * finished chunks kept for a later call to resume from. NULL = never. */
    int (*stop)(void *user);
} xvlm_index_params;
xvlm_index_params xvlm_index_params_default(void);

typedef struct {
    int64_t total;   /* paths given */
    int64_t encoded; /* encoded by this call */
    int64_t reused;  /* found encoded by an interrupted earlier call */
    int64_t skipped; /* unreadable (missing, corrupt): left out of the index */
    int64_t indexed; /* entries in the finished index */
} xvlm_index_stats;

/* Encode the images at `paths` into the index `path`. Resumable: finished
 * batches are kept as chunk files in `path`.parts/ behind an atomically
 * replaced manifest, so a killed run continues where it stopped without
 * re-encoding them (same paths, model and tokens setting required). When all
 * are done the chunks are joined into `path` (atomically) and the parts
 * folder removed. */
xvlm_status xvlm_index_build(xvlm_ctx *ctx, const char *const *paths, int64_t n, const char *path,
                           const xvlm_index_params *p, xvlm_index_stats *stats);

/* ---- VQA and captioning (the official models/model_vqa.py and
 * models/model_captioning.py; docs/vqa-captioning.md) ----
 * Task models load like xvlm_model_load's (a model folder, or an official
 * checkpoint converted once into the cache) with their vocabulary. A handle
 * runs one call at a time. */
typedef struct xvlm_vqa xvlm_vqa;
typedef struct xvlm_captioner xvlm_captioner;

xvlm_status xvlm_vqa_load(const char *path, const xvlm_model_params *params, xvlm_vqa **out);
void xvlm_vqa_free(xvlm_vqa *v);

typedef struct {
    int k;         /* candidates re-ranked by the answer decoder (VQA.yaml k_test: 128; clamped to the list) */
    int max_words; /* pre_question word cap (50, as the official test set) */
} xvlm_vqa_params;
xvlm_vqa_params xvlm_vqa_params_default(void);

typedef struct {
    int index;  /* into the candidate answers */
    float prob; /* softmax over the k re-ranked candidates */
} xvlm_answer;

/* Answer `question` about the image file: the candidates' first pieces are
 * scored by the decoder on [CLS], the top k re-ranked by their likelihood
 * (VQA.py rank_answer). out holds min(k, n_answers) entries, best first;
 * *n_out gets how many were written. An empty question (nothing left after
 * pre_question) and an empty candidate list are errors. */
xvlm_status xvlm_vqa_answer(xvlm_vqa *v, const char *image_path, const char *question, const char *const *answers,
                            int n_answers, const xvlm_vqa_params *p, xvlm_answer *out, int *n_out);

/* An answer_list.json (a JSON list of strings): *answers and each string are
 * malloc'd; release them with xvlm_strings_free. */
xvlm_status xvlm_answer_list_load(const char *path, char ***answers, int *n);
void xvlm_strings_free(char **strings, int n);

xvlm_status xvlm_captioner_load(const char *path, const xvlm_model_params *params, xvlm_captioner **out);
void xvlm_captioner_free(xvlm_captioner *c);

typedef struct {
    int num_beams;      /* beam search width (Captioning.yaml: 3); 1 = transformers' greedy search */
    int max_length;     /* ids in all, prompt included (20) */
    int min_length;     /* ids before [SEP] may end a caption, prompt included (5) */
    bool greedy;        /* the official greedy loop (the SCST baseline; ignores min_length and num_beams) */
    const char *prompt; /* "a picture of " (cut from the decoded caption as the official code does) */
} xvlm_caption_params;
xvlm_caption_params xvlm_caption_params_default(void);

/* Caption n image files: captions[i] (malloc'd, free() it) and, when scores
 * is not NULL, scores[i] (beam search: the hypothesis' summed log-prob /
 * length; greedy loop: mean token log-prob; transformers greedy: NAN). */
xvlm_status xvlm_caption_image_files(xvlm_captioner *c, const char *const *paths, int n, const xvlm_caption_params *p,
                                     char **captions, float *scores);

#ifdef __cplusplus
}
#endif

#endif
