/* One image-text record -> one sample; the text and image steps shared with
 * region records (pretrain_region.c). */
#include "data/pretrain_sample.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "data/base64.h"
#include "data/caption.h"
#include "data/image.h"
#include "data/transforms.h"

static bool ids_push(xv_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? 2 * ids->cap : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return false;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return true;
}

static bool is_ascii_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* The official `text.strip().split(' ')` then convert_tokens_to_ids, up to
 * `limit` tokens (later ones would be cut anyway). Python's strip() also
 * removes non-ASCII whitespace; pre-tokenized data has none. */
static xv_sample_result split_pretokenized(xv_sampler *c, const char *text, size_t limit, const char **why) {
    const char *b = text, *e = text + strlen(text);
    while (b < e && is_ascii_space(*b)) b++;
    while (e > b && is_ascii_space(e[-1])) e--;
    if (b == e) {
        *why = "empty pre-tokenized caption";
        return XV_SAMPLE_SKIP;
    }
    char tok[256];
    while (c->scratch.n < limit) {
        const char *sp = memchr(b, ' ', (size_t)(e - b));
        const char *end = sp ? sp : e;
        size_t n = (size_t)(end - b);
        int32_t id = c->sh->special.unk; /* a token longer than any vocab entry is unknown */
        if (n < sizeof tok) {
            memcpy(tok, b, n);
            tok[n] = '\0';
            id = xv_tokenizer_token_to_id(c->sh->tok, tok);
        }
        if (!ids_push(&c->scratch, id)) return XV_SAMPLE_FATAL;
        if (!sp) break;
        b = sp + 1;
    }
    return XV_SAMPLE_OK;
}

xv_sample_result xv_sample_encode_text(xv_sampler *c, const char *text, xv_text_row row, const char **why) {
    const xv_pretrain_config *cfg = &c->sh->cfg;
    c->scratch.n = 0;
    if (cfg->tokenized) {
        xv_sample_result r = split_pretokenized(c, text, (size_t)cfg->max_tokens - 1, why);
        if (r == XV_SAMPLE_FATAL) xv_error(XV_ERR_NOMEM, "%s: no memory for token ids", c->label);
        if (r != XV_SAMPLE_OK) return r;
    } else {
        char *clean = NULL;
        size_t clean_len = 0;
        xv_status s = xv_pre_caption(text, strlen(text), cfg->max_words, &clean, &clean_len);
        if (s == XV_ERR_NOMEM) return XV_SAMPLE_FATAL;
        if (s != XV_OK) {
            *why = s == XV_ERR_FORMAT ? "invalid UTF-8" : "empty after cleaning (pre_caption)";
            return XV_SAMPLE_SKIP;
        }
        s = xv_tokenize(c->sh->tok, clean, clean_len, &c->scratch);
        free(clean);
        if (s == XV_ERR_NOMEM) return XV_SAMPLE_FATAL;
        if (s != XV_OK) {
            *why = "cannot be tokenized";
            return XV_SAMPLE_SKIP;
        }
    }
    int L = cfg->max_tokens;
    int n = 1 + (int)(c->scratch.n < (size_t)L - 1 ? c->scratch.n : (size_t)L - 1);
    if (n < 2) { /* the official assert "len(word tokens) < 2" */
        *why = "no tokens";
        return XV_SAMPLE_SKIP;
    }
    row.ids[0] = c->sh->special.cls;
    memcpy(row.ids + 1, c->scratch.v, (size_t)(n - 1) * sizeof *row.ids);
    for (int i = 0; i < L; i++) {
        if (i >= n) row.ids[i] = c->sh->special.pad;
        row.atts[i] = i < n;
    }
    if (xv_mask_text(&c->sh->cfg.masking, c->rng, row.ids, n, row.ids_masked, row.masked_pos, row.masked_ids, NULL) !=
        XV_OK)
        return XV_SAMPLE_FATAL; /* ids come from the vocabulary: only a bad config fails here */
    for (int i = n; i < L; i++) row.ids_masked[i] = c->sh->special.pad;
    return XV_SAMPLE_OK;
}

const char *xv_sample_pick_string(xv_sampler *c, const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (!cJSON_IsArray(v)) return NULL;
    int n = cJSON_GetArraySize(v);
    if (n <= 0) return NULL;
    for (const cJSON *it = v->child; it; it = it->next)
        if (!cJSON_IsString(it)) return NULL;
    return cJSON_GetArrayItem(v, (int)xv_rng_below(c->rng, (uint64_t)n))->valuestring;
}

static xv_sample_result skip_image(xv_sampler *c, const xv_jsonl_where *w, int64_t *counter, const char *why) {
    xv_data_warn(c->warn_budget, "%s: %s:%lld: skipped: %s", c->label, w->path, (long long)w->line, why);
    (*counter)++;
    return XV_SAMPLE_SKIP;
}

/* The image a record names, under the loader's path policy (core/fs.h): a
 * name outside image_root, a missing file, one that cannot be opened (no
 * permission, not a regular file) and one that does not decode are each
 * skipped with the reason and counted apart. */
static xv_sample_result load_path(xv_sampler *c, const char *rpath, const xv_jsonl_where *w, xv_image *out) {
    const xv_fs_root policy = {.root = c->sh->cfg.image_root, .allow_outside_root = c->sh->cfg.allow_outside_root};
    char *path = NULL;
    char why[1024];
    xv_fs_name_verdict v = xv_fs_resolve(&policy, rpath, &path);
    if (v == XV_FS_NAME_NOMEM) return XV_SAMPLE_FATAL;
    if (v != XV_FS_NAME_OK) {
        snprintf(why, sizeof why, "image %s", xv_error_message());
        int64_t *counter = v == XV_FS_NAME_ABSENT         ? &c->count->missing_image
                           : v == XV_FS_NAME_OUTSIDE_ROOT ? &c->count->outside_root
                                                          : &c->count->unreadable_image;
        return skip_image(c, w, counter, why);
    }
    xv_sample_result r = XV_SAMPLE_OK;
    xv_status s = xv_image_load(path, out);
    if (s != XV_OK) { /* a file over the size cap says XV_ERR_NOMEM: counted as corrupt */
        snprintf(why, sizeof why, "image %s", xv_error_message());
        int64_t *counter = s == XV_ERR_IO ? &c->count->unreadable_image : &c->count->corrupt_image;
        r = skip_image(c, w, counter, why);
    }
    free(path);
    return r;
}

xv_sample_result xv_sample_load_image(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, xv_image *out) {
    const char *key = c->sh->cfg.image_key;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
    char why[1024];
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        snprintf(why, sizeof why, "no image: key \"%s\" is %s", key, v ? "not a non-empty string" : "absent");
        return skip_image(c, w, &c->count->missing_image, why);
    }
    if (c->sh->cfg.is_image_rpath) {
        if (xv_json_has_nul(v->valuestring, w->nul_escapes)) {
            snprintf(why, sizeof why, "image path \"%s\" holds a NUL character (\\u0000)", key);
            return skip_image(c, w, &c->count->unreadable_image, why);
        }
        return load_path(c, v->valuestring, w, out);
    }
    uint8_t *bytes;
    size_t n;
    char label[64];
    snprintf(label, sizeof label, "\"%s\"", key);
    xv_status s = xv_base64_decode(v->valuestring, strlen(v->valuestring), (size_t)XV_IMAGE_MAX_FILE_BYTES, label,
                                   &bytes, &n);
    if (s == XV_OK) {
        s = xv_image_decode(bytes, n, label, out);
        free(bytes);
    }
    if (s != XV_OK) {
        snprintf(why, sizeof why, "image: %s", xv_error_message());
        return skip_image(c, w, &c->count->corrupt_image, why);
    }
    return XV_SAMPLE_OK;
}

xv_sample_result xv_sample_image_text(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, float *image,
                                      xv_text_row row) {
    const char *key = c->sh->cfg.caption_key;
    const char *caption = xv_sample_pick_string(c, cJSON_GetObjectItemCaseSensitive(rec, key));
    const char *why = NULL;
    xv_sample_result r = XV_SAMPLE_SKIP;
    if (!caption)
        why = "caption is not a string or a non-empty list of strings";
    else
        r = xv_sample_encode_text(c, caption, row, &why);
    if (r == XV_SAMPLE_FATAL) return r;
    if (r == XV_SAMPLE_SKIP) {
        xv_data_warn(c->warn_budget, "%s: %s:%lld: skipped: \"%s\": %s", c->label, w->path, (long long)w->line, key,
                     why);
        c->count->bad_caption++;
        return r;
    }
    xv_image im = {0};
    r = xv_sample_load_image(c, rec, w, &im);
    if (r != XV_SAMPLE_OK) return r;
    xv_rrc_params crop = xv_rrc_default(c->sh->cfg.crop_scale_min);
    crop.scale_max = c->sh->cfg.crop_scale_max;
    xv_status s = xv_transform_train_crop(c->rng, &im, c->sh->cfg.image_res, XV_TRAIN_PRETRAIN, &crop, image);
    xv_image_free(&im);
    if (s == XV_ERR_NOMEM) return XV_SAMPLE_FATAL;
    if (s != XV_OK) {
        char why2[1024];
        snprintf(why2, sizeof why2, "image transform: %s", xv_error_message());
        return skip_image(c, w, &c->count->corrupt_image, why2);
    }
    c->count->samples++;
    c->count->texts++;
    return XV_SAMPLE_OK;
}
