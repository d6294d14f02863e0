#include "tasks/eval_retrieval.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/itc_topk.h"
#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"

xv_eval_retrieval_opts xv_eval_retrieval_opts_default(void) {
    return (xv_eval_retrieval_opts){
        .k_test = 128, .max_words = 30, .max_tokens = 40, .image_batch = 16, .pair_chunk = 1024};
}

static void report(const xv_eval_retrieval_opts *o, const char *stage, int64_t done, int64_t total) {
    if (o->progress) o->progress(o->user, stage, done, total);
}

void xv_eval_retrieval_result_free(xv_eval_retrieval_result *r) {
    if (!r) return;
    free(r->sims);
    free(r->score_i2t);
    free(r->score_t2i);
    free(r->rank_i2t);
    free(r->rank_t2i);
    memset(r, 0, sizeof *r);
}

void xv_retrieval_chance(int64_t n_img, int64_t n_txt, const int64_t *txt2img, xv_retrieval_result *out) {
    static const int K[3] = {1, 5, 10};
    double t2i[3], i2t[3] = {0, 0, 0};
    int64_t *per_image = calloc((size_t)(n_img > 0 ? n_img : 1), sizeof *per_image);
    for (int64_t t = 0; per_image && t < n_txt; t++) per_image[txt2img[t]]++;
    for (int k = 0; k < 3; k++) {
        t2i[k] = 100.0 * (double)(K[k] < n_img ? K[k] : n_img) / (double)n_img;
        for (int64_t i = 0; per_image && i < n_img; i++) {
            /* P(none of the g texts among K of n drawn without replacement). */
            double none = 1;
            for (int64_t j = 0; j < K[k] && j < n_txt; j++)
                none *= (double)(n_txt - per_image[i] - j) / (double)(n_txt - j);
            i2t[k] += 100.0 * (1 - (none > 0 ? none : 0)) / (double)n_img;
        }
    }
    free(per_image);
    *out = (xv_retrieval_result){.txt_r1 = i2t[0], .txt_r5 = i2t[1], .txt_r10 = i2t[2],
                                 .img_r1 = t2i[0], .img_r5 = t2i[1], .img_r10 = t2i[2]};
    out->txt_r_mean = (i2t[0] + i2t[1] + i2t[2]) / 3;
    out->img_r_mean = (t2i[0] + t2i[1] + t2i[2]) / 3;
    out->r_mean = (out->txt_r_mean + out->img_r_mean) / 2;
}

/* The ITM logit of every pair some top-k list needs, computed once. */
typedef struct {
    int64_t n_txt;
    const float *logit;    /* [n_img, n_txt] */
    const uint8_t *needed; /* [n_img, n_txt] */
    int transposed;        /* rows are texts */
} lookup;

static xv_status lookup_scores(void *user, int64_t row, const int64_t *cols, int64_t k, float *scores) {
    const lookup *l = user;
    for (int64_t j = 0; j < k; j++) {
        int64_t i = l->transposed ? cols[j] : row, t = l->transposed ? row : cols[j];
        size_t at = (size_t)i * (size_t)l->n_txt + (size_t)t;
        if (!l->needed[at])
            return xv_error(XV_ERR_INTERNAL, "retrieval: pair (image %lld, text %lld) was not scored", (long long)i,
                            (long long)t);
        scores[j] = l->logit[at];
    }
    return XV_OK;
}

/* Mark the top-k columns of every row of sims [rows, cols]. */
static xv_status mark_topk(const float *sims, int64_t rows, int64_t cols, int64_t k, int transposed, int64_t n_txt,
                           uint8_t *needed) {
    int64_t *idx = malloc(sizeof *idx * (size_t)(k > 0 ? k : 1));
    if (!idx) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        int64_t got = xv_topk(sims + r * cols, cols, k, idx);
        for (int64_t j = 0; j < got; j++) {
            int64_t i = transposed ? idx[j] : r, t = transposed ? r : idx[j];
            needed[(size_t)i * (size_t)n_txt + (size_t)t] = 1;
        }
    }
    free(idx);
    return XV_OK;
}

/* ITM logits of the marked pairs, in chunks (row-major order of the pairs).
 * Under mpirun each rank scores a contiguous share of the chunks and the
 * logits are summed over the ranks, as Retrieval.py splits its re-rank across
 * ranks and all-reduces the score matrices. Each chunk is the batch one
 * process would run, and the other ranks add zeros, so the logits keep the
 * bits of a one-process evaluation. */
static xv_status score_needed(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const uint8_t *needed,
                              float *logit, const xv_eval_retrieval_opts *o, int64_t *n_pairs) {
    const int64_t n_img = xvlm_images_count(im), n_txt = xvlm_texts_count(tx), total = n_img * n_txt;
    int64_t n = 0;
    for (int64_t a = 0; a < total; a++) n += needed[a];
    *n_pairs = n;
    const int chunk = o->pair_chunk > 0 ? o->pair_chunk : 1024;
    const int64_t n_chunks = (n + chunk - 1) / chunk, world = xv_dist_world(), rank = xv_dist_rank();
    const int64_t first = n_chunks * rank / world, end = n_chunks * (rank + 1) / world; /* this rank's chunks */
    xvlm_pair *pairs = malloc(sizeof *pairs * (size_t)chunk);
    float *vals = calloc((size_t)n + 1, sizeof *vals); /* the logits in pair order; 0 where another rank scores */
    xv_status st = pairs && vals ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    const int64_t my_total = (end * chunk < n ? end * chunk : n) - first * chunk;
    int64_t a = 0, done = 0, mine = 0;
    report(o, "itm", 0, my_total);
    for (int64_t c = 0; st == XV_OK && c < end; c++) {
        int b = 0;
        for (; a < total && b < chunk; a++)
            if (needed[a]) pairs[b++] = (xvlm_pair){.image = a / n_txt, .text = a % n_txt};
        if (c >= first) {
            st = xv_api_itm(ctx, im, tx, pairs, b, vals + done, NULL);
            mine += b;
            if (st == XV_OK) report(o, "itm", mine, my_total);
        }
        done += b;
    }
    if (st == XV_OK) st = xv_dist_allreduce_sum_f32(vals, n);
    for (int64_t k = 0, j = 0; st == XV_OK && k < total; k++)
        if (needed[k]) logit[k] = vals[j++];
    free(pairs);
    free(vals);
    return st;
}

static float *transpose(const float *a, int64_t rows, int64_t cols) {
    float *t = malloc(sizeof *t * (size_t)(rows * cols));
    if (!t) return NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
    return t;
}

xv_status xv_eval_retrieval(xvlm_ctx *ctx, const xv_retrieval_set *set, const xv_eval_retrieval_opts *opts,
                            xv_eval_retrieval_result *out) {
    memset(out, 0, sizeof *out);
    xv_eval_retrieval_opts o = opts ? *opts : xv_eval_retrieval_opts_default();
    if (!ctx || !set || set->n_images < 1 || set->n_texts < 1 || o.k_test < 1)
        return xv_error(XV_ERR_INVALID_ARG, "retrieval evaluation: needs images, texts and k_test >= 1");
    const int64_t n_img = set->n_images, n_txt = set->n_texts;
    if (n_img > INT32_MAX || n_txt > INT32_MAX)
        return xv_error(XV_ERR_INVALID_ARG, "retrieval evaluation: at most 2^31 images and texts");
    out->n_images = n_img;
    out->n_texts = n_txt;
    out->k_test = o.k_test;

    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    float *sims_t = NULL, *logit = NULL;
    uint8_t *needed = NULL;
    xvlm_image_params ip = xvlm_image_params_default();
    ip.keep_tokens = 1;
    ip.batch = o.image_batch > 0 ? o.image_batch : 16;
    xvlm_text_params tp = {.max_words = o.max_words, .max_tokens = o.max_tokens};

    double t0 = xv_monotonic_seconds();
    report(&o, "images", 0, n_img);
    xv_status st = xv_api_encode_image_files(ctx, (const char *const *)set->image_paths, (int)n_img, &ip, &im);
    if (st == XV_OK) report(&o, "images", n_img, n_img);
    double t1 = xv_monotonic_seconds();
    if (st == XV_OK) report(&o, "texts", 0, n_txt);
    if (st == XV_OK) st = xv_api_encode_texts(ctx, (const char *const *)set->texts, (int)n_txt, &tp, &tx);
    if (st == XV_OK) report(&o, "texts", n_txt, n_txt);
    double t2 = xv_monotonic_seconds();
    out->seconds_images = t1 - t0;
    out->seconds_texts = t2 - t1;

    size_t cells = (size_t)n_img * (size_t)n_txt;
    if (st == XV_OK) {
        out->sims = malloc(sizeof *out->sims * cells);
        out->score_i2t = malloc(sizeof *out->score_i2t * cells);
        out->score_t2i = malloc(sizeof *out->score_t2i * cells);
        out->rank_i2t = malloc(sizeof *out->rank_i2t * (size_t)n_img);
        out->rank_t2i = malloc(sizeof *out->rank_t2i * (size_t)n_txt);
        logit = malloc(sizeof *logit * cells);
        needed = calloc(cells, 1);
        if (!out->sims || !out->score_i2t || !out->score_t2i || !out->rank_i2t || !out->rank_t2i || !logit ||
            !needed)
            st = xv_error(XV_ERR_NOMEM, "retrieval evaluation: out of memory for %lld x %lld scores",
                          (long long)n_img, (long long)n_txt);
    }
    if (st == XV_OK) st = xv_api_similarity(im, tx, out->sims);
    if (st == XV_OK && !(sims_t = transpose(out->sims, n_img, n_txt))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    /* ITC alone: the similarity matrices ranked as they are. */
    if (st == XV_OK) st = xv_retrieval_eval(out->sims, sims_t, n_img, n_txt, set->txt2img, NULL, NULL, &out->itc);

    if (st == XV_OK) st = mark_topk(out->sims, n_img, n_txt, o.k_test, 0, n_txt, needed);
    if (st == XV_OK) st = mark_topk(sims_t, n_txt, n_img, o.k_test, 1, n_txt, needed);
    if (st == XV_OK) st = score_needed(ctx, im, tx, needed, logit, &o, &out->itm_pairs);
    out->seconds_itm = xv_monotonic_seconds() - t2;
    lookup li = {n_txt, logit, needed, 0}, lt = {n_txt, logit, needed, 1};
    if (st == XV_OK)
        st = xv_retrieval_score_matrix(out->sims, n_img, n_txt, o.k_test, lookup_scores, &li, out->score_i2t);
    if (st == XV_OK)
        st = xv_retrieval_score_matrix(sims_t, n_txt, n_img, o.k_test, lookup_scores, &lt, out->score_t2i);
    if (st == XV_OK)
        st = xv_retrieval_eval(out->score_i2t, out->score_t2i, n_img, n_txt, set->txt2img, out->rank_i2t,
                               out->rank_t2i, &out->itm);
    if (st == XV_OK) xv_retrieval_chance(n_img, n_txt, set->txt2img, &out->chance);

    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(sims_t);
    free(logit);
    free(needed);
    if (st != XV_OK) xv_eval_retrieval_result_free(out);
    return st;
}

xv_status xv_eval_retrieval_files(xvlm_ctx *ctx, const char *const *files, int n_files, const xv_fs_root *images,
                                  const xv_eval_retrieval_opts *opts, xv_eval_retrieval_result *out) {
    memset(out, 0, sizeof *out);
    xv_retrieval_set set;
    XV_TRY(xv_retrieval_set_read_files(files, n_files, images, &set));
    xv_status st = xv_eval_retrieval(ctx, &set, opts, out);
    xv_retrieval_set_free(&set);
    return st;
}
