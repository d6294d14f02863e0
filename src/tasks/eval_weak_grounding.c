#include "tasks/eval_weak_grounding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dist/dist.h"
#include "api/api_internal.h"
#include "tasks/metrics.h"

#include <ctype.h>

void xv_weak_grounding_result_free(xv_weak_grounding_result *r) {
    if (!r) return;
    free(r->box_scores);
    free(r->chosen);
    free(r->box);
    free(r->iou);
    free(r->correct);
    free(r->peak_in_box);
    free(r->box_share);
    memset(r, 0, sizeof *r);
}

/* Whether the first maximum of up [H, W] lies inside box (x, y, w, h). */
static int peak_inside(const float *up, int H, int W, const double box[4]) {
    int64_t best = 0;
    for (int64_t i = 1; i < (int64_t)H * W; i++)
        if (up[i] > up[best]) best = i;
    const double px = (double)(best % W), py = (double)(best / W);
    return px >= box[0] && px < box[0] + box[2] && py >= box[1] && py < box[1] + box[3];
}

/* The share of the H x W image that box (x, y, w, h) covers. */
static double box_share(const double box[4], int H, int W) {
    const double w = fmin(box[0] + box[2], W) - fmax(box[0], 0), h = fmin(box[1] + box[3], H) - fmax(box[1], 0);
    return w > 0 && h > 0 ? w * h / ((double)W * H) : 0;
}

xv_status xv_weak_grounding_eval(const xv_weak_ref *refs, int n_refs, int n, double alpha,
                                 xv_weak_grounding_result *out, float **upsampled) {
    memset(out, 0, sizeof *out);
    int64_t total_dets = 0;
    for (int r = 0; r < n_refs; r++) {
        const xv_weak_ref *e = &refs[r];
        if (e->height < 1 || e->width < 1 || e->n_dets < 0 || (e->n_dets && !e->dets) || !e->map ||
            (unsigned)e->split >= XV_N_SPLITS)
            return xv_error(XV_ERR_INVALID_ARG, "weak grounding: expression %d: bad size %dx%d, proposals or split", r,
                            e->width, e->height);
        total_dets += e->n_dets;
    }
    out->box_scores = malloc(sizeof(float) * (size_t)(total_dets ? total_dets : 1));
    out->chosen = malloc(sizeof(int) * (size_t)(n_refs ? n_refs : 1));
    out->box = malloc(sizeof(double[4]) * (size_t)(n_refs ? n_refs : 1));
    out->iou = malloc(sizeof(double) * (size_t)(n_refs ? n_refs : 1));
    out->correct = malloc(sizeof(int) * (size_t)(n_refs ? n_refs : 1));
    out->peak_in_box = malloc(sizeof(int) * (size_t)(n_refs ? n_refs : 1));
    out->box_share = malloc(sizeof(double) * (size_t)(n_refs ? n_refs : 1));
    if (!out->box_scores || !out->chosen || !out->box || !out->iou || !out->correct || !out->peak_in_box ||
        !out->box_share) {
        xv_weak_grounding_result_free(out);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; upsampled && r < n_refs; r++) upsampled[r] = NULL;
    int count[XV_N_SPLITS] = {0}, hits[XV_N_SPLITS] = {0};
    double random_hits[XV_N_SPLITS] = {0};
    const double *prev = NULL;
    int64_t at = 0;
    xv_status st = XV_OK;
    for (int r = 0; r < n_refs && st == XV_OK; r++) {
        const xv_weak_ref *e = &refs[r];
        float *up = malloc(sizeof(float) * (size_t)e->height * (size_t)e->width);
        if (!up) {
            st = xv_error(XV_ERR_NOMEM, "out of memory for a %dx%d map", e->width, e->height);
            break;
        }
        xv_upsample_bicubic_torch(e->map, n, n, up, e->height, e->width);
        int good = 0;
        for (int k = 0; k < e->n_dets; k++) {
            out->box_scores[at + k] = xv_weak_box_score(up, e->height, e->width, e->dets[k], alpha);
            good += xv_iou_inclusive(e->gt, e->dets[k]) >= 0.5;
        }
        if (e->n_dets) random_hits[e->split] += (double)good / e->n_dets;
        out->peak_in_box[r] = peak_inside(up, e->height, e->width, e->gt);
        out->box_share[r] = box_share(e->gt, e->height, e->width);
        int chosen = xv_weak_choose(out->box_scores + at, e->n_dets);
        at += e->n_dets;
        if (upsampled) upsampled[r] = up;
        else free(up);
        if (chosen >= 0) prev = e->dets[chosen];
        if (!prev) {
            st = xv_error(XV_ERR_INVALID_ARG, "weak grounding: expression %d has no proposal with a positive score "
                          "(the official evaluation fails here)", r);
            break;
        }
        out->chosen[r] = chosen;
        memcpy(out->box[r], prev, sizeof(double[4]));
        out->iou[r] = xv_iou_inclusive(e->gt, prev);
        out->correct[r] = out->iou[r] >= 0.5;
        count[e->split]++;
        hits[e->split] += out->correct[r];
    }
    for (int s = 0; s < XV_N_SPLITS; s++) {
        out->accuracy[s] = count[s] ? (double)hits[s] / (double)count[s] : NAN;
        out->random_accuracy[s] = count[s] ? random_hits[s] / (double)count[s] : NAN;
    }
    if (st != XV_OK) xv_weak_grounding_result_free(out);
    return st;
}

/* The trailing number of a file name's stem, -1 when it has none. */
static int64_t image_id_of(const char *path) {
    const char *dot = strrchr(path, '.'), *end = dot ? dot : path + strlen(path), *p = end;
    while (p > path && isdigit((unsigned char)p[-1])) p--;
    return p < end && end - p < 18 ? strtoll(p, NULL, 10) : -1;
}

static xv_refcoco_split split_of(xv_refer_split s) {
    return s == XV_REFER_TESTA ? XV_SPLIT_TESTA : s == XV_REFER_TESTB ? XV_SPLIT_TESTB : XV_SPLIT_VAL;
}

/* Map of expression i (side x side) from its image file and text. */
static xv_status one_map(xvlm_ctx *ctx, const xv_grounding_set *set, int64_t i, int layer, float *map, int *W, int *H) {
    const char *path = set->image_paths[set->image[i]], *text = set->texts[i];
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0; /* Grounding.py's tokenizer call cuts nothing */
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xv_status st = (xv_status)xvlm_encode_image_files(ctx, &path, 1, NULL, &im);
    if (st == XV_OK) st = (xv_status)xvlm_encode_texts(ctx, &text, 1, &tp, &tx);
    if (st == XV_OK) st = (xv_status)xvlm_gradcam(ctx, im, tx, (xvlm_pair){0, 0}, layer, map, NULL);
    if (st == XV_OK) xvlm_images_size(im, 0, W, H);
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    return st == XV_OK ? XV_OK : xv_error(st, "expression %lld: %s", (long long)i, xvlm_last_error());
}

xv_status xv_eval_weak_grounding(xvlm_ctx *ctx, const xv_grounding_set *set, const xv_refer *refer,
                                 const xv_dets *dets, int layer, xv_weak_grounding_result *out) {
    memset(out, 0, sizeof *out);
    const int64_t n = set->n, m = xv_dist_shard_size(n);
    xvlm_model_info info;
    xvlm_model_get_info(ctx->model, &info);
    const int side = info.map_side, P = side * side;
    xv_weak_ref *refs = calloc((size_t)(n ? n : 1), sizeof *refs);
    float *maps = malloc(sizeof(float) * (size_t)(n ? n : 1) * (size_t)P);
    float *my_maps = malloc(sizeof(float) * (size_t)(m ? m : 1) * (size_t)P);
    int(*sizes)[2] = malloc(sizeof *sizes * (size_t)(n ? n : 1)); /* width, height of each expression's image */
    int(*my_sizes)[2] = malloc(sizeof *sizes * (size_t)(m ? m : 1));
    xv_status st = refs && maps && my_maps && sizes && my_sizes ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && st == XV_OK; i++) {
        const xv_refer_ref *r = refer && set->ref_id[i] >= 0 ? xv_refer_find(refer, set->ref_id[i]) : NULL;
        const int64_t id = r ? r->image_id : image_id_of(set->image_paths[set->image[i]]);
        const xv_dets_image *d = id >= 0 ? xv_dets_find(dets, id) : NULL;
        if (!d) {
            st = xv_error(XV_ERR_MISSING, "expression %lld (%s): no proposals for image id %lld", (long long)i,
                          set->image_paths[set->image[i]], (long long)id);
            break;
        }
        xv_weak_ref *e = &refs[i];
        e->map = maps + i * P;
        e->dets = (const double(*)[4])d->box;
        e->n_dets = (int)d->n;
        memcpy(e->gt, set->bbox[i], sizeof e->gt);
        e->split = split_of(set->split[i]);
    }
    /* Under mpirun each rank draws the maps of its share (DistributedSampler's,
     * as Grounding.py's test loader; one expression per pass, so the same bits
     * as one process) and every rank gets them all in expression order. */
    for (int64_t k = 0; k < m && st == XV_OK; k++)
        st = one_map(ctx, set, xv_dist_shard_sample(n, k), layer, my_maps + k * P, &my_sizes[k][0], &my_sizes[k][1]);
    if (st == XV_OK) st = xv_dist_gather_shards(my_maps, sizeof(float) * (size_t)P, n, maps);
    if (st == XV_OK) st = xv_dist_gather_shards(my_sizes, sizeof *my_sizes, n, sizes);
    for (int64_t i = 0; i < n && st == XV_OK; i++) refs[i].width = sizes[i][0], refs[i].height = sizes[i][1];
    if (st == XV_OK) st = xv_weak_grounding_eval(refs, (int)n, side, XV_GRADCAM_BOX_ALPHA, out, NULL);
    free(refs), free(maps), free(my_maps), free(sizes), free(my_sizes);
    return st;
}
