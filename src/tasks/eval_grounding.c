#include "tasks/eval_grounding.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "tasks/metrics.h"

xv_eval_grounding_opts xv_eval_grounding_opts_default(void) {
    return (xv_eval_grounding_opts){.max_words = 30, .image_batch = 16, .pair_chunk = 256};
}

static void report(const xv_eval_grounding_opts *o, const char *stage, int64_t done, int64_t total) {
    if (o->progress) o->progress(o->user, stage, done, total);
}

void xv_eval_grounding_result_free(xv_eval_grounding_result *r) {
    if (!r) return;
    free(r->pred);
    free(r->iou);
    free(r->size);
    memset(r, 0, sizeof *r);
}

/* One expression's result, as the ranks exchange it. */
typedef struct {
    double pred[4], iou;
    int size[2];
} box_result;

/* This rank's share of the expressions (DistributedSampler's, dist.h): their
 * texts, and the distinct images they show in order of first appearance (in
 * one process every expression and the set's own image order). */
typedef struct {
    int64_t n, n_images;
    int64_t *sample;          /* [n] the expression's index in the set */
    const char **texts;       /* [n] */
    int64_t *image;           /* [n] index into paths */
    const char **paths;       /* [n_images] */
} shard;

static void shard_free(shard *h) {
    free(h->sample), free(h->texts), free(h->image), free(h->paths);
    memset(h, 0, sizeof *h);
}

static xv_status shard_make(const xv_grounding_set *s, shard *h) {
    memset(h, 0, sizeof *h);
    h->n = xv_dist_shard_size(s->n);
    h->sample = malloc(sizeof *h->sample * (size_t)h->n);
    h->texts = malloc(sizeof *h->texts * (size_t)h->n);
    h->image = malloc(sizeof *h->image * (size_t)h->n);
    h->paths = malloc(sizeof *h->paths * (size_t)h->n);
    int64_t *mine = malloc(sizeof *mine * (size_t)s->n_images); /* set image -> shard image, -1: not yet */
    if (!h->sample || !h->texts || !h->image || !h->paths || !mine) {
        free(mine);
        shard_free(h);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < s->n_images; i++) mine[i] = -1;
    for (int64_t k = 0; k < h->n; k++) {
        const int64_t i = h->sample[k] = xv_dist_shard_sample(s->n, k), im = s->image[i];
        if (mine[im] < 0) h->paths[mine[im] = h->n_images++] = s->image_paths[im];
        h->texts[k] = s->texts[i];
        h->image[k] = mine[im];
    }
    free(mine);
    return XV_OK;
}

/* Boxes of the shard's expressions [first, first+b) by the model. */
static xv_status ground_chunk(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, const xv_grounding_set *s,
                              const shard *h, int64_t first, int b, xvlm_pair *pairs, xvlm_box *boxes,
                              box_result *res) {
    for (int j = 0; j < b; j++) pairs[j] = (xvlm_pair){.image = h->image[first + j], .text = first + j};
    XV_TRY(xv_api_ground(ctx, im, tx, pairs, b, boxes));
    for (int j = 0; j < b; j++) {
        box_result *r = &res[first + j];
        double *p = r->pred;
        p[0] = boxes[j].x, p[1] = boxes[j].y, p[2] = boxes[j].width, p[3] = boxes[j].height;
        xvlm_images_size(im, h->image[first + j], &r->size[0], &r->size[1]);
        r->iou = xv_iou_inclusive(s->bbox[h->sample[first + j]], p);
    }
    return XV_OK;
}

xv_status xv_eval_grounding(xvlm_ctx *ctx, const xv_grounding_set *set, const double *mean_box,
                            const xv_eval_grounding_opts *opts, xv_eval_grounding_result *out) {
    memset(out, 0, sizeof *out);
    xv_eval_grounding_opts o = opts ? *opts : xv_eval_grounding_opts_default();
    if (!ctx || !set || set->n < 1 || set->n_images < 1)
        return xv_error(XV_ERR_INVALID_ARG, "grounding evaluation: needs expressions");
    if (set->n > INT32_MAX || set->n_images > INT32_MAX)
        return xv_error(XV_ERR_INVALID_ARG, "grounding evaluation: at most 2^31 expressions");
    const int64_t n = set->n;
    out->n = n;
    out->pred = calloc((size_t)n, sizeof *out->pred);
    out->iou = calloc((size_t)n, sizeof *out->iou);
    out->size = calloc((size_t)n, sizeof *out->size);
    const int chunk = o.pair_chunk > 0 ? o.pair_chunk : 256;
    xvlm_pair *pairs = malloc(sizeof *pairs * (size_t)chunk);
    xvlm_box *boxes = malloc(sizeof *boxes * (size_t)chunk);
    shard h = {0};
    xv_status st = out->pred && out->iou && out->size && pairs && boxes ? shard_make(set, &h)
                                                                       : xv_error(XV_ERR_NOMEM, "out of memory");
    box_result *mine = st == XV_OK ? calloc((size_t)h.n, sizeof *mine) : NULL;
    box_result *all = st == XV_OK ? calloc((size_t)n, sizeof *all) : NULL;
    if (st == XV_OK && (!mine || !all)) st = xv_error(XV_ERR_NOMEM, "out of memory");
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_image_params ip = xvlm_image_params_default();
    ip.keep_tokens = 1;
    ip.batch = o.image_batch > 0 ? o.image_batch : 16;
    /* Grounding_bbox.py cuts texts to words, not tokens. */
    xvlm_text_params tp = {.max_words = o.max_words, .max_tokens = 0};

    /* Under mpirun each rank grounds its share (progress counts this rank's) */
    double t0 = xv_monotonic_seconds();
    if (st == XV_OK) report(&o, "images", 0, h.n_images);
    if (st == XV_OK) st = xv_api_encode_image_files(ctx, h.paths, (int)h.n_images, &ip, &im);
    if (st == XV_OK) report(&o, "images", h.n_images, h.n_images);
    double t1 = xv_monotonic_seconds();
    if (st == XV_OK) report(&o, "texts", 0, h.n);
    if (st == XV_OK) st = xv_api_encode_texts(ctx, h.texts, (int)h.n, &tp, &tx);
    if (st == XV_OK) report(&o, "texts", h.n, h.n);
    double t2 = xv_monotonic_seconds();
    for (int64_t first = 0; st == XV_OK && first < h.n; first += chunk) {
        int b = (int)(h.n - first < chunk ? h.n - first : chunk);
        report(&o, "boxes", first, h.n);
        st = ground_chunk(ctx, im, tx, set, &h, first, b, pairs, boxes, mine);
    }
    if (st == XV_OK) report(&o, "boxes", h.n, h.n);
    /* every rank gets every result, in the set's order (the padding dropped) */
    if (st == XV_OK) st = xv_dist_gather_shards(mine, sizeof *mine, n, all);
    for (int64_t i = 0; st == XV_OK && i < n; i++) {
        memcpy(out->pred[i], all[i].pred, sizeof out->pred[i]);
        out->iou[i] = all[i].iou;
        out->size[i][0] = all[i].size[0], out->size[i][1] = all[i].size[1];
    }
    out->seconds_images = t1 - t0;
    out->seconds_texts = t2 - t1;
    out->seconds_boxes = xv_monotonic_seconds() - t2;

    if (st == XV_OK) {
        int64_t hits = 0, base_hits = 0;
        double iou_sum = 0, base_iou_sum = 0;
        for (int64_t i = 0; i < n; i++) {
            hits += out->iou[i] >= 0.5;
            iou_sum += out->iou[i];
            if (mean_box) {
                double W = out->size[i][0], H = out->size[i][1];
                double b[4] = {mean_box[0] * W, mean_box[1] * H, mean_box[2] * W, mean_box[3] * H};
                double iou = xv_iou_inclusive(set->bbox[i], b);
                base_hits += iou >= 0.5;
                base_iou_sum += iou;
            }
        }
        out->accuracy = 100.0 * (double)hits / (double)n;
        out->mean_iou = iou_sum / (double)n;
        if (mean_box) {
            out->has_baseline = 1;
            memcpy(out->baseline_box, mean_box, sizeof out->baseline_box);
            out->baseline_accuracy = 100.0 * (double)base_hits / (double)n;
            out->baseline_mean_iou = base_iou_sum / (double)n;
        }
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(pairs);
    free(boxes);
    free(mine);
    free(all);
    shard_free(&h);
    if (st != XV_OK) xv_eval_grounding_result_free(out);
    return st;
}

void xv_eval_grounding_splits(const xv_grounding_set *set, const xv_eval_grounding_result *r,
                              xv_grounding_splits *out) {
    int64_t hit[5] = {0}, num[5] = {0}, all = 0;
    for (int64_t i = 0; i < r->n; i++) {
        const int s = (int)set->split[i], ok = r->iou[i] >= 0.5;
        num[s]++, hit[s] += ok, all += ok;
    }
#define FRAC(h, n) ((n) > 0 ? (double)(h) / (double)(n) : NAN)
    *out = (xv_grounding_splits){
        .val_d = FRAC(hit[XV_REFER_VAL], num[XV_REFER_VAL]),
        .testA_d = FRAC(hit[XV_REFER_TESTA], num[XV_REFER_TESTA]),
        .testB_d = FRAC(hit[XV_REFER_TESTB], num[XV_REFER_TESTB]),
        .n_val = num[XV_REFER_VAL],
        .n_testA = num[XV_REFER_TESTA],
        .n_testB = num[XV_REFER_TESTB],
        .score = FRAC(all, r->n),
    };
#undef FRAC
}

xv_status xv_eval_grounding_write_results(const char *path, const xv_grounding_set *set,
                                          const xv_eval_grounding_result *r) {
    cJSON *root = cJSON_CreateArray();
    for (int64_t i = 0; root && i < r->n; i++) {
        const double *p = r->pred[i], W = r->size[i][0], H = r->size[i][1];
        const double rel[4] = {(p[0] + p[2] / 2) / W, (p[1] + p[3] / 2) / H, p[2] / W, p[3] / H};
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(root, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddNumberToObject(e, "ref_id", (double)set->ref_id[i]);
        cJSON_AddItemToObject(e, "pred", cJSON_CreateDoubleArray(rel, 4));
        cJSON_AddItemToObject(e, "bbox", cJSON_CreateDoubleArray(p, 4));
        cJSON_AddNumberToObject(e, "iou", r->iou[i]);
    }
    char *text = root && cJSON_GetArraySize(root) == r->n ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    xv_status st = xv_fs_write_file(path, text, strlen(text), XV_FS_DURABLE);
    cJSON_free(text);
    return st;
}

xv_status xv_eval_grounding_files(xvlm_ctx *ctx, const char *const *files, int n_files, const xv_fs_root *images,
                                  const xv_refer *refer, const xv_eval_grounding_opts *opts, const char *results_path,
                                  xv_eval_grounding_result *out, xv_grounding_splits *splits) {
    memset(out, 0, sizeof *out);
    xv_grounding_set set;
    XV_TRY(xv_grounding_set_read_files(files, n_files, images, refer, &set));
    xv_status st = xv_eval_grounding(ctx, &set, NULL, opts, out);
    if (st == XV_OK) xv_eval_grounding_splits(&set, out, splits);
    if (st == XV_OK && results_path) st = xv_eval_grounding_write_results(results_path, &set, out);
    if (st != XV_OK) xv_eval_grounding_result_free(out);
    xv_grounding_set_free(&set);
    return st;
}
