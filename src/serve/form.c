/* multipart/form-data bodies through libmicrohttpd's post processor (form.h). */
#include <stdlib.h>
#include <string.h>

#include "form.h"

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *content_type, const char *encoding, const char *data, uint64_t off,
                                size_t size) {
    xv_form *f = cls;
    if (filename || !strcmp(key, "image")) {
        if (f->upload_len + size > (uint64_t)f->max_upload) {
            f->upload_too_big = true;
            return MHD_NO;
        }
        uint8_t *grown = realloc(f->upload, f->upload_len + size + 1);
        if (!grown) return MHD_NO;
        f->upload = grown;
        memcpy(f->upload + f->upload_len, data, size);
        f->upload_len += size;
        return MHD_YES;
    }
    xv_form_field *last = f->n_fields ? &f->fields[f->n_fields - 1] : NULL;
    if (off == 0 || !last || strcmp(last->key, key)) { /* a new field */
        xv_form_field *grown = realloc(f->fields, (size_t)(f->n_fields + 1) * sizeof *grown);
        if (!grown) return MHD_NO;
        f->fields = grown;
        last = &f->fields[f->n_fields++];
        *last = (xv_form_field){.key = strdup(key)};
        if (!last->key) return MHD_NO;
    }
    char *v = realloc(last->value, last->len + size + 1);
    if (!v) return MHD_NO;
    memcpy(v + last->len, data, size);
    last->value = v;
    last->len += size;
    v[last->len] = 0;
    return MHD_YES;
}

static cJSON *to_json(const xv_form *f) {
    cJSON *o = cJSON_CreateObject(), *texts = NULL;
    for (int i = 0; i < f->n_fields && o; i++) {
        const xv_form_field *x = &f->fields[i];
        const char *v = x->value ? x->value : "";
        if (!strcmp(x->key, "texts")) {
            if (!texts) texts = cJSON_AddArrayToObject(o, "texts");
            cJSON_AddItemToArray(texts, cJSON_CreateString(v));
        } else if (!cJSON_GetObjectItemCaseSensitive(o, x->key)) {
            cJSON_AddStringToObject(o, x->key, v);
        }
    }
    return o;
}

int xv_form_parse(struct MHD_Connection *c, const char *body, size_t len, int64_t max_upload, xv_form *f,
                  cJSON **fields) {
    *f = (xv_form){.max_upload = max_upload};
    *fields = NULL;
    struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 64 * 1024, on_field, f);
    enum MHD_Result ok = pp ? MHD_post_process(pp, body, len) : MHD_NO;
    if (pp) MHD_destroy_post_processor(pp);
    if (ok != MHD_YES) return f->upload_too_big ? 413 : 400;
    *fields = to_json(f);
    return *fields ? 0 : 503;
}

void xv_form_free(xv_form *f) {
    for (int i = 0; i < f->n_fields; i++) free(f->fields[i].key), free(f->fields[i].value);
    free(f->fields);
    free(f->upload);
    *f = (xv_form){0};
}
