#include "tasks/refer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "io/unpickle.h"
#include "tasks/eval_data.h"

const char *xv_refer_split_name(xv_refer_split s) {
    static const char *const names[] = {"other", "train", "val", "testA", "testB"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "other";
}

static xv_refer_split split_of(const char *s) {
    if (!strcmp(s, "train")) return XV_REFER_TRAIN;
    if (!strcmp(s, "val")) return XV_REFER_VAL;
    if (!strcmp(s, "testA")) return XV_REFER_TESTA;
    if (!strcmp(s, "testB")) return XV_REFER_TESTB;
    return XV_REFER_OTHER;
}

/* An (id, entry) table searched by id. */
typedef struct {
    int64_t id;
    const cJSON *e;
} id_at;

static int cmp_id_at(const void *a, const void *b) {
    int64_t x = ((const id_at *)a)->id, y = ((const id_at *)b)->id;
    return (x > y) - (x < y);
}

static const id_at *find_id(const id_at *t, int64_t n, int64_t id) {
    id_at key = {id, NULL};
    return n > 0 ? bsearch(&key, t, (size_t)n, sizeof *t, cmp_id_at) : NULL;
}

static int cmp_ref(const void *a, const void *b) {
    int64_t x = ((const xv_refer_ref *)a)->ref_id, y = ((const xv_refer_ref *)b)->ref_id;
    return (x > y) - (x < y);
}

static bool json_int(const cJSON *o, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15) return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

/* [x, y, w, h, ...] with finite numbers: the first four. */
static bool json_box(const cJSON *b, double box[4]) {
    int k = 0;
    for (const cJSON *v = cJSON_IsArray(b) ? b->child : NULL; v && k < 4; v = v->next, k++) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return false;
        box[k] = v->valuedouble;
    }
    return k == 4;
}

static xv_status read_json(const char *path, cJSON **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(path, XV_EVAL_MAX_FILE_BYTES, &buf, &len));
    *out = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    return *out ? XV_OK : xv_error(XV_ERR_FORMAT, "%s: not valid JSON", path);
}

/* instances.json: images id -> (width, height), annotations id -> bbox. */
typedef struct {
    cJSON *root;
    id_at *img, *ann;
    int64_t n_img, n_ann;
} instances;

static void instances_free(instances *c) {
    cJSON_Delete(c->root);
    free(c->img);
    free(c->ann);
}

static xv_status index_list(const char *path, const cJSON *list, const char *key, id_at **out, int64_t *n) {
    if (!cJSON_IsArray(list)) return xv_error(XV_ERR_FORMAT, "%s: \"%s\" must be a list", path, key);
    *n = cJSON_GetArraySize(list);
    *out = malloc(sizeof **out * (size_t)(*n > 0 ? *n : 1));
    if (!*out) return xv_error(XV_ERR_NOMEM, "out of memory");
    int64_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        (*out)[i].e = e;
        if (!cJSON_IsObject(e) || !json_int(e, "id", &(*out)[i].id))
            return xv_error(XV_ERR_FORMAT, "%s: %s[%lld]: expected an object with an integer \"id\"", path, key,
                            (long long)i);
    }
    qsort(*out, (size_t)*n, sizeof **out, cmp_id_at);
    return XV_OK;
}

static xv_status instances_read(const char *path, instances *c) {
    memset(c, 0, sizeof *c);
    XV_TRY(read_json(path, &c->root));
    if (!cJSON_IsObject(c->root)) return xv_error(XV_ERR_FORMAT, "%s: expected a COCO object", path);
    XV_TRY(index_list(path, cJSON_GetObjectItemCaseSensitive(c->root, "images"), "images", &c->img, &c->n_img));
    return index_list(path, cJSON_GetObjectItemCaseSensitive(c->root, "annotations"), "annotations", &c->ann,
                      &c->n_ann);
}

static const cJSON *instances_get(const id_at *t, int64_t n, int64_t id) {
    const id_at *hit = find_id(t, n, id);
    return hit ? hit->e : NULL;
}

static bool pv_int(const xv_pvalue *d, const char *key, int64_t *out) {
    const xv_pvalue *v = xv_pdict_get(d, key);
    if (!v || v->kind != XV_PV_INT) return false;
    *out = v->u.i;
    return true;
}

/* One ref of the pickle, completed from instances.json. */
static xv_status read_ref(const char *refs_path, const char *inst_path, const instances *c, const xv_pvalue *d,
                          int64_t i, xv_refer_ref *r) {
    if (d->kind != XV_PV_DICT)
        return xv_error(XV_ERR_FORMAT, "%s: ref %lld: expected a dict, found a %s", refs_path, (long long)i,
                        xv_pv_kind_name(d->kind));
    static const char *const keys[] = {"ref_id", "ann_id", "image_id"};
    int64_t *dst[] = {&r->ref_id, &r->ann_id, &r->image_id};
    for (int k = 0; k < 3; k++)
        if (!pv_int(d, keys[k], dst[k]))
            return xv_error(XV_ERR_FORMAT, "%s: ref %lld: no integer \"%s\"", refs_path, (long long)i, keys[k]);
    const xv_pvalue *split = xv_pdict_get(d, "split");
    if (!split || split->kind != XV_PV_STR)
        return xv_error(XV_ERR_FORMAT, "%s: ref %lld (ref_id %lld): no string \"split\"", refs_path, (long long)i,
                        (long long)r->ref_id);
    r->split = split_of(split->u.str.s);
    const cJSON *ann = instances_get(c->ann, c->n_ann, r->ann_id);
    if (!ann)
        return xv_error(XV_ERR_MISSING, "%s: ref_id %lld: ann_id %lld is not among the annotations of %s", refs_path,
                        (long long)r->ref_id, (long long)r->ann_id, inst_path);
    if (!json_box(cJSON_GetObjectItemCaseSensitive(ann, "bbox"), r->bbox))
        return xv_error(XV_ERR_FORMAT, "%s: annotation %lld: \"bbox\" must be [x, y, w, h]", inst_path,
                        (long long)r->ann_id);
    const cJSON *img = instances_get(c->img, c->n_img, r->image_id);
    int64_t w = 0, h = 0;
    if (!img)
        return xv_error(XV_ERR_MISSING, "%s: ref_id %lld: image_id %lld is not among the images of %s", refs_path,
                        (long long)r->ref_id, (long long)r->image_id, inst_path);
    if (!json_int(img, "width", &w) || !json_int(img, "height", &h) || w < 1 || h < 1 || w > 1000000 || h > 1000000)
        return xv_error(XV_ERR_FORMAT, "%s: image %lld: \"width\" and \"height\" must be positive integers", inst_path,
                        (long long)r->image_id);
    r->width = (int)w, r->height = (int)h;
    return XV_OK;
}

void xv_refer_free(xv_refer *r) {
    if (!r) return;
    free(r->refs);
    free(r->refs_path);
    memset(r, 0, sizeof *r);
}

xv_status xv_refer_read(const char *refs_path, const char *instances_path, xv_refer *out) {
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(refs_path, XV_EVAL_MAX_FILE_BYTES, &buf, &len));
    xv_unpickled *u = NULL;
    xv_status st = xv_unpickle_plain(buf, len, refs_path, NULL, &u);
    free(buf);
    XV_TRY(st);
    const xv_pvalue *list = xv_unpickled_root(u);
    instances c = {0};
    if (list->kind != XV_PV_LIST)
        st = xv_error(XV_ERR_FORMAT, "%s: expected a list of refs, found a %s", refs_path,
                      xv_pv_kind_name(list->kind));
    if (st == XV_OK) st = instances_read(instances_path, &c);
    const size_t n = st == XV_OK ? list->u.seq.n : 0;
    if (st == XV_OK && !(out->refs = malloc(sizeof *out->refs * (n > 0 ? n : 1))))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK && !(out->refs_path = strdup(refs_path))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == XV_OK; i++)
        if ((st = read_ref(refs_path, instances_path, &c, list->u.seq.items[i], (int64_t)i, &out->refs[i])) == XV_OK)
            out->n = (int64_t)i + 1;
    instances_free(&c);
    xv_unpickled_free(u);
    if (st == XV_OK) qsort(out->refs, (size_t)out->n, sizeof *out->refs, cmp_ref);
    /* Python's dict keeps the last ref of a repeated ref_id; a repeat is refused instead. */
    for (int64_t i = 1; i < out->n && st == XV_OK; i++)
        if (out->refs[i].ref_id == out->refs[i - 1].ref_id)
            st = xv_error(XV_ERR_FORMAT, "%s: ref_id %lld appears twice", refs_path, (long long)out->refs[i].ref_id);
    if (st != XV_OK) xv_refer_free(out);
    return st;
}

xv_status xv_refer_load(const char *data_root, const char *dataset, const char *split_by, xv_refer *out) {
    memset(out, 0, sizeof *out);
    char name[256];
    snprintf(name, sizeof name, "refs(%s).p", split_by);
    char *dir = xv_fs_join(data_root, dataset);
    char *refs = dir ? xv_fs_join(dir, name) : NULL, *inst = dir ? xv_fs_join(dir, "instances.json") : NULL;
    xv_status st = refs && inst ? xv_refer_read(refs, inst, out) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(dir), free(refs), free(inst);
    return st;
}

const xv_refer_ref *xv_refer_find(const xv_refer *r, int64_t ref_id) {
    xv_refer_ref key = {.ref_id = ref_id};
    return r && r->n > 0 ? bsearch(&key, r->refs, (size_t)r->n, sizeof *r->refs, cmp_ref) : NULL;
}

/* ---- det_file ---- */

static int cmp_dets(const void *a, const void *b) {
    int64_t x = ((const xv_dets_image *)a)->image_id, y = ((const xv_dets_image *)b)->image_id;
    return (x > y) - (x < y);
}

void xv_dets_free(xv_dets *d) {
    if (!d) return;
    for (int64_t i = 0; d->images && i < d->n; i++) free(d->images[i].box);
    free(d->images);
    memset(d, 0, sizeof *d);
}

static xv_status read_image_dets(const char *path, const cJSON *e, xv_dets_image *im) {
    char *end = NULL;
    long long id = strtoll(e->string, &end, 10);
    if (!e->string[0] || *end)
        return xv_error(XV_ERR_FORMAT, "%s: key \"%s\" is not an image id", path, e->string);
    im->image_id = id;
    if (!cJSON_IsArray(e)) return xv_error(XV_ERR_FORMAT, "%s: \"%s\": expected a list of boxes", path, e->string);
    const int64_t n = cJSON_GetArraySize(e);
    im->box = malloc(sizeof *im->box * (size_t)(n > 0 ? n : 1));
    if (!im->box) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (const cJSON *b = e->child; b; b = b->next, im->n++)
        if (!json_box(b, im->box[im->n]))
            return xv_error(XV_ERR_FORMAT, "%s: \"%s\"[%lld]: expected [x, y, w, h, ...] numbers", path, e->string,
                            (long long)im->n);
    return XV_OK;
}

xv_status xv_dets_read(const char *path, xv_dets *out) {
    memset(out, 0, sizeof *out);
    cJSON *root;
    XV_TRY(read_json(path, &root));
    xv_status st = cJSON_IsObject(root) ? XV_OK
                                        : xv_error(XV_ERR_FORMAT, "%s: expected {\"<image_id>\": [boxes], ...}", path);
    const int64_t n = st == XV_OK ? cJSON_GetArraySize(root) : 0;
    if (st == XV_OK && !(out->images = calloc((size_t)(n > 0 ? n : 1), sizeof *out->images)))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    for (const cJSON *e = st == XV_OK ? root->child : NULL; e && st == XV_OK; e = e->next)
        st = read_image_dets(path, e, &out->images[out->n++]);
    cJSON_Delete(root);
    if (st == XV_OK) qsort(out->images, (size_t)out->n, sizeof *out->images, cmp_dets);
    for (int64_t i = 1; i < out->n && st == XV_OK; i++)
        if (out->images[i].image_id == out->images[i - 1].image_id)
            st = xv_error(XV_ERR_FORMAT, "%s: image %lld appears twice", path, (long long)out->images[i].image_id);
    if (st != XV_OK) xv_dets_free(out);
    return st;
}

const xv_dets_image *xv_dets_find(const xv_dets *d, int64_t image_id) {
    xv_dets_image key = {.image_id = image_id};
    return d && d->n > 0 ? bsearch(&key, d->images, (size_t)d->n, sizeof *d->images, cmp_dets) : NULL;
}
