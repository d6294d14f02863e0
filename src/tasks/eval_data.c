#include "tasks/eval_data.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/strindex.h"

/* The whole file parsed as a JSON array. */
static xv_status read_array(const char *path, cJSON **out) {
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(path, XV_EVAL_MAX_FILE_BYTES, &buf, &len));
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!root) return xv_error(XV_ERR_FORMAT, "%s: not valid JSON", path);
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return xv_error(XV_ERR_FORMAT, "%s: expected a JSON array of entries", path);
    }
    *out = root;
    return XV_OK;
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

xv_status xv_retrieval_set_read(const char *json_path, const char *image_root, xv_retrieval_set *out) {
    memset(out, 0, sizeof *out);
    cJSON *root;
    XV_TRY(read_array(json_path, &root));
    int64_t n_img = cJSON_GetArraySize(root), n_txt = 0;
    xv_status st = XV_OK;
    /* First pass: validate and count the texts. */
    int64_t i = 0;
    for (const cJSON *e = root->child; e && st == XV_OK; e = e->next, i++) {
        if (!cJSON_IsObject(e) || !get_string(e, "image")) {
            st = xv_error(XV_ERR_FORMAT, "%s: entry %lld: expected an object with a string \"image\"", json_path,
                          (long long)i);
            break;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "caption");
        if (cJSON_IsString(c)) {
            n_txt++;
        } else if (cJSON_IsArray(c)) {
            for (const cJSON *t = c->child; t; t = t->next) {
                if (!cJSON_IsString(t)) {
                    st = xv_error(XV_ERR_FORMAT, "%s: entry %lld: \"caption\" holds a non-string", json_path,
                                  (long long)i);
                    break;
                }
                n_txt++;
            }
        } else {
            st = xv_error(XV_ERR_FORMAT, "%s: entry %lld: \"caption\" must be a string or a list of strings",
                          json_path, (long long)i);
        }
    }
    if (st == XV_OK && (n_img == 0 || n_txt == 0))
        st = xv_error(XV_ERR_FORMAT, "%s: no images or no captions (%lld images, %lld captions)", json_path,
                      (long long)n_img, (long long)n_txt);
    if (st == XV_OK) {
        out->image_paths = calloc((size_t)n_img, sizeof *out->image_paths);
        out->texts = calloc((size_t)n_txt, sizeof *out->texts);
        out->txt2img = calloc((size_t)n_txt, sizeof *out->txt2img);
        if (!out->image_paths || !out->texts || !out->txt2img) st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    i = 0;
    for (const cJSON *e = root->child; e && st == XV_OK; e = e->next, i++) {
        out->image_paths[i] = xv_fs_join(image_root, get_string(e, "image"));
        out->n_images = i + 1;
        if (!out->image_paths[i]) st = xv_error(XV_ERR_NOMEM, "out of memory");
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
    cJSON_Delete(root);
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
    free(s->image_paths);
    memset(s, 0, sizeof *s);
}

static xv_status read_box(const cJSON *e, const char *path, int64_t i, double box[4]) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "bbox");
    int k = 0;
    for (const cJSON *v = cJSON_IsArray(b) ? b->child : NULL; v && k < 5; v = v->next, k++)
        if (k < 4) box[k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (k != 4 || !isfinite(box[0]) || !isfinite(box[1]) || !isfinite(box[2]) || !isfinite(box[3]) || box[2] <= 0 ||
        box[3] <= 0)
        return xv_error(XV_ERR_FORMAT, "%s: entry %lld: \"bbox\" must be [x, y, w, h] with w, h > 0", path,
                        (long long)i);
    return XV_OK;
}

static int read_dim(const cJSON *e, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1e6)) return 0;
    return (int)v->valuedouble;
}

xv_status xv_grounding_set_read(const char *json_path, const char *image_root, xv_grounding_set *out) {
    memset(out, 0, sizeof *out);
    cJSON *root;
    XV_TRY(read_array(json_path, &root));
    int64_t n = cJSON_GetArraySize(root);
    xv_status st = n > 0 ? XV_OK : xv_error(XV_ERR_FORMAT, "%s: no entries", json_path);
    if (n > INT32_MAX) st = xv_error(XV_ERR_FORMAT, "%s: more than 2^31 entries", json_path);
    xv_strindex seen = {0};
    if (st == XV_OK) {
        out->texts = calloc((size_t)n, sizeof *out->texts);
        out->image = calloc((size_t)n, sizeof *out->image);
        out->bbox = calloc((size_t)n, sizeof *out->bbox);
        out->size = calloc((size_t)n, sizeof *out->size);
        out->image_paths = calloc((size_t)n, sizeof *out->image_paths);
        if (!out->texts || !out->image || !out->bbox || !out->size || !out->image_paths)
            st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    for (const cJSON *e = root->child; e && st == XV_OK; e = e->next, i++) {
        const char *image = cJSON_IsObject(e) ? get_string(e, "image") : NULL;
        const char *text = image ? get_string(e, "text") : NULL;
        if (!text) {
            st = xv_error(XV_ERR_FORMAT, "%s: entry %lld: expected an object with strings \"image\" and \"text\"",
                          json_path, (long long)i);
            break;
        }
        st = read_box(e, json_path, i, out->bbox[i]);
        if (st != XV_OK) break;
        out->size[i][0] = read_dim(e, "width");
        out->size[i][1] = read_dim(e, "height");
        out->texts[i] = strdup(text);
        out->n = i + 1;
        if (!out->texts[i]) {
            st = xv_error(XV_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t k = xv_strindex_get(&seen, image);
        if (k < 0) {
            k = out->n_images;
            out->image_paths[k] = xv_fs_join(image_root, image);
            if (!out->image_paths[k] || !xv_strindex_put(&seen, image, (int32_t)k)) {
                free(out->image_paths[k]);
                st = xv_error(XV_ERR_NOMEM, "out of memory");
                break;
            }
            out->n_images = k + 1;
        }
        out->image[i] = k;
    }
    xv_strindex_free(&seen);
    cJSON_Delete(root);
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
