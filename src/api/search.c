/* Search: the ITC stage (one sgemv + a bounded heap over the gallery), then
 * Retrieval.py's re-rank of the best candidates by the ITM class-1 logit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/itc_topk.h"
#include "core/error.h"

xvlm_search_params xvlm_search_params_default(void) { return (xvlm_search_params){.k = 10, .rerank = 16}; }

/* Re-ranked hits first by score; the rest keep the ITC order. */
static int cmp_hit(const void *a, const void *b) {
    const xvlm_hit *x = a, *y = b;
    if (x->reranked != y->reranked) return x->reranked ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->itc != y->itc) return x->itc > y->itc ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

typedef struct {
    int64_t kk, rerank; /* ITC candidates kept, of which re-ranked */
    int64_t *idx;
    float *sims;
} itc_stage;

static xv_status run_itc(const float *gallery, int64_t n, int E, const float *q, const xvlm_search_params *p,
                         itc_stage *s) {
    if (p->k < 1 || p->rerank < 0)
        return xv_error(XV_ERR_INVALID_ARG, "search: k %d must be >= 1 and rerank %d >= 0", p->k, p->rerank);
    int64_t kk = p->k > p->rerank ? p->k : p->rerank;
    if (kk > n) kk = n;
    s->sims = malloc(sizeof *s->sims * (size_t)(n ? n : 1));
    s->idx = malloc(sizeof *s->idx * (size_t)(kk ? kk : 1));
    if (!s->sims || !s->idx) return xv_error(XV_ERR_NOMEM, "search: out of memory for %lld scores", (long long)n);
    xv_itc_scores(gallery, n, E, q, s->sims);
    s->kk = xv_topk(s->sims, n, kk, s->idx);
    s->rerank = p->rerank < s->kk ? p->rerank : s->kk;
    return XV_OK;
}

static xv_status finish(const itc_stage *s, const float *logit, const float *prob, const xvlm_search_params *p,
                        xvlm_hit *hits, int *n_hits) {
    xvlm_hit *all = malloc(sizeof *all * (size_t)(s->kk ? s->kk : 1));
    if (!all) return xv_error(XV_ERR_NOMEM, "search: out of memory");
    for (int64_t i = 0; i < s->kk; i++) {
        bool rr = i < s->rerank;
        all[i] = (xvlm_hit){.index = s->idx[i],
                            .itc = s->sims[s->idx[i]],
                            .itm_logit = rr ? logit[i] : NAN,
                            .itm_prob = rr ? prob[i] : NAN,
                            .reranked = rr};
        /* Retrieval.py: the score matrix is -100 outside the re-ranked top k. */
        all[i].score = p->rerank == 0 ? all[i].itc : rr ? logit[i] : -100.0f;
    }
    qsort(all, (size_t)s->kk, sizeof *all, cmp_hit);
    int64_t n = s->kk < p->k ? s->kk : p->k;
    memcpy(hits, all, sizeof *all * (size_t)n);
    free(all);
    *n_hits = (int)n;
    return XV_OK;
}

static void free_stage(itc_stage *s) {
    free(s->sims);
    free(s->idx);
}

static xv_status check_search(const xvlm_ctx *ctx, const void *gallery, const void *queries, int64_t nq,
                              int64_t query, const xvlm_search_params *p, const xvlm_hit *hits, const int *n_hits) {
    if (!ctx || !gallery || !queries || !p || !hits || !n_hits)
        return xv_error(XV_ERR_INVALID_ARG, "search: NULL argument");
    if (query < 0 || query >= nq)
        return xv_error(XV_ERR_INVALID_ARG, "search: query %lld outside the %lld encoded queries", (long long)query,
                        (long long)nq);
    if (!ctx->model->m->parts.itc)
        return xv_error(XV_ERR_UNSUPPORTED, "search: the model has no ITC projections (vision_proj, text_proj)");
    if (p->rerank > 0 && !ctx->model->m->parts.itm)
        return xv_error(XV_ERR_UNSUPPORTED, "search: re-ranking needs an itm_head, which the model lacks (use "
                                            "rerank 0)");
    return XV_OK;
}

/* The gallery's candidates with their tokens: the gallery itself, or the
 * candidates re-encoded from their files (an index without tokens). */
static xv_status candidate_images(xvlm_ctx *ctx, const xvlm_images *gallery, const itc_stage *s,
                                  xvlm_images **fresh) {
    *fresh = NULL;
    if (gallery->tok_kind != XVLM_TOKENS_NONE || s->rerank == 0) return XV_OK;
    const char **paths = malloc(sizeof *paths * (size_t)s->rerank);
    if (!paths) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = XV_OK;
    for (int64_t i = 0; i < s->rerank && st == XV_OK; i++) {
        paths[i] = xvlm_images_path(gallery, s->idx[i]);
        if (!paths[i])
            st = xv_error(XV_ERR_INVALID_ARG, "search: image %lld has neither vision tokens nor a file to re-encode "
                                              "them from", (long long)s->idx[i]);
    }
    xvlm_image_params ip = xvlm_image_params_default();
    ip.batch = 16;
    if (st == XV_OK) st = xv_api_encode_image_files(ctx, paths, (int)s->rerank, &ip, fresh);
    free(paths);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "search: re-encoding a candidate for re-ranking");
}

/* Both directions: the gallery is the images (find_images) or the texts, the
 * query one item of the other side. */
static xv_status search(xvlm_ctx *ctx, const xvlm_images *images, const xvlm_texts *texts, bool find_images,
                        int64_t query, const xvlm_search_params *p, xvlm_hit *hits, int *n_hits) {
    const void *gallery = find_images ? (const void *)images : (const void *)texts;
    const void *queries = find_images ? (const void *)texts : (const void *)images;
    int64_t n_queries = !queries ? 0 : find_images ? texts->n : images->n;
    XV_TRY(check_search(ctx, gallery, queries, n_queries, query, p, hits, n_hits));
    *n_hits = 0;
    if (images->model_id != ctx->model->id || texts->model_id != ctx->model->id)
        return xv_error(XV_ERR_INVALID_ARG, "search: the gallery or the query was encoded by another model");
    const float *gallery_feat = find_images ? images->feat : texts->feat;
    const float *query_feat = find_images ? texts->feat + (size_t)query * (size_t)texts->E
                                          : images->feat + (size_t)query * (size_t)images->E;
    int64_t n_gallery = find_images ? images->n : texts->n;
    itc_stage s = {0};
    xv_status st = run_itc(gallery_feat, n_gallery, find_images ? images->E : texts->E, query_feat, p, &s);
    xvlm_images *fresh = NULL; /* re-encoded candidate images (an index without tokens) */
    xvlm_pair *pairs = NULL;
    float *logit = NULL, *prob = NULL;
    if (st == XV_OK && find_images) st = candidate_images(ctx, images, &s, &fresh);
    if (st == XV_OK && s.rerank > 0) {
        pairs = malloc(sizeof *pairs * (size_t)s.rerank);
        logit = malloc(sizeof *logit * (size_t)s.rerank);
        prob = malloc(sizeof *prob * (size_t)s.rerank);
        if (!pairs || !logit || !prob) st = xv_error(XV_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; st == XV_OK && i < s.rerank; i++)
            pairs[i] = find_images ? (xvlm_pair){.image = fresh ? i : s.idx[i], .text = query}
                                   : (xvlm_pair){.image = query, .text = s.idx[i]};
        if (st == XV_OK) st = xv_api_itm(ctx, fresh ? fresh : images, texts, pairs, (int)s.rerank, logit, prob);
    }
    if (st == XV_OK) st = finish(&s, logit, prob, p, hits, n_hits);
    xvlm_images_free(fresh);
    free(pairs);
    free(logit);
    free(prob);
    free_stage(&s);
    return st;
}

xv_status xv_api_search_images(xvlm_ctx *ctx, const xvlm_images *gallery, const xvlm_texts *queries, int64_t query,
                               const xvlm_search_params *p, xvlm_hit *hits, int *n_hits) {
    return search(ctx, gallery, queries, true, query, p, hits, n_hits);
}

xv_status xv_api_search_texts(xvlm_ctx *ctx, const xvlm_texts *gallery, const xvlm_images *queries, int64_t query,
                              const xvlm_search_params *p, xvlm_hit *hits, int *n_hits) {
    return search(ctx, queries, gallery, false, query, p, hits, n_hits);
}
