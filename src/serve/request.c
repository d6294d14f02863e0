/* Request fields -> job, with the limits checked first (request.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "data/base64.h"
#include "request.h"

__attribute__((format(printf, 3, 4))) static int refuse(xv_request_error *e, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->status = status;
    return status;
}

static int add_text(xv_job *job, const cJSON *item, const char *key, const xv_request_limits *lim,
                    xv_request_error *e) {
    if (!cJSON_IsString(item)) return refuse(e, 400, "\"%s\" must be a string (or a list of strings for \"texts\")", key);
    const char *s = item->valuestring;
    size_t len = strlen(s);
    if (len > (size_t)lim->max_text_bytes)
        return refuse(e, 413, "\"%s\": a text of %zu bytes is longer than the limit of %d", key, len,
                      lim->max_text_bytes);
    if (job->n_texts >= lim->max_texts)
        return refuse(e, 413, "more than %d texts in one request", lim->max_texts);
    char *copy = strdup(s);
    char **grown = copy ? realloc(job->texts, (size_t)(job->n_texts + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return refuse(e, 503, "out of memory");
    }
    job->texts = grown;
    job->texts[job->n_texts++] = copy;
    return 0;
}

static int read_texts(const cJSON *fields, xv_job *job, const xv_request_limits *lim, xv_request_error *e) {
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(fields, "text");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(fields, "texts");
    if (one && many) return refuse(e, 400, "give \"text\" or \"texts\", not both");
    if (one) return add_text(job, one, "text", lim, e);
    if (!many) return 0;
    if (!cJSON_IsArray(many)) return add_text(job, many, "texts", lim, e);
    const cJSON *it;
    cJSON_ArrayForEach(it, many) {
        int rc = add_text(job, it, "texts", lim, e);
        if (rc) return rc;
    }
    return 0;
}

static int read_int(const cJSON *fields, const char *key, int lo, int hi, int *out, xv_request_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, key);
    if (!v) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsString(v) ? strtod(v->valuestring, NULL) : -1e300;
    if (!(d >= lo && d <= hi) || d != (double)(int)d)
        return refuse(e, 400, "\"%s\" must be a whole number in [%d, %d]", key, lo, hi);
    *out = (int)d;
    return 0;
}

/* Decode encoded image bytes; the pixel count is checked from the header
 * before any pixel memory is allocated (data/image.h). */
static int decode(const uint8_t *bytes, size_t len, const char *name, const xv_request_limits *lim, xv_job *job,
                  xv_request_error *e) {
    if (xv_image_decode_capped(bytes, len, name, lim->max_pixels, &job->image) != XV_OK)
        return refuse(e, 422, "%s", xv_error_message());
    job->image_name = strdup(name);
    return job->image_name ? 0 : refuse(e, 503, "out of memory");
}

static int image_from_path(const char *name, const xv_request_limits *lim, xv_job *job, xv_request_error *e) {
    if (!lim->image_root) return refuse(e, 400, "\"image\" paths need the server started with --image-root");
    const xv_fs_root policy = {.root = lim->image_root, .allow_outside_root = false};
    char *path = NULL;
    xv_fs_name_verdict v = xv_fs_resolve(&policy, name, &path);
    /* The messages name the request's path only, not the server's folders. */
    if (v == XV_FS_NAME_OUTSIDE_ROOT) return refuse(e, 403, "\"image\": %s: outside the image root", name);
    if (v == XV_FS_NAME_ABSENT) return refuse(e, 404, "\"image\": %s: no such file under the image root", name);
    if (v != XV_FS_NAME_OK) return refuse(e, v == XV_FS_NAME_NOMEM ? 503 : 403, "\"image\": %s: not readable", name);
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = 0;
    xv_status st = xv_fs_read_file(path, lim->max_image_bytes, &bytes, &len);
    if (st == XV_ERR_NOMEM)
        rc = refuse(e, 413, "\"image\": %s: larger than the limit of %lld bytes", name, (long long)lim->max_image_bytes);
    else if (st != XV_OK)
        rc = refuse(e, 404, "\"image\": %s: not a readable file", name);
    else rc = decode(bytes, len, name, lim, job, e);
    free(bytes);
    free(path);
    return rc;
}

static int image_from_base64(const char *text, const xv_request_limits *lim, xv_job *job, xv_request_error *e) {
    /* A data: URL (what a browser's FileReader gives) carries the base64 after its comma. */
    if (!strncmp(text, "data:", 5) && strchr(text, ',')) text = strchr(text, ',') + 1;
    uint8_t *bytes = NULL;
    size_t len = 0;
    xv_status st = xv_base64_decode(text, strlen(text), (size_t)lim->max_image_bytes, "image_base64", &bytes, &len);
    if (st != XV_OK) return refuse(e, st == XV_ERR_NOMEM ? 413 : 400, "%s", xv_error_message());
    int rc = decode(bytes, len, "image_base64", lim, job, e);
    free(bytes);
    return rc;
}

static int read_image(const cJSON *fields, const uint8_t *upload, size_t upload_len, const xv_request_limits *lim,
                      xv_job *job, xv_request_error *e) {
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(fields, "image");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(fields, "image_base64");
    if ((path != NULL) + (b64 != NULL) + (upload != NULL) > 1)
        return refuse(e, 400, "give one image: \"image\" (a path), \"image_base64\" or an upload");
    if (upload) return decode(upload, upload_len, "upload", lim, job, e);
    if (path && !cJSON_IsString(path)) return refuse(e, 400, "\"image\" must be a string (a path under the image root)");
    if (b64 && !cJSON_IsString(b64)) return refuse(e, 400, "\"image_base64\" must be a string");
    if (path) return image_from_path(path->valuestring, lim, job, e);
    if (b64) return image_from_base64(b64->valuestring, lim, job, e);
    return 0;
}

int xv_request_to_job(const cJSON *fields, const uint8_t *upload, size_t upload_len, const xv_request_limits *lim,
                      xv_job *job, xv_request_error *e) {
    if (!cJSON_IsObject(fields)) return refuse(e, 400, "the body must be a JSON object");
    job->k = 10;
    job->rerank = 16;
    int rc = read_texts(fields, job, lim, e);
    if (!rc) rc = read_int(fields, "k", 1, 1000, &job->k, e);
    if (!rc) rc = read_int(fields, "rerank", 0, 1000, &job->rerank, e);
    if (!rc) rc = read_image(fields, upload, upload_len, lim, job, e);
    if (rc) return rc;
    const bool has_image = job->image.rgb != NULL;
    switch (job->kind) {
    case XV_JOB_EMBED:
        if (!has_image && job->n_texts == 0) return refuse(e, 400, "give texts (\"text\"/\"texts\") and/or an image");
        return 0;
    case XV_JOB_SEARCH_TEXT:
    case XV_JOB_SEARCH_IMAGE:
        if (has_image) {
            job->kind = XV_JOB_SEARCH_IMAGE;
            if (job->n_texts == 0) return refuse(e, 400, "an image query needs the texts to rank (\"texts\")");
        } else if (job->n_texts != 1) {
            return refuse(e, 400, "a text query is one \"text\" (or give an image and the \"texts\" to rank)");
        }
        return 0;
    case XV_JOB_MATCH:
    case XV_JOB_GROUND:
        if (!has_image) return refuse(e, 400, "give an image: \"image\" (a path), \"image_base64\" or an upload");
        if (job->n_texts == 0) return refuse(e, 400, "give \"text\" or \"texts\"");
        return 0;
    default:
        return refuse(e, 500, "unknown request kind");
    }
}
