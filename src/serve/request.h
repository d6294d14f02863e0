/* A /v1/... request's fields -> a job (job.h): texts, the image (upload,
 * base64 or a path inside the image root), k and rerank, each checked
 * against the server's limits before anything large is allocated. */
#ifndef XV_SERVE_REQUEST_H
#define XV_SERVE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "job.h"

typedef struct {
    const char *image_root; /* NULL: "image" paths are refused */
    int64_t max_pixels;
    int64_t max_image_bytes;
    int max_text_bytes, max_texts;
} xv_request_limits;

/* What went wrong with a request: an HTTP status (400, 404, 413, 422) and why. */
typedef struct {
    int status;
    char message[512];
} xv_request_error;

/* Fill `job` (its kind set by the route; /v1/search picks SEARCH_IMAGE when
 * an image is given) from the JSON fields and, for a multipart request, the
 * uploaded image bytes. Returns 0, or the HTTP status with `err` filled. */
int xv_request_to_job(const cJSON *fields, const uint8_t *upload, size_t upload_len, const xv_request_limits *lim,
                      xv_job *job, xv_request_error *err);

#endif
