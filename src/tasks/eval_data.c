#include "tasks/eval_data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/jsonl.h"
#include "io/strindex.h"

/* The entries of one or more JSON-array files, concatenated in order. */
typedef struct {
    cJSON *all;                /* one array holding every entry */
    const char *const *paths;
    int n_paths;
    int64_t *start;            /* [n_paths + 1]: first entry of each file */
} entries;

static void entries_free(entries *E) {
    cJSON_Delete(E->all);
    free(E->start);
}

static xv_status entries_read(const char *const *paths, int n_paths, entries *E) {
    memset(E, 0, sizeof *E);
    E->paths = paths;
    E->n_paths = n_paths;
    if (n_paths < 1) return xv_error(XV_ERR_INVALID_ARG, "no data files given");
    E->all = cJSON_CreateArray();
    E->start = calloc((size_t)n_paths + 1, sizeof *E->start);
    if (!E->all || !E->start) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int f = 0; f < n_paths; f++) {
        cJSON *one;
        XV_TRY(xv_json_read_list(paths[f], XV_EVAL_MAX_FILE_BYTES, &one));
        int64_t n = E->start[f];
        while (one->child) {
            cJSON *e = cJSON_DetachItemViaPointer(one, one->child);
            cJSON_AddItemToArray(E->all, e);
            n++;
        }
        cJSON_Delete(one);
        E->start[f + 1] = n;
    }
    return XV_OK;
}

/* An error about entry i, named by its file and its index in that file. */
static xv_status entry_error(const entries *E, int64_t i, xv_status code, const char *fmt, ...) {
    int f = 0;
    while (f + 1 < E->n_paths && i >= E->start[f + 1]) f++;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return xv_error(code, "%s: entry %lld: %s", E->paths[f], (long long)(i - E->start[f]), what);
}

xv_status xv_dataset_image_path(const xv_fs_root *images, const char *name, char **out) {
    *out = NULL;
    if (xv_json_bad_name(name))
        return xv_error(XV_ERR_INVALID_ARG, "the image name holds a NUL (\\u0000) or U+0001: not a file name");
    char *real = NULL;
    xv_fs_name_verdict v = xv_fs_resolve(images, name, &real);
    free(real);
    if (v == XV_FS_NAME_OUTSIDE_ROOT || v == XV_FS_NAME_NOMEM)
        return v == XV_FS_NAME_NOMEM ? XV_ERR_NOMEM : XV_ERR_INVALID_ARG; /* the message says why */
    xv_error_clear();
    *out = xv_fs_join(images ? images->root : NULL, name);
    return *out ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
}

/* The path of entry i's image (xv_dataset_image_path), a refusal naming the
 * file and the entry. */
static xv_status image_path(const entries *E, int64_t i, const xv_fs_root *images, const char *name, char **out) {
    xv_status st = xv_dataset_image_path(images, name, out);
    return st == XV_OK ? XV_OK : entry_error(E, i, st, "%s", xv_error_message());
}

static const char *get_string(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* ---- retrieval ---- */

void xv_retrieval_set_free(xv_retrieval_set *s) {
    if (!s) return;
    for (int64_t i = 0; s->image_paths && i < s->n_images; i++) free(s->image_paths[i]);
    for (int64_t i = 0; s->texts && i < s->n_texts; i++) free(s->texts[i]);
    free(s->image_paths);
    free(s->texts);
    free(s->txt2img);
    memset(s, 0, sizeof *s);
}

xv_status xv_retrieval_set_read(const char *json_path, const xv_fs_root *images, xv_retrieval_set *out) {
    return xv_retrieval_set_read_files(&json_path, 1, images, out);
}

xv_status xv_retrieval_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                      xv_retrieval_set *out) {
    memset(out, 0, sizeof *out);
    entries E;
    xv_status st = entries_read(json_paths, n_paths, &E);
    cJSON *root = E.all;
    int64_t n_img = st == XV_OK ? cJSON_GetArraySize(root) : 0, n_txt = 0;
    /* First pass: validate and count the texts. */
    int64_t i = 0;
    for (const cJSON *e = st == XV_OK ? root->child : NULL; e && st == XV_OK; e = e->next, i++) {
        if (!cJSON_IsObject(e) || !get_string(e, "image")) {
            st = entry_error(&E, i, XV_ERR_FORMAT, "expected an object with a string \"image\"");
            break;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "caption");
        if (cJSON_IsString(c)) {
            n_txt++;
        } else if (cJSON_IsArray(c)) {
            for (const cJSON *t = c->child; t; t = t->next) {
                if (!cJSON_IsString(t)) {
                    st = entry_error(&E, i, XV_ERR_FORMAT, "\"caption\" holds a non-string");
                    break;
                }
                n_txt++;
            }
        } else {
            st = entry_error(&E, i, XV_ERR_FORMAT, "\"caption\" must be a string or a list of strings");
        }
    }
    if (st == XV_OK && (n_img == 0 || n_txt == 0))
        st = xv_error(XV_ERR_FORMAT, "%s%s: no images or no captions (%lld images, %lld captions)", json_paths[0],
                      n_paths > 1 ? " and the files after it" : "", (long long)n_img, (long long)n_txt);
    if (st == XV_OK) {
        out->image_paths = calloc((size_t)n_img, sizeof *out->image_paths);
        out->texts = calloc((size_t)n_txt, sizeof *out->texts);
        out->txt2img = calloc((size_t)n_txt, sizeof *out->txt2img);
        if (!out->image_paths || !out->texts || !out->txt2img) st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    i = 0;
    for (const cJSON *e = st == XV_OK ? root->child : NULL; e && st == XV_OK; e = e->next, i++) {
        if ((st = image_path(&E, i, images, get_string(e, "image"), &out->image_paths[i])) != XV_OK) break;
        out->n_images = i + 1;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "caption");
        const cJSON *first = cJSON_IsString(c) ? c : c->child;
        for (const cJSON *t = first; t && st == XV_OK; t = cJSON_IsString(c) ? NULL : t->next) {
            int64_t k = out->n_texts;
            out->texts[k] = strdup(t->valuestring);
            out->txt2img[k] = i;
            out->n_texts = k + 1;
            if (!out->texts[k]) st = xv_error(XV_ERR_NOMEM, "out of memory");
        }
    }
    entries_free(&E);
    if (st != XV_OK) xv_retrieval_set_free(out);
    return st;
}

/* ---- grounding ---- */

void xv_grounding_set_free(xv_grounding_set *s) {
    if (!s) return;
    for (int64_t i = 0; s->texts && i < s->n; i++) free(s->texts[i]);
    for (int64_t i = 0; s->image_paths && i < s->n_images; i++) free(s->image_paths[i]);
    free(s->texts);
    free(s->image);
    free(s->bbox);
    free(s->size);
    free(s->ref_id);
    free(s->split);
    free(s->image_paths);
    memset(s, 0, sizeof *s);
}

static xv_status read_box(const entries *E, const cJSON *e, int64_t i, double box[4]) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "bbox");
    if (!b)
        return entry_error(E, i, XV_ERR_FORMAT,
                           "no \"bbox\": without the REFER index (refcoco_data) the box must be inline "
                           "[x, y, w, h], the VLUE format");
    int k = 0;
    for (const cJSON *v = cJSON_IsArray(b) ? b->child : NULL; v && k < 5; v = v->next, k++)
        if (k < 4) box[k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (k != 4 || !isfinite(box[0]) || !isfinite(box[1]) || !isfinite(box[2]) || !isfinite(box[3]) || box[2] <= 0 ||
        box[3] <= 0)
        return entry_error(E, i, XV_ERR_FORMAT, "\"bbox\" must be [x, y, w, h] with w, h > 0");
    return XV_OK;
}

static int read_dim(const cJSON *e, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1e6)) return 0;
    return (int)v->valuedouble;
}

/* "ref_id" as an integer, -1 when absent. */
static int64_t read_ref_id(const cJSON *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "ref_id");
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble) &&
                   v->valuedouble < 9e15
               ? (int64_t)v->valuedouble
               : -1;
}

/* Box, size, ref_id and split of entry i: from the REFER index when there is
 * one (grounding_dataset_bbox), else inline. */
static xv_status read_target(const entries *E, const cJSON *e, int64_t i, const xv_refer *refer,
                             xv_grounding_set *out) {
    out->ref_id[i] = read_ref_id(e);
    out->split[i] = XV_REFER_OTHER;
    if (!refer) {
        out->size[i][0] = read_dim(e, "width");
        out->size[i][1] = read_dim(e, "height");
        return read_box(E, e, i, out->bbox[i]);
    }
    if (out->ref_id[i] < 0) return entry_error(E, i, XV_ERR_FORMAT, "no integer \"ref_id\" (needed by REFER)");
    const xv_refer_ref *r = xv_refer_find(refer, out->ref_id[i]);
    if (!r)
        return entry_error(E, i, XV_ERR_MISSING, "ref_id %lld is not in the REFER index %s",
                           (long long)out->ref_id[i], refer->refs_path);
    if (!(r->bbox[2] > 0 && r->bbox[3] > 0))
        return entry_error(E, i, XV_ERR_FORMAT, "ref_id %lld: its annotation's box has no area",
                           (long long)out->ref_id[i]);
    memcpy(out->bbox[i], r->bbox, sizeof out->bbox[i]);
    out->size[i][0] = r->width, out->size[i][1] = r->height;
    out->split[i] = r->split;
    return XV_OK;
}

xv_status xv_grounding_set_read(const char *json_path, const xv_fs_root *images, xv_grounding_set *out) {
    return xv_grounding_set_read_files(&json_path, 1, images, NULL, out);
}

xv_status xv_grounding_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                      const xv_refer *refer, xv_grounding_set *out) {
    memset(out, 0, sizeof *out);
    entries E;
    xv_status st = entries_read(json_paths, n_paths, &E);
    int64_t n = st == XV_OK ? cJSON_GetArraySize(E.all) : 0;
    if (st == XV_OK && n == 0) st = xv_error(XV_ERR_FORMAT, "%s: no entries", json_paths[0]);
    if (n > INT32_MAX) st = xv_error(XV_ERR_FORMAT, "%s: more than 2^31 entries", json_paths[0]);
    xv_strindex seen = {0};
    if (st == XV_OK) {
        out->texts = calloc((size_t)n, sizeof *out->texts);
        out->image = calloc((size_t)n, sizeof *out->image);
        out->bbox = calloc((size_t)n, sizeof *out->bbox);
        out->size = calloc((size_t)n, sizeof *out->size);
        out->ref_id = calloc((size_t)n, sizeof *out->ref_id);
        out->split = calloc((size_t)n, sizeof *out->split);
        out->image_paths = calloc((size_t)n, sizeof *out->image_paths);
        if (!out->texts || !out->image || !out->bbox || !out->size || !out->ref_id || !out->split ||
            !out->image_paths)
            st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    for (const cJSON *e = st == XV_OK ? E.all->child : NULL; e && st == XV_OK; e = e->next, i++) {
        const char *image = cJSON_IsObject(e) ? get_string(e, "image") : NULL;
        const char *text = image ? get_string(e, "text") : NULL;
        if (!text) {
            st = entry_error(&E, i, XV_ERR_FORMAT, "expected an object with strings \"image\" and \"text\"");
            break;
        }
        if ((st = read_target(&E, e, i, refer, out)) != XV_OK) break;
        out->texts[i] = strdup(text);
        out->n = i + 1;
        if (!out->texts[i]) {
            st = xv_error(XV_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t k = xv_strindex_get(&seen, image);
        if (k < 0) {
            k = out->n_images;
            if ((st = image_path(&E, i, images, image, &out->image_paths[k])) != XV_OK) break;
            if (!xv_strindex_put(&seen, image, (int32_t)k)) {
                free(out->image_paths[k]);
                st = xv_error(XV_ERR_NOMEM, "out of memory");
                break;
            }
            out->n_images = k + 1;
        }
        out->image[i] = k;
    }
    xv_strindex_free(&seen);
    entries_free(&E);
    if (st != XV_OK) xv_grounding_set_free(out);
    return st;
}

xv_status xv_grounding_mean_box(const xv_grounding_set *s, const char *label, double out[4]) {
    double sum[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < s->n; i++) {
        double W = s->size[i][0], H = s->size[i][1];
        if (W <= 0 || H <= 0)
            return xv_error(XV_ERR_MISSING, "%s: entry %lld has no \"width\" / \"height\" (needed to average boxes)",
                            label, (long long)i);
        sum[0] += s->bbox[i][0] / W;
        sum[1] += s->bbox[i][1] / H;
        sum[2] += s->bbox[i][2] / W;
        sum[3] += s->bbox[i][3] / H;
    }
    if (s->n == 0) return xv_error(XV_ERR_INVALID_ARG, "%s: no boxes to average", label);
    for (int k = 0; k < 4; k++) out[k] = sum[k] / (double)s->n;
    return XV_OK;
}

/* ---- NLVR2 ---- */

void xv_nlvr_set_free(xv_nlvr_set *s) {
    if (!s) return;
    for (int64_t i = 0; s->sentences && i < s->n; i++) free(s->sentences[i]);
    for (int64_t i = 0; s->image_paths && i < s->n_images; i++) free(s->image_paths[i]);
    free(s->sentences), free(s->label), free(s->pair), free(s->image_paths);
    memset(s, 0, sizeof *s);
}

/* Entry i's fields, validated. */
static xv_status nlvr_entry(const entries *E, const cJSON *e, int64_t i, const char *img[2], const char **sentence,
                            int32_t *label) {
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(e, "images");
    if (!cJSON_IsObject(e) || cJSON_GetArraySize(im) != 2 || !cJSON_IsArray(im) ||
        !cJSON_IsString(cJSON_GetArrayItem(im, 0)) || !cJSON_IsString(cJSON_GetArrayItem(im, 1)))
        return entry_error(E, i, XV_ERR_FORMAT, "expected an object with \"images\": [two image paths]");
    img[0] = cJSON_GetArrayItem(im, 0)->valuestring, img[1] = cJSON_GetArrayItem(im, 1)->valuestring;
    if (!(*sentence = get_string(e, "sentence"))) return entry_error(E, i, XV_ERR_FORMAT, "no string \"sentence\"");
    const char *l = get_string(e, "label");
    if (!l || (strcmp(l, "True") && strcmp(l, "False")))
        return entry_error(E, i, XV_ERR_FORMAT, "\"label\" must be the string \"True\" or \"False\"");
    *label = !strcmp(l, "True");
    return XV_OK;
}

xv_status xv_nlvr_set_read_files(const char *const *json_paths, int n_paths, const xv_fs_root *images,
                                 xv_nlvr_set *out) {
    memset(out, 0, sizeof *out);
    entries E;
    xv_status st = entries_read(json_paths, n_paths, &E);
    const int64_t n = st == XV_OK ? cJSON_GetArraySize(E.all) : 0;
    if (st == XV_OK && n == 0) st = xv_error(XV_ERR_FORMAT, "%s: no statements", json_paths[0]);
    if (st == XV_OK) {
        out->sentences = calloc((size_t)n, sizeof *out->sentences);
        out->label = calloc((size_t)n, sizeof *out->label);
        out->pair = calloc((size_t)n, sizeof *out->pair);
        out->image_paths = calloc((size_t)(2 * n), sizeof *out->image_paths);
        if (!out->sentences || !out->label || !out->pair || !out->image_paths)
            st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    xv_strindex seen = {0};
    int64_t i = 0;
    for (const cJSON *e = st == XV_OK ? E.all->child : NULL; e && st == XV_OK; e = e->next, i++) {
        const char *img[2] = {NULL, NULL}, *sentence = NULL;
        st = nlvr_entry(&E, e, i, img, &sentence, &out->label[i]);
        if (st == XV_OK && !(out->sentences[i] = strdup(sentence))) st = xv_error(XV_ERR_NOMEM, "out of memory");
        out->n = i + 1;
        for (int k = 0; k < 2 && st == XV_OK; k++) {
            char *path = NULL;
            st = image_path(&E, i, images, img[k], &path);
            if (st != XV_OK) break;
            int32_t at = xv_strindex_get(&seen, path);
            if (at < 0) {
                at = (int32_t)out->n_images;
                if (!xv_strindex_put(&seen, path, at)) at = -2;
                else out->image_paths[out->n_images++] = path, path = NULL;
            }
            free(path);
            if (at < 0) st = xv_error(XV_ERR_NOMEM, "out of memory");
            else out->pair[i][k] = at;
        }
    }
    xv_strindex_free(&seen);
    entries_free(&E);
    if (st != XV_OK) xv_nlvr_set_free(out);
    return st;
}
