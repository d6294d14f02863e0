/* The typed getters of yaml_tree.h: every config key is read through these, so
 * every config error names the file, the line, the key and what was expected. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/yaml_tree.h"

xv_status xv_yaml_type_error(const xv_yaml_node *n, const char *want) {
    const bool scalar = n->text != NULL;
    return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be %s (got %s%s%s%s)", n->file, n->line, n->name, want,
                    xv_yaml_kind_name(n->kind), scalar ? " \"" : "", scalar ? n->text : "", scalar ? "\"" : "");
}

xv_status xv_yaml_get_bool(const xv_yaml_node *map, const char *key, bool *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_BOOL) return xv_yaml_type_error(n, "true or false");
    *out = n->b;
    return XV_OK;
}

xv_status xv_yaml_get_int64(const xv_yaml_node *map, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT) return xv_yaml_type_error(n, "an integer");
    if (n->i < lo || n->i > hi)
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = %lld outside [%lld, %lld]", n->file, n->line, n->name,
                        (long long)n->i, (long long)lo, (long long)hi);
    *out = n->i;
    return XV_OK;
}

xv_status xv_yaml_get_int(const xv_yaml_node *map, const char *key, int lo, int hi, int *out) {
    int64_t v = *out;
    XV_TRY(xv_yaml_get_int64(map, key, lo, hi, &v));
    *out = (int)v;
    return XV_OK;
}

xv_status xv_yaml_get_double(const xv_yaml_node *map, const char *key, double lo, double hi, double *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT && n->kind != XV_YAML_FLOAT) return xv_yaml_type_error(n, "a number");
    if (!(n->f >= lo && n->f <= hi))
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = %g outside [%g, %g]", n->file, n->line, n->name, n->f, lo,
                        hi);
    *out = n->f;
    return XV_OK;
}

xv_status xv_yaml_get_string(const xv_yaml_node *map, const char *key, const char **out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_STRING) return xv_yaml_type_error(n, "a string");
    *out = n->text;
    return XV_OK;
}

xv_status xv_yaml_get_strings(const xv_yaml_node *map, const char *key, const char ***out, int *n_out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_SEQ && n->kind != XV_YAML_STRING) return xv_yaml_type_error(n, "a list of strings");
    const int k = n->kind == XV_YAML_SEQ ? n->n : 1;
    for (int i = 0; i < k; i++)
        if (n->kind == XV_YAML_SEQ && n->items[i]->kind != XV_YAML_STRING)
            return xv_yaml_type_error(n->items[i], "a string");
    const char **v = calloc((size_t)k + 1, sizeof *v);
    if (!v) return xv_error(XV_ERR_NOMEM, "%s: out of memory", n->file);
    for (int i = 0; i < k; i++) v[i] = n->kind == XV_YAML_SEQ ? n->items[i]->text : n->text;
    *out = v, *n_out = k;
    return XV_OK;
}

xv_status xv_yaml_get_map(const xv_yaml_node *map, const char *key, const xv_yaml_node **out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (n && n->kind != XV_YAML_MAP) return xv_yaml_type_error(n, "a mapping ({key: value, ...})");
    *out = n;
    return XV_OK;
}

xv_status xv_yaml_require(const xv_yaml_node *map, const char *key, const char *what) {
    if (xv_yaml_get(map, key)) return XV_OK;
    return xv_error(XV_ERR_MISSING, "%s: key \"%s%s%s\" is missing (%s)", map ? map->file : "?",
                    map && map->name[0] ? map->name : "", map && map->name[0] ? "." : "", key, what);
}

void xv_yaml_note_unknown(const xv_yaml_node *map, const char *const *known, FILE *notes) {
    if (!map || !notes) return;
    for (int i = 0; i < map->n; i++) {
        bool found = false;
        for (const char *const *k = known; *k && !found; k++) found = !strcmp(*k, map->keys[i]);
        if (!found)
            fprintf(notes, "note: %s:%d: unknown key \"%s\" ignored\n", map->file, map->items[i]->line,
                    map->items[i]->name);
    }
}

static bool file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

xv_status xv_yaml_find_file(const char *yaml_path, const char *rel, char **out) {
    size_t cap = strlen(yaml_path) + strlen(rel) + 8;
    char *dir = strdup(yaml_path), *buf = malloc(cap);
    if (!dir || !buf) {
        free(dir), free(buf);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    for (int i = 0; i < 3; i++) {
        if (rel[0] == '/' && i < 2) continue; /* absolute: only as given */
        if (i == 0) snprintf(buf, cap, "%s/%s", dir, rel);
        if (i == 1) snprintf(buf, cap, "%s/../%s", dir, rel);
        if (i == 2) snprintf(buf, cap, "%s", rel);
        if (file_exists(buf)) {
            free(dir);
            *out = buf;
            return XV_OK;
        }
    }
    free(dir), free(buf);
    return xv_error(XV_ERR_IO, "%s: %s not found next to the YAML, in its parent folder or the working directory",
                    yaml_path, rel);
}
