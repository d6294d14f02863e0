/* One region record -> one sample (the official RegionTextJsonDataset.__iter__),
 * the box -> image_atts rule, and the collate's choice of texts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/pretrain_sample.h"
#include "data/transforms.h"

void xv_region_image_atts(double x, double y, double w, double h, int patch_size, int n_patch, int32_t *atts) {
    int x_min = (int)fmin(floor(x / patch_size), n_patch - 1);
    int x_max = (int)fmax(x_min + 1, fmin(ceil((x + w) / patch_size), n_patch)); /* exclusive */
    int y_min = (int)fmin(floor(y / patch_size), n_patch - 1);
    int y_max = (int)fmax(y_min + 1, fmin(ceil((y + h) / patch_size), n_patch));
    memset(atts, 0, (size_t)(1 + n_patch * n_patch) * sizeof *atts);
    atts[0] = 1; /* the region's CLS */
    for (int i = y_min; i < y_max; i++)
        for (int j = x_min; j < x_max; j++) atts[1 + n_patch * i + j] = 1;
}

int xv_region_choose_texts(xv_rng *rng, int n, int batch_size, int32_t *keep) {
    if (n >= batch_size) { /* random.sample(range(n), batch_size): a subset in random order */
        int32_t *idx = malloc((size_t)n * sizeof *idx);
        if (!idx) return -1;
        for (int i = 0; i < n; i++) idx[i] = i;
        for (int i = 0; i < batch_size; i++) {
            int j = i + (int)xv_rng_below(rng, (uint64_t)(n - i));
            int32_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        memcpy(keep, idx, (size_t)batch_size * sizeof *keep);
        free(idx);
        return 0;
    }
    for (int i = 0; i < n; i++) keep[i] = i;
    int missing = batch_size - n;
    if (missing <= n) { /* to_keep + random.sample(to_keep, missing) */
        int32_t *pool = malloc((size_t)n * sizeof *pool);
        if (!pool) return -1;
        memcpy(pool, keep, (size_t)n * sizeof *pool);
        for (int i = 0; i < missing; i++) {
            int j = i + (int)xv_rng_below(rng, (uint64_t)(n - i));
            int32_t t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            keep[n + i] = pool[i];
        }
        free(pool);
    } else { /* too few to sample from: (to_keep * ceil(bs/n))[:bs] */
        for (int i = n; i < batch_size; i++) keep[i] = i % n;
    }
    return missing;
}

/* A usable elem: its box truncated to int (as the official get_bbox does). */
typedef struct {
    double x, y, w, h;
    const cJSON *caption, *attributes;
    bool inside; /* wholly inside the image: may anchor the crop */
} elem_t;

static bool string_or_list(const cJSON *v) {
    if (cJSON_IsString(v)) return true;
    if (!cJSON_IsArray(v) || !v->child) return false;
    for (const cJSON *it = v->child; it; it = it->next)
        if (!cJSON_IsString(it)) return false;
    return true;
}

static void warn_rec(xv_sampler *c, const xv_jsonl_where *w, const char *what, int elem, const char *why) {
    if (elem >= 0)
        xv_data_warn(c->warn_budget, "%s: %s:%lld: %s elem %d: %s", c->label, w->path, (long long)w->line, what, elem,
                     why);
    else
        xv_data_warn(c->warn_budget, "%s: %s:%lld: %s: %s", c->label, w->path, (long long)w->line, what, why);
}

/* Parse and check elem i; false (warned, counted) drops it. */
static bool parse_elem(xv_sampler *c, const xv_jsonl_where *w, const cJSON *it, int i, int W, int H, elem_t *e) {
    const cJSON *bb = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "bb") : NULL;
    double v[4];
    bool ok = cJSON_IsArray(bb) && cJSON_GetArraySize(bb) == 4;
    for (int k = 0; ok && k < 4; k++) {
        const cJSON *n = cJSON_GetArrayItem(bb, k);
        /* int() of the official get_bbox truncates toward zero; beyond int32 it is not a pixel box. */
        ok = cJSON_IsNumber(n) && isfinite(n->valuedouble) && fabs(n->valuedouble) < 2147483647.0;
        if (ok) v[k] = trunc(n->valuedouble);
    }
    char why[160];
    if (!ok) {
        warn_rec(c, w, "dropped", i, "\"bb\" is not [x, y, w, h] of 4 finite numbers");
        c->count->bad_box++;
        return false;
    }
    if (v[2] <= 0 || v[3] <= 0 || v[0] >= W || v[1] >= H || v[0] + v[2] <= 0 || v[1] + v[3] <= 0) {
        snprintf(why, sizeof why, "box (%g, %g, %g, %g) is %s the %dx%d image", v[0], v[1], v[2], v[3],
                 v[2] <= 0 || v[3] <= 0 ? "degenerate in" : "outside", W, H);
        warn_rec(c, w, "dropped", i, why);
        c->count->bad_box++;
        return false;
    }
    e->caption = cJSON_GetObjectItemCaseSensitive(it, "caption");
    e->attributes = cJSON_GetObjectItemCaseSensitive(it, "attributes");
    if (!string_or_list(e->caption) || (e->attributes && !string_or_list(e->attributes))) {
        warn_rec(c, w, "dropped", i, "\"caption\" / \"attributes\" is not a string or a non-empty list of strings");
        c->count->bad_caption++;
        return false;
    }
    e->x = v[0], e->y = v[1], e->w = v[2], e->h = v[3];
    e->inside = e->x >= 0 && e->y >= 0 && e->x + e->w <= W && e->y + e->h <= H;
    return true;
}

static bool mentions_left_right(const cJSON *v) {
    if (cJSON_IsString(v)) return xv_text_mentions_left_right(v->valuestring);
    if (cJSON_IsArray(v))
        for (const cJSON *it = v->child; it; it = it->next)
            if (cJSON_IsString(it) && xv_text_mentions_left_right(it->valuestring)) return true;
    return false;
}

/* The official left_or_right_in_caption: the image caption and every elem caption. */
static bool flip_allowed(const xv_sampler *c, const cJSON *rec, const elem_t *es, int n) {
    if (!c->sh->cfg.careful_hflip) return true;
    if (mentions_left_right(cJSON_GetObjectItemCaseSensitive(rec, c->sh->cfg.caption_key))) return false;
    for (int i = 0; i < n; i++)
        if (mentions_left_right(es[i].caption)) return false;
    return true;
}

/* Encode one text into slot out->n; false (warned, counted) when it is empty. */
static xv_sample_result add_text(xv_sampler *c, const xv_jsonl_where *w, const char *text, int elem,
                                 xv_region_texts *out) {
    const char *why = NULL;
    xv_sample_result r = xv_sample_encode_text(c, text, out->rows[out->n], &why);
    if (r == XV_SAMPLE_SKIP) {
        warn_rec(c, w, elem < 0 ? "dropped the image caption" : "dropped", elem, why);
        c->count->bad_caption++;
    }
    return r;
}

static xv_sample_result region_texts(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, elem_t *es, int n,
                                     const xv_region_crop *crop, xv_region_texts *out) {
    const xv_sample_shared *sh = c->sh;
    int res = sh->cfg.image_res, n_atts = 1 + sh->n_patch * sh->n_patch;
    int slots = sh->cfg.max_regions;
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(rec, sh->cfg.caption_key);
    if (cap) { /* the whole-image caption comes first */
        const char *text = xv_sample_pick_string(c, cap);
        xv_sample_result r = XV_SAMPLE_SKIP;
        if (!text) {
            warn_rec(c, w, "dropped the image caption", -1, "not a string or a non-empty list of strings");
            c->count->bad_caption++;
        } else {
            r = add_text(c, w, text, -1, out);
        }
        if (r == XV_SAMPLE_FATAL) return r;
        if (r == XV_SAMPLE_OK) {
            int k = out->n++;
            for (int j = 0; j < n_atts; j++) out->image_atts[k * n_atts + j] = 1;
            float *t = out->target + 4 * k;
            t[0] = 0.5f, t[1] = 0.5f, t[2] = 1.0f, t[3] = 1.0f;
            out->is_image[k] = 1;
            slots--;
        }
    }
    int32_t *order = malloc((size_t)n * sizeof *order);
    if (!order) return xv_error(XV_ERR_NOMEM, "%s: no memory", c->label), XV_SAMPLE_FATAL;
    for (int i = 0; i < n; i++) order[i] = i;
    xv_rng_shuffle_i32(c->rng, order, n); /* random.sample(elems, len(elems)) */
    xv_sample_result r = XV_SAMPLE_OK;
    for (int oi = 0; oi < n && slots > 0; oi++) {
        const elem_t *e = &es[order[oi]];
        xv_box box;
        if (!xv_region_crop_box(crop, (xv_box){e->x, e->y, e->w, e->h}, sh->cfg.min_perc_in_image, &box)) continue;
        const char *caption = xv_sample_pick_string(c, e->caption);
        const char *text = caption;
        char *joined = NULL;
        if (e->attributes) { /* attribute + ' ' + caption */
            const char *attr = xv_sample_pick_string(c, e->attributes);
            size_t len = strlen(attr) + strlen(caption) + 2;
            if (!(joined = malloc(len))) {
                r = XV_SAMPLE_FATAL;
                xv_error(XV_ERR_NOMEM, "%s: no memory", c->label);
                break;
            }
            snprintf(joined, len, "%s %s", attr, caption);
            text = joined;
        }
        r = add_text(c, w, text, order[oi], out);
        free(joined);
        if (r == XV_SAMPLE_FATAL) break;
        if (r == XV_SAMPLE_SKIP) {
            r = XV_SAMPLE_OK; /* this text is dropped, the record goes on */
            continue;
        }
        int k = out->n;
        xv_region_image_atts(box.x, box.y, box.w, box.h, sh->cfg.patch_size, sh->n_patch, out->image_atts + k * n_atts);
        xv_box_target(&box, res, out->target + 4 * k);
        out->is_image[k] = 0;
        out->n++;
        slots--;
    }
    free(order);
    return r;
}

xv_sample_result xv_sample_region(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, float *image,
                                  xv_region_texts *out) {
    out->n = 0;
    xv_image im = {0};
    xv_sample_result r = xv_sample_load_image(c, rec, w, &im);
    if (r != XV_SAMPLE_OK) return r;
    const cJSON *elems = cJSON_GetObjectItemCaseSensitive(rec, "elems");
    int n_all = cJSON_IsArray(elems) ? cJSON_GetArraySize(elems) : 0;
    elem_t *es = n_all ? malloc((size_t)n_all * sizeof *es) : NULL;
    if (n_all && !es) {
        xv_image_free(&im);
        return xv_error(XV_ERR_NOMEM, "%s: no memory for %d elems", c->label, n_all), XV_SAMPLE_FATAL;
    }
    int n = 0, n_inside = 0, i = 0;
    for (const cJSON *it = n_all ? elems->child : NULL; it; it = it->next, i++)
        if (parse_elem(c, w, it, i, im.width, im.height, &es[n])) n_inside += es[n++].inside;
    if (n_inside == 0) {
        warn_rec(c, w, "skipped", -1,
                 n_all ? "no elem lies wholly inside the image to anchor the crop" : "no \"elems\" list");
        c->count->no_region++;
        r = XV_SAMPLE_SKIP;
        goto done;
    }
    /* random.choice among the anchors, then the crop and flip around it. */
    int pick = (int)xv_rng_below(c->rng, (uint64_t)n_inside), anchor = 0;
    for (int k = 0; k < n; k++)
        if (es[k].inside && pick-- == 0) {
            anchor = k;
            break;
        }
    xv_region_crop crop;
    xv_image resized = {0};
    const elem_t *a = &es[anchor];
    xv_status s = xv_region_crop_draw(c->rng, im.width, im.height, (xv_box){a->x, a->y, a->w, a->h},
                                      flip_allowed(c, rec, es, n), c->sh->cfg.image_res, &crop);
    if (s == XV_OK) s = xv_region_crop_apply(&im, &crop, &resized);
    if (s == XV_OK) s = xv_transform_train(c->rng, &resized, c->sh->cfg.image_res, XV_TRAIN_BOX, image);
    xv_image_free(&resized);
    if (s != XV_OK) {
        r = XV_SAMPLE_FATAL; /* the anchor was checked: only memory can fail here */
        goto done;
    }
    r = region_texts(c, rec, w, es, n, &crop, out);
    if (r == XV_SAMPLE_OK && out->n == 0) {
        warn_rec(c, w, "skipped", -1, "no text left");
        c->count->no_region++;
        r = XV_SAMPLE_SKIP;
    }
    if (r == XV_SAMPLE_OK) {
        c->count->samples++;
        c->count->texts += out->n;
    }
done:
    free(es);
    xv_image_free(&im);
    return r;
}
