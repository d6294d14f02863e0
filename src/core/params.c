#include "core/params.h"

#include <stdlib.h>
#include <string.h>

void xv_params_init(xv_params *p) { memset(p, 0, sizeof *p); }

void xv_params_free(xv_params *p) {
    for (int i = 0; i < p->n; i++) {
        xv_tensor *t = p->items[i];
        if (p->owns_data[i]) free(t->data);
        free(t->grad);
        free(t->bf16);
        free((char *)t->name);
        free(t);
    }
    for (int i = 0; i < p->n_alias; i++) free(p->alias_names[i]);
    free(p->items);
    free(p->owns_data);
    free(p->alias_names);
    free(p->alias_targets);
    memset(p, 0, sizeof *p);
}

xv_tensor *xv_params_find(const xv_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i]->name, name) == 0) return p->items[i];
    for (int i = 0; i < p->n_alias; i++)
        if (strcmp(p->alias_names[i], name) == 0) return p->alias_targets[i];
    return NULL;
}

xv_tensor *xv_params_add(xv_params *p, const char *name, const int64_t *shape, int ndim) {
    if (xv_params_find(p, name)) {
        xv_error(XV_ERR_INVALID_ARG, "parameter %s defined twice", name);
        return NULL;
    }
    if (ndim < 0 || ndim > XV_MAX_DIMS) {
        xv_error(XV_ERR_SHAPE, "parameter %s: rank %d unsupported", name, ndim);
        return NULL;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        xv_tensor **items = realloc(p->items, sizeof *items * (size_t)cap);
        if (!items) goto oom;
        p->items = items;
        bool *owns = realloc(p->owns_data, sizeof *owns * (size_t)cap);
        if (!owns) goto oom;
        p->owns_data = owns;
        p->cap = cap;
    }
    xv_tensor *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->dtype = XV_F32;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = xv_shape_numel(shape, ndim);
    t->data = calloc((size_t)(t->numel ? t->numel : 1), sizeof(float));
    t->name = strdup(name);
    if (!t->data || !t->name) {
        free(t->data);
        free((char *)t->name);
        free(t);
        goto oom;
    }
    t->persistent = true;
    t->requires_grad = true;
    p->items[p->n] = t;
    p->owns_data[p->n] = true;
    p->n++;
    return t;
oom:
    xv_error(XV_ERR_NOMEM, "out of memory creating parameter %s", name);
    return NULL;
}

xv_status xv_params_alias(xv_params *p, const char *alias, xv_tensor *target) {
    if (xv_params_find(p, alias)) return xv_error(XV_ERR_INVALID_ARG, "parameter %s defined twice", alias);
    if (p->n_alias == p->cap_alias) {
        int cap = p->cap_alias ? p->cap_alias * 2 : 8;
        char **names = realloc(p->alias_names, sizeof *names * (size_t)cap);
        if (!names) return xv_error(XV_ERR_NOMEM, "out of memory");
        p->alias_names = names;
        xv_tensor **tg = realloc(p->alias_targets, sizeof *tg * (size_t)cap);
        if (!tg) return xv_error(XV_ERR_NOMEM, "out of memory");
        p->alias_targets = tg;
        p->cap_alias = cap;
    }
    p->alias_names[p->n_alias] = strdup(alias);
    if (!p->alias_names[p->n_alias]) return xv_error(XV_ERR_NOMEM, "out of memory");
    p->alias_targets[p->n_alias++] = target;
    return XV_OK;
}

int64_t xv_params_count(const xv_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) n += p->items[i]->numel;
    return n;
}

void xv_params_zero_grad(xv_params *p) {
    for (int i = 0; i < p->n; i++)
        if (p->items[i]->grad) memset(p->items[i]->grad, 0, sizeof(float) * (size_t)p->items[i]->numel);
}

void xv_params_set_requires_grad(xv_params *p, bool on) {
    for (int i = 0; i < p->n; i++) p->items[i]->requires_grad = on;
}
