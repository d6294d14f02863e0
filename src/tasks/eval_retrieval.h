/* Zero-shot image-text retrieval evaluation, as the official Retrieval.py
 * evaluation() + itm_eval() score a test split (§9.1 of the architecture
 * sheet):
 *   1. every image through the vision encoder once, every text through the
 *      text encoder once (batched; the model's ITC features are normalised);
 *   2. sims = image features · text features (no temperature);
 *   3. for each image the k_test texts of highest sim, for each text the
 *      k_test images of highest sim, are re-scored with the raw ITM class-1
 *      logit (fusion encoder, all vision tokens visible); every other entry
 *      keeps the -100 floor; the ITC sim is not added;
 *   4. R@1/5/10 in both directions and r_mean (metrics.h).
 * The ITC-only ranking (step 2 alone) is reported next to it, and the chance
 * level of each R@K.
 *
 * Retrieval.py runs the fusion encoder twice for a pair that is in both
 * top-k lists; here each distinct pair runs once and both matrices read its
 * logit (the same pair through the same encoder gives the same score).
 *
 * Under mpirun (src/dist/) xv_eval_retrieval is a collective: every rank
 * encodes everything and ranks the ITC similarities, the ITM pairs are split
 * across the ranks and their logits summed, as Retrieval.py's evaluation does;
 * every rank gets the whole result, bit for bit that of one process. */
#ifndef XV_TASKS_EVAL_RETRIEVAL_H
#define XV_TASKS_EVAL_RETRIEVAL_H

#include <stdint.h>

#include "tasks/eval_data.h"
#include "tasks/metrics.h"
#include "api/api_internal.h"

/* Called as work advances: stage is "images", "texts" or "itm". */
typedef void (*xv_eval_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);

typedef struct {
    int k_test;     /* 128 (Flickr30k config; COCO uses 256) */
    int max_words;  /* pre_caption cap: 30 */
    int max_tokens; /* [CLS] + tokens cap: 40 (and the model's positions) */
    int image_batch; /* images per vision pass: 16 */
    int pair_chunk; /* ITM pairs per call between progress reports: 1024 */
    xv_eval_progress_fn progress; /* NULL: silent */
    void *user;
} xv_eval_retrieval_opts;

xv_eval_retrieval_opts xv_eval_retrieval_opts_default(void);

typedef struct {
    int64_t n_images, n_texts;
    int k_test;               /* as used: min(k_test, gallery) per direction is what was re-ranked */
    xv_retrieval_result itc;  /* ranking by ITC similarity alone */
    xv_retrieval_result itm;  /* ITC top-k re-ranked by ITM (Retrieval.py's score) */
    xv_retrieval_result chance; /* expected R@K of a random ranking */
    float *sims;              /* [n_images, n_texts] ITC cosine similarities */
    float *score_i2t;         /* [n_images, n_texts] re-ranked scores (-100 floor) */
    float *score_t2i;         /* [n_texts, n_images] */
    int64_t *rank_i2t, *rank_t2i; /* re-ranked ranks: [n_images] best GT text, [n_texts] GT image */
    int64_t itm_pairs;        /* distinct pairs through the fusion encoder */
    double seconds_images, seconds_texts, seconds_itm;
} xv_eval_retrieval_result;

xv_status xv_eval_retrieval(xvlm_ctx *ctx, const xv_retrieval_set *set, const xv_eval_retrieval_opts *opts,
                            xv_eval_retrieval_result *out);
void xv_eval_retrieval_result_free(xv_eval_retrieval_result *r);

/* One split as Retrieval.py evaluates val_file / test_file: the files read
 * (concatenated) and scored; out->itm is itm_eval's dict (txt_r1 ... r_mean). */
xv_status xv_eval_retrieval_files(xvlm_ctx *ctx, const char *const *files, int n_files, const xv_fs_root *images,
                                  const xv_eval_retrieval_opts *opts, xv_eval_retrieval_result *out);

/* Expected R@1/5/10 of a uniformly random ranking: text->image 100·K/n_img;
 * image->text the probability that one of the image's g texts is among K
 * drawn from n_txt, averaged over images. */
void xv_retrieval_chance(int64_t n_img, int64_t n_txt, const int64_t *txt2img, xv_retrieval_result *out);

#endif
