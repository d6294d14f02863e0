/* The official task YAML (e.g. Pretrain_XVLM_base_4m.yaml, Retrieval_coco.yaml):
 * only the top-level scalars that shape the model are read; everything else
 * (data paths, optimiser settings) belongs to other modules. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"
#include "model/config.h"

#define MAX_KEYS 256

typedef struct {
    char *key[MAX_KEYS];
    char *val[MAX_KEYS];
    int line[MAX_KEYS];
    int n;
} scalars;

static void scalars_free(scalars *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->key[i]);
        free(s->val[i]);
    }
    s->n = 0;
}

static const char *lookup(const scalars *s, const char *key, int *line) {
    for (int i = s->n - 1; i >= 0; i--) /* YAML: a repeated key keeps the last value */
        if (!strcmp(s->key[i], key)) {
            if (line) *line = s->line[i];
            return s->val[i];
        }
    return NULL;
}

/* Walk the event stream; remember `key: scalar` pairs of the top-level mapping
 * and skip nested collections. */
static xv_status read_top_scalars(const char *path, scalars *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return xv_error(XV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return xv_error(XV_ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    }
    yaml_parser_set_input_file(&p, f);
    xv_status st = XV_OK;
    int depth = 0;           /* collection nesting; 1 = inside the top mapping */
    char *pending_key = NULL; /* a top-level key waiting for its value */
    int pending_line = 0;
    bool done = false;
    while (!done && st == XV_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            st = xv_error(XV_ERR_FORMAT, "%s:%zu: YAML error: %s", path, p.problem_mark.line + 1,
                          p.problem ? p.problem : "unknown");
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == 0 && ev.type == YAML_SEQUENCE_START_EVENT)
                st = xv_error(XV_ERR_FORMAT, "%s:%d: expected a mapping at the top level", path, line);
            if (depth == 1 && pending_key) { /* a nested value: not a model setting */
                free(pending_key);
                pending_key = NULL;
            }
            if (++depth > 64) st = xv_error(XV_ERR_FORMAT, "%s:%d: nesting deeper than 64", path, line);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            if (depth != 1) break;
            if (!pending_key) {
                pending_key = strdup((const char *)ev.data.scalar.value);
                pending_line = line;
                if (!pending_key) st = xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
            } else {
                if (out->n == MAX_KEYS) {
                    st = xv_error(XV_ERR_FORMAT, "%s: more than %d top-level keys", path, MAX_KEYS);
                    break;
                }
                out->key[out->n] = pending_key;
                out->val[out->n] = strdup((const char *)ev.data.scalar.value);
                out->line[out->n] = pending_line;
                pending_key = NULL;
                if (!out->val[out->n]) {
                    free(out->key[out->n]);
                    st = xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
                    break;
                }
                out->n++;
            }
            break;
        case YAML_ALIAS_EVENT:
            if (depth == 1 && pending_key) {
                free(pending_key);
                pending_key = NULL;
            }
            break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
            done = true; /* only the first document */
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    free(pending_key);
    yaml_parser_delete(&p);
    fclose(f);
    return st;
}

static xv_status yaml_bool(const scalars *s, const char *path, const char *key, bool *out, bool *present) {
    int line = 0;
    const char *v = lookup(s, key, &line);
    *present = v != NULL;
    if (!v) return XV_OK;
    const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (!strcmp(v, t[i])) return (*out = true), XV_OK;
        if (!strcmp(v, f[i])) return (*out = false), XV_OK;
    }
    return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be true or false (got \"%s\")", path, line, key, v);
}

static xv_status yaml_int(const scalars *s, const char *path, const char *key, bool required, int *out) {
    int line = 0;
    const char *v = lookup(s, key, &line);
    if (!v) {
        if (required) return xv_error(XV_ERR_MISSING, "%s: key \"%s\" is missing (an integer)", path, key);
        return XV_OK;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < INT_MIN || x > INT_MAX)
        return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be an integer (got \"%s\")", path, line, key, v);
    *out = (int)x;
    return XV_OK;
}

static xv_status yaml_float(const scalars *s, const char *path, const char *key, float *out) {
    int line = 0;
    const char *v = lookup(s, key, &line);
    if (!v) return XV_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end)
        return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be a number (got \"%s\")", path, line, key, v);
    *out = (float)x;
    return XV_OK;
}

static bool file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Official configs name files relative to the repository root (where run.py
 * starts): try the YAML's folder, its parent, then the working directory. */
static xv_status resolve(const char *yaml_path, const char *rel, char *out, size_t n) {
    char dir[4096];
    int k = snprintf(dir, sizeof dir, "%s", yaml_path);
    if (k < 0 || (size_t)k >= sizeof dir || strlen(rel) >= n - sizeof dir - 8)
        return xv_error(XV_ERR_INVALID_ARG, "%s: path too long", yaml_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    const char *fmt[3] = {"%s/%s", "%s/../%s", "%s%s"};
    for (int i = 0; i < 3; i++) {
        if (rel[0] == '/' && i < 2) continue; /* absolute: only as given */
        k = snprintf(out, n, fmt[i], i < 2 ? dir : "", rel);
        if (k >= 0 && (size_t)k < n && file_exists(out)) return XV_OK;
    }
    return xv_error(XV_ERR_IO, "%s: %s not found next to the YAML, in its parent folder or the working directory",
                    yaml_path, rel);
}

xv_status xv_config_load_yaml(const char *path, xv_model_config *out) {
    scalars s = {0};
    xv_status st = read_top_scalars(path, &s);
    xv_model_config c;
    xv_config_defaults(&c);
    bool flag, present;
    if (st == XV_OK) st = yaml_bool(&s, path, "use_clip_vit", &flag, &present);
    if (st == XV_OK && present && flag)
        st = xv_error(XV_ERR_UNSUPPORTED, "%s: use_clip_vit: only the Swin vision encoder is implemented", path);
    if (st == XV_OK) st = yaml_bool(&s, path, "use_swin", &flag, &present);
    if (st == XV_OK && (!present || !flag))
        st = xv_error(XV_ERR_UNSUPPORTED, "%s: use_swin must be true (the DeiT/CLIP encoders are not implemented)",
                      path);
    if (st == XV_OK) st = yaml_bool(&s, path, "use_roberta", &flag, &present);
    if (st == XV_OK && present && flag)
        st = xv_error(XV_ERR_UNSUPPORTED, "%s: use_roberta: only the BERT text encoder is implemented", path);
    char vpath[8192], tpath[8192];
    const char *vrel = lookup(&s, "vision_config", NULL), *trel = lookup(&s, "text_config", NULL);
    if (st == XV_OK && (!vrel || !trel))
        st = xv_error(XV_ERR_MISSING, "%s: key \"%s\" is missing", path, vrel ? "text_config" : "vision_config");
    if (st == XV_OK) st = resolve(path, vrel, vpath, sizeof vpath);
    if (st == XV_OK) st = resolve(path, trel, tpath, sizeof tpath);
    if (st == XV_OK) st = xv_config_load_swin_json(vpath, &c.vision);
    if (st == XV_OK) st = xv_config_load_bert_json(tpath, &c.text);
    int image_res = 0;
    if (st == XV_OK) st = yaml_int(&s, path, "image_res", true, &image_res);
    if (st == XV_OK && image_res != c.vision.image_res)
        st = xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d differs from %d in %s", path, image_res,
                      c.vision.image_res, vpath);
    if (st == XV_OK) st = yaml_int(&s, path, "patch_size", true, &c.vision.region_stride);
    if (st == XV_OK) st = yaml_int(&s, path, "embed_dim", false, &c.embed_dim);
    if (st == XV_OK) st = yaml_float(&s, path, "temp", &c.temp);
    scalars_free(&s);
    if (st != XV_OK) return st;
    c.text.encoder_width = c.vision.vision_width; /* as the official builder does */
    st = xv_config_validate(&c);
    if (st != XV_OK) return xv_error_wrap(st, "%s", path);
    *out = c;
    return XV_OK;
}
