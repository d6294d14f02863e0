/* Batches of jobs through the public API (run.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "run.h"

/* Every job's input texts, concatenated, and where each job's begin. */
typedef struct {
    const char **texts;
    int *first; /* first[i]: job i's first text in `texts` */
    int n;
} text_list;

static bool list_texts(xv_job **jobs, int n, text_list *l) {
    int total = 0;
    for (int i = 0; i < n; i++) total += jobs[i]->n_texts;
    l->texts = calloc((size_t)total + 1, sizeof *l->texts);
    l->first = calloc((size_t)n + 1, sizeof *l->first);
    l->n = 0;
    if (!l->texts || !l->first) return false;
    for (int i = 0; i < n; i++) {
        l->first[i] = l->n;
        for (int t = 0; t < jobs[i]->n_texts; t++) l->texts[l->n++] = jobs[i]->texts[t];
    }
    l->first[n] = l->n;
    return true;
}

static void text_list_free(text_list *l) {
    free(l->texts);
    free(l->first);
}

/* The images of the jobs that have one, in job order, as one encoder batch. */
static xvlm_status encode_images(xvlm_ctx *ctx, xv_job **jobs, int n, bool keep_tokens, xvlm_images **out) {
    xvlm_rgb *rgb = calloc((size_t)n, sizeof *rgb);
    if (!rgb) return XVLM_ERR_NOMEM;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (jobs[i]->image.rgb)
            rgb[m++] = (xvlm_rgb){.rgb = jobs[i]->image.rgb, .width = jobs[i]->image.width,
                                  .height = jobs[i]->image.height};
    xvlm_image_params ip = xvlm_image_params_default();
    ip.keep_tokens = keep_tokens;
    xvlm_status st = xvlm_encode_images_rgb(ctx, rgb, m, &ip, out);
    free(rgb);
    return st;
}

static cJSON *float_array(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

static void answer(xv_job *j, cJSON *root) {
    free(j->body);
    j->body = cJSON_PrintUnformatted(root);
    j->status = j->body ? 200 : 503;
    cJSON_Delete(root);
    if (!j->body) xv_job_fail(j, 503, "out of memory");
}

static void add_size(cJSON *root, const xv_job *j) {
    cJSON_AddStringToObject(root, "image", j->image_name);
    cJSON_AddNumberToObject(root, "width", j->image.width);
    cJSON_AddNumberToObject(root, "height", j->image.height);
}

/* ---- match: ITM probability and logit, ITC similarity ---- */
static xvlm_status run_match(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    xvlm_model_info info;
    xvlm_model_get_info(env->model, &info);
    text_list l;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_pair *pairs = NULL;
    float *logit = NULL, *prob = NULL, *sim = NULL;
    xvlm_status st = list_texts(jobs, n, &l) ? XVLM_OK : XVLM_ERR_NOMEM;
    if (st == XVLM_OK) {
        pairs = calloc((size_t)l.n, sizeof *pairs);
        logit = calloc((size_t)l.n, sizeof *logit);
        prob = calloc((size_t)l.n, sizeof *prob);
        sim = calloc((size_t)n * (size_t)l.n, sizeof *sim);
        if (!pairs || !logit || !prob || !sim) st = XVLM_ERR_NOMEM;
    }
    if (st == XVLM_OK) st = encode_images(ctx, jobs, n, true, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, l.texts, l.n, NULL, &tx);
    for (int i = 0; i < n && st == XVLM_OK; i++)
        for (int t = l.first[i]; t < l.first[i + 1]; t++) pairs[t] = (xvlm_pair){.image = i, .text = t};
    if (st == XVLM_OK) st = xvlm_itm(ctx, im, tx, pairs, l.n, logit, prob);
    if (st == XVLM_OK && info.has_itc) st = xvlm_similarity(im, tx, sim);
    for (int i = 0; i < n && st == XVLM_OK; i++) {
        cJSON *root = cJSON_CreateObject(), *results = cJSON_CreateArray();
        add_size(root, jobs[i]);
        for (int t = l.first[i]; t < l.first[i + 1]; t++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "text", l.texts[t]);
            cJSON_AddStringToObject(r, "clean", xvlm_texts_text(tx, t));
            cJSON_AddNumberToObject(r, "probability", prob[t]);
            cJSON_AddNumberToObject(r, "logit", logit[t]);
            if (info.has_itc) cJSON_AddNumberToObject(r, "itc", sim[(size_t)i * (size_t)l.n + (size_t)t]);
            cJSON_AddItemToArray(results, r);
        }
        if (jobs[i]->n_texts == 1) { /* one text: its numbers at the top as well */
            const int t = l.first[i];
            cJSON_AddNumberToObject(root, "probability", prob[t]);
            cJSON_AddNumberToObject(root, "logit", logit[t]);
        }
        cJSON_AddItemToObject(root, "results", results);
        answer(jobs[i], root);
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(pairs), free(logit), free(prob), free(sim);
    text_list_free(&l);
    return st;
}

/* ---- ground: the box of each text, in pixels and normalised ---- */
static cJSON *box_json(const xvlm_box *b, bool normalised) {
    const float v[4] = {normalised ? b->cx : b->x, normalised ? b->cy : b->y, normalised ? b->w : b->width,
                        normalised ? b->h : b->height};
    return float_array(v, 4);
}

static xvlm_status run_ground(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    (void)env;
    text_list l;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_pair *pairs = NULL;
    xvlm_box *boxes = NULL;
    xvlm_status st = list_texts(jobs, n, &l) ? XVLM_OK : XVLM_ERR_NOMEM;
    if (st == XVLM_OK) {
        pairs = calloc((size_t)l.n, sizeof *pairs);
        boxes = calloc((size_t)l.n, sizeof *boxes);
        if (!pairs || !boxes) st = XVLM_ERR_NOMEM;
    }
    /* Grounding_bbox.py does not cut texts to a token count (as `xvlm ground`). */
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    if (st == XVLM_OK) st = encode_images(ctx, jobs, n, true, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, l.texts, l.n, &tp, &tx);
    for (int i = 0; i < n && st == XVLM_OK; i++)
        for (int t = l.first[i]; t < l.first[i + 1]; t++) pairs[t] = (xvlm_pair){.image = i, .text = t};
    if (st == XVLM_OK) st = xvlm_ground(ctx, im, tx, pairs, l.n, boxes);
    for (int i = 0; i < n && st == XVLM_OK; i++) {
        cJSON *root = cJSON_CreateObject(), *results = cJSON_CreateArray();
        add_size(root, jobs[i]);
        for (int t = l.first[i]; t < l.first[i + 1]; t++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "text", l.texts[t]);
            cJSON_AddItemToObject(r, "box", box_json(&boxes[t], false));
            cJSON_AddItemToObject(r, "box_normalized", box_json(&boxes[t], true));
            cJSON_AddItemToArray(results, r);
        }
        if (jobs[i]->n_texts == 1) {
            cJSON_AddItemToObject(root, "box", box_json(&boxes[l.first[i]], false));
            cJSON_AddItemToObject(root, "box_normalized", box_json(&boxes[l.first[i]], true));
        }
        cJSON_AddItemToObject(root, "results", results);
        answer(jobs[i], root);
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(pairs), free(boxes);
    text_list_free(&l);
    return st;
}

/* ---- embed: normalised ITC features ---- */
static xvlm_status run_embed(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    xvlm_model_info info;
    xvlm_model_get_info(env->model, &info);
    const int d = info.embed_dim;
    text_list l;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_status st = list_texts(jobs, n, &l) ? XVLM_OK : XVLM_ERR_NOMEM;
    int n_images = 0;
    for (int i = 0; i < n; i++) n_images += jobs[i]->image.rgb != NULL;
    if (st == XVLM_OK && n_images) st = encode_images(ctx, jobs, n, false, &im);
    if (st == XVLM_OK && l.n) st = xvlm_encode_texts(ctx, l.texts, l.n, NULL, &tx);
    for (int i = 0, img = 0; i < n && st == XVLM_OK; i++) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "dim", d);
        if (jobs[i]->image.rgb) {
            add_size(root, jobs[i]);
            cJSON_AddItemToObject(root, "image_features", float_array(xvlm_images_features(im) + (size_t)img++ * d, d));
        }
        if (jobs[i]->n_texts) {
            cJSON *feats = cJSON_CreateArray();
            for (int t = l.first[i]; t < l.first[i + 1]; t++)
                cJSON_AddItemToArray(feats, float_array(xvlm_texts_features(tx) + (size_t)t * d, d));
            cJSON_AddItemToObject(root, "text_features", feats);
        }
        answer(jobs[i], root);
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    text_list_free(&l);
    return st;
}

/* ---- search: text -> index images, image -> given texts ---- */
char *xv_image_url(const char *root, const char *path) {
    if (!root || !path) return NULL;
    char *real = realpath(path, NULL);
    size_t rl = strlen(root);
    if (!real || strncmp(real, root, rl) != 0 || real[rl] != '/') {
        free(real);
        return NULL;
    }
    const char *rel = real + rl + 1;
    char *url = malloc(strlen("/images/") + 3 * strlen(rel) + 1);
    if (url) {
        char *o = url + sprintf(url, "/images/");
        for (const unsigned char *c = (const unsigned char *)rel; *c; c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("/-._~", *c))
                *o++ = (char)*c;
            else
                o += sprintf(o, "%%%02X", *c);
        }
        *o = 0;
    }
    free(real);
    return url;
}

static cJSON *hit_json(const xvlm_hit *h, int rank) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "rank", rank);
    cJSON_AddNumberToObject(r, "index", (double)h->index);
    cJSON_AddNumberToObject(r, "score", h->score);
    cJSON_AddNumberToObject(r, "itc", h->itc);
    if (h->reranked) {
        cJSON_AddNumberToObject(r, "itm_logit", h->itm_logit);
        cJSON_AddNumberToObject(r, "itm_prob", h->itm_prob);
    } else {
        cJSON_AddNullToObject(r, "itm_logit");
        cJSON_AddNullToObject(r, "itm_prob");
    }
    return r;
}

static cJSON *search_root(const char *direction, const char *query, int k, int rerank) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "direction", direction);
    cJSON_AddStringToObject(root, "query", query);
    cJSON_AddNumberToObject(root, "k", k);
    cJSON_AddNumberToObject(root, "rerank", rerank);
    return root;
}

static xvlm_status run_search_text(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    if (!env->index) {
        for (int i = 0; i < n; i++) xv_job_fail(jobs[i], 404, "text -> image search needs the server started with --index");
        return XVLM_OK;
    }
    const int64_t gallery = xvlm_images_count(env->index);
    text_list l;
    xvlm_texts *tx = NULL;
    xvlm_hit *hits = NULL;
    xvlm_status st = list_texts(jobs, n, &l) ? XVLM_OK : XVLM_ERR_NOMEM;
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, l.texts, l.n, NULL, &tx);
    for (int i = 0; i < n && st == XVLM_OK; i++) {
        xvlm_search_params sp = {.k = jobs[i]->k < gallery ? jobs[i]->k : (int)gallery, .rerank = jobs[i]->rerank};
        int nh = 0;
        free(hits);
        hits = calloc((size_t)sp.k + 1, sizeof *hits);
        st = hits ? xvlm_search_images(ctx, env->index, tx, l.first[i], &sp, hits, &nh) : XVLM_ERR_NOMEM;
        if (st != XVLM_OK) break;
        cJSON *root = search_root("text_to_image", jobs[i]->texts[0], sp.k, sp.rerank), *results = cJSON_CreateArray();
        for (int h = 0; h < nh; h++) {
            cJSON *r = hit_json(&hits[h], h + 1);
            const char *path = xvlm_images_path(env->index, hits[h].index);
            char *url = xv_image_url(env->image_root, path);
            if (path) cJSON_AddStringToObject(r, "path", path);
            else cJSON_AddNullToObject(r, "path");
            if (url) { /* the name to give /v1/ground and /v1/match, and the link to the picture */
                cJSON_AddStringToObject(r, "image", url + strlen("/images/"));
                cJSON_AddStringToObject(r, "url", url);
            }
            free(url);
            cJSON_AddItemToArray(results, r);
        }
        cJSON_AddItemToObject(root, "results", results);
        answer(jobs[i], root);
    }
    free(hits);
    xvlm_texts_free(tx);
    text_list_free(&l);
    return st;
}

static xvlm_status run_search_image(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    (void)env;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_hit *hits = NULL;
    xvlm_status st = encode_images(ctx, jobs, n, true, &im);
    for (int i = 0; i < n && st == XVLM_OK; i++) {
        const xv_job *j = jobs[i];
        xvlm_search_params sp = {.k = j->k < j->n_texts ? j->k : j->n_texts, .rerank = j->rerank};
        int nh = 0;
        xvlm_texts_free(tx);
        tx = NULL;
        free(hits);
        hits = calloc((size_t)sp.k + 1, sizeof *hits);
        st = hits ? xvlm_encode_texts(ctx, (const char *const *)j->texts, j->n_texts, NULL, &tx) : XVLM_ERR_NOMEM;
        if (st == XVLM_OK) st = xvlm_search_texts(ctx, tx, im, i, &sp, hits, &nh);
        if (st != XVLM_OK) break;
        cJSON *root = search_root("image_to_text", j->image_name, sp.k, sp.rerank), *results = cJSON_CreateArray();
        for (int h = 0; h < nh; h++) {
            cJSON *r = hit_json(&hits[h], h + 1);
            cJSON_AddStringToObject(r, "text", xvlm_texts_text(tx, hits[h].index));
            cJSON_AddItemToArray(results, r);
        }
        cJSON_AddItemToObject(root, "results", results);
        answer(jobs[i], root);
    }
    free(hits);
    xvlm_texts_free(tx);
    xvlm_images_free(im);
    return st;
}

typedef xvlm_status (*run_fn)(xvlm_ctx *, const xv_run_env *, xv_job **, int);

static const run_fn runners[XV_JOB_KINDS] = {
    [XV_JOB_EMBED] = run_embed,
    [XV_JOB_SEARCH_TEXT] = run_search_text,
    [XV_JOB_SEARCH_IMAGE] = run_search_image,
    [XV_JOB_MATCH] = run_match,
    [XV_JOB_GROUND] = run_ground,
};

/* Bad input the model refused (an empty text after cleaning, a model without
 * the head asked for) is the client's error; the rest is the server's. */
static int error_status(xvlm_status st) {
    switch (st) {
    case XVLM_ERR_INVALID_ARG:
    case XVLM_ERR_FORMAT:
    case XVLM_ERR_SHAPE:
    case XVLM_ERR_UNSUPPORTED:
    case XVLM_ERR_MISSING:
        return 422;
    case XVLM_ERR_NOMEM:
        return 503;
    default:
        return 500;
    }
}

void xv_run_batch(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n) {
    const run_fn run = runners[jobs[0]->kind];
    xvlm_status st = run(ctx, env, jobs, n);
    if (st == XVLM_OK) return;
    if (n > 1) {
        for (int i = 0; i < n; i++) xv_run_batch(ctx, env, &jobs[i], 1);
        return;
    }
    xv_job_fail(jobs[0], error_status(st), xvlm_last_error());
}
