/* A multipart/form-data request body (what an HTML form or `curl -F` sends):
 * its text fields as the JSON fields a JSON request would have, and the
 * uploaded image's bytes. */
#ifndef XV_SERVE_FORM_H
#define XV_SERVE_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

typedef struct {
    char *key, *value; /* values may arrive in pieces */
    size_t len;
} xv_form_field;

typedef struct {
    xv_form_field *fields;
    int n_fields;
    uint8_t *upload; /* the file field (or the field named "image"); NULL: none */
    size_t upload_len;
    int64_t max_upload;
    bool upload_too_big;
} xv_form;

/* Parse the whole body of the connection's request. Returns 0 with *fields
 * set ("texts" repeated becomes a list; other fields are strings), or an HTTP
 * status (400 malformed, 413 upload over max_upload, 503 out of memory). */
int xv_form_parse(struct MHD_Connection *c, const char *body, size_t len, int64_t max_upload, xv_form *f,
                  cJSON **fields);
void xv_form_free(xv_form *f);

#endif
