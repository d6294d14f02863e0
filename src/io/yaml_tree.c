#include "io/yaml_tree.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"

#define MAX_DEPTH 64
#define MAX_CHILDREN 100000

void xv_yaml_free(xv_yaml_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) free(n->keys[i]);
        xv_yaml_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n->name);
    free(n->owned_file);
    free(n);
}

const char *xv_yaml_kind_name(xv_yaml_kind k) {
    static const char *const names[] = {"null", "a boolean", "an integer", "a number", "a string", "a mapping",
                                        "a list"};
    return k <= XV_YAML_SEQ ? names[k] : "?";
}

static bool one_of(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static void resolve_plain(xv_yaml_node *n) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = n->text;
    if (one_of(s, nulls)) return (void)(n->kind = XV_YAML_NULL);
    if (one_of(s, trues) || one_of(s, falses)) {
        n->kind = XV_YAML_BOOL;
        n->b = one_of(s, trues);
        return;
    }
    if (one_of(s, infs) || one_of(s, ninfs) || one_of(s, nans)) {
        n->kind = XV_YAML_FLOAT;
        n->f = one_of(s, nans) ? NAN : one_of(s, infs) ? INFINITY : -INFINITY;
        return;
    }
    char *end;
    errno = 0;
    /* integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ */
    int base = 10;
    const char *digits = s + (s[0] == '-' || s[0] == '+');
    if (digits == s && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) base = s[1] == 'x' ? 16 : 8, digits = s + 2;
    bool all_digits = *digits != '\0';
    for (const char *p = digits; *p; p++)
        if (!(base == 16 ? (p[0] >= '0' && p[0] <= '9') || (p[0] >= 'a' && p[0] <= 'f') || (p[0] >= 'A' && p[0] <= 'F')
                         : p[0] >= '0' && p[0] <= (base == 8 ? '7' : '9')))
            all_digits = false;
    if (all_digits) {
        long long v = strtoll(base == 10 ? s : digits, &end, base);
        if (!errno && !*end) {
            n->kind = XV_YAML_INT;
            n->i = v;
            n->f = (double)v;
            return;
        }
    }
    /* floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    const char *p = s + (s[0] == '-' || s[0] == '+');
    int mant = 0;
    while (*p >= '0' && *p <= '9') p++, mant++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, mant++;
    }
    bool ok = mant > 0;
    if (ok && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '-' || *p == '+') p++;
        int e = 0;
        while (*p >= '0' && *p <= '9') p++, e++;
        ok = e > 0;
    }
    if (ok && !*p) {
        errno = 0;
        double v = strtod(s, &end);
        if (!*end) {
            n->kind = XV_YAML_FLOAT;
            n->f = v;
            return;
        }
    }
    n->kind = XV_YAML_STRING;
}

typedef struct {
    yaml_parser_t p;
    const char *label;
    char *file; /* copy of label shared by the nodes; the root takes it */
    xv_status st;
} parser;

static xv_status fail_at(parser *ps, int line, const char *what) {
    return ps->st = xv_error(XV_ERR_FORMAT, "%s:%d: %s", ps->label, line, what);
}

static bool next_event(parser *ps, yaml_event_t *ev) {
    if (yaml_parser_parse(&ps->p, ev)) return true;
    ps->st = xv_error(XV_ERR_FORMAT, "%s:%zu: YAML error: %s", ps->label, ps->p.problem_mark.line + 1,
                      ps->p.problem ? ps->p.problem : "unknown");
    return false;
}

static xv_yaml_node *new_node(parser *ps, xv_yaml_kind kind, int line, const char *name) {
    xv_yaml_node *n = calloc(1, sizeof *n);
    if (n && !(n->name = strdup(name))) free(n), n = NULL;
    if (!n) ps->st = xv_error(XV_ERR_NOMEM, "%s: out of memory", ps->label);
    else n->kind = kind, n->line = line, n->file = ps->file;
    return n;
}

/* "parent.key" (or "key" at the top level), or "parent[i]" for a list item. */
static char *child_name(const xv_yaml_node *parent, const char *key) {
    size_t n = strlen(parent->name) + (key ? strlen(key) : 12) + 4;
    char *s = malloc(n);
    if (!s) return NULL;
    if (!key) snprintf(s, n, "%s[%d]", parent->name, parent->n);
    else snprintf(s, n, "%s%s%s", parent->name, parent->name[0] ? "." : "", key);
    return s;
}

static bool add_child(parser *ps, xv_yaml_node *parent, char *key, xv_yaml_node *child) {
    if (parent->n >= MAX_CHILDREN) {
        fail_at(ps, child->line, "too many entries in one collection");
        return false;
    }
    xv_yaml_node **items = realloc(parent->items, sizeof *items * (size_t)(parent->n + 1));
    if (items) parent->items = items;
    char **keys = parent->kind == XV_YAML_MAP ? realloc(parent->keys, sizeof *keys * (size_t)(parent->n + 1)) : NULL;
    if (keys) parent->keys = keys;
    if (!items || (parent->kind == XV_YAML_MAP && !keys)) {
        ps->st = xv_error(XV_ERR_NOMEM, "%s: out of memory", ps->label);
        return false;
    }
    if (keys) keys[parent->n] = key;
    items[parent->n++] = child;
    return true;
}

/* Build the node that starts with `ev` (consumed), reading its children. */
static xv_yaml_node *build(parser *ps, yaml_event_t *ev, int depth, const char *name) {
    const int line = (int)ev->start_mark.line + 1;
    if (depth > MAX_DEPTH) {
        fail_at(ps, line, "nesting deeper than 64");
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        fail_at(ps, line, "aliases (*name) are not supported in configs");
        return NULL;
    case YAML_SCALAR_EVENT: {
        if (ev->data.scalar.anchor) {
            fail_at(ps, line, "anchors (&name) are not supported in configs");
            return NULL;
        }
        xv_yaml_node *n = new_node(ps, XV_YAML_STRING, line, name);
        if (!n) return NULL;
        n->text = strdup((const char *)ev->data.scalar.value);
        if (!n->text) {
            ps->st = xv_error(XV_ERR_NOMEM, "%s: out of memory", ps->label);
            xv_yaml_free(n);
            return NULL;
        }
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag) resolve_plain(n);
        return n;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        const bool map = ev->type == YAML_MAPPING_START_EVENT;
        if ((map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor) != NULL) {
            fail_at(ps, line, "anchors (&name) are not supported in configs");
            return NULL;
        }
        xv_yaml_node *n = new_node(ps, map ? XV_YAML_MAP : XV_YAML_SEQ, line, name);
        if (!n) return NULL;
        for (;;) {
            yaml_event_t e;
            if (!next_event(ps, &e)) break;
            if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                return n;
            }
            char *key = NULL;
            if (map) {
                if (e.type != YAML_SCALAR_EVENT) {
                    fail_at(ps, (int)e.start_mark.line + 1, "mapping keys must be plain strings");
                    yaml_event_delete(&e);
                    break;
                }
                key = strdup((const char *)e.data.scalar.value);
                yaml_event_delete(&e);
                if (!key) {
                    ps->st = xv_error(XV_ERR_NOMEM, "%s: out of memory", ps->label);
                    break;
                }
                if (!next_event(ps, &e)) {
                    free(key);
                    break;
                }
            }
            char *cname = child_name(n, key);
            xv_yaml_node *child = cname ? build(ps, &e, depth + 1, cname) : NULL;
            if (!cname) ps->st = xv_error(XV_ERR_NOMEM, "%s: out of memory", ps->label);
            free(cname);
            yaml_event_delete(&e);
            if (!child || !add_child(ps, n, key, child)) {
                free(key);
                xv_yaml_free(child);
                break;
            }
        }
        xv_yaml_free(n);
        return NULL;
    }
    default:
        fail_at(ps, line, "unexpected YAML event");
        return NULL;
    }
}

static xv_status parse_with(parser *ps, xv_yaml_node **out) {
    *out = NULL;
    xv_yaml_node *root = NULL;
    yaml_event_t ev;
    bool in_doc = false, done = false;
    while (!done && ps->st == XV_OK && next_event(ps, &ev)) {
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (root) fail_at(ps, (int)ev.start_mark.line + 1, "more than one YAML document");
            in_doc = true;
            break;
        case YAML_DOCUMENT_END_EVENT:
            in_doc = false;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            if (!in_doc || root) {
                fail_at(ps, (int)ev.start_mark.line + 1, "unexpected content");
                break;
            }
            root = build(ps, &ev, 0, "");
            if (root && root->kind != XV_YAML_MAP) fail_at(ps, root->line, "the top level must be a mapping");
            break;
        }
        yaml_event_delete(&ev);
    }
    if (ps->st == XV_OK && !root) ps->st = xv_error(XV_ERR_FORMAT, "%s: empty YAML document", ps->label);
    if (ps->st != XV_OK) {
        xv_yaml_free(root);
        return ps->st;
    }
    root->owned_file = ps->file;
    ps->file = NULL;
    *out = root;
    return XV_OK;
}

xv_status xv_yaml_parse(const char *text, size_t len, const char *label, xv_yaml_node **out) {
    *out = NULL;
    parser ps = {.label = label, .file = strdup(label), .st = XV_OK};
    if (!ps.file) return xv_error(XV_ERR_NOMEM, "%s: out of memory", label);
    if (!yaml_parser_initialize(&ps.p)) {
        free(ps.file);
        return xv_error(XV_ERR_NOMEM, "%s: cannot initialise the YAML parser", label);
    }
    yaml_parser_set_input_string(&ps.p, (const unsigned char *)text, len);
    xv_status st = parse_with(&ps, out);
    yaml_parser_delete(&ps.p);
    free(ps.file);
    return st;
}

xv_status xv_yaml_load(const char *path, xv_yaml_node **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return xv_error(XV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    parser ps = {.label = path, .file = strdup(path), .st = XV_OK};
    if (!ps.file || !yaml_parser_initialize(&ps.p)) {
        fclose(f);
        free(ps.file);
        return xv_error(XV_ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    }
    yaml_parser_set_input_file(&ps.p, f);
    xv_status st = parse_with(&ps, out);
    yaml_parser_delete(&ps.p);
    free(ps.file);
    fclose(f);
    return st;
}

const xv_yaml_node *xv_yaml_get(const xv_yaml_node *map, const char *key) {
    if (!map || map->kind != XV_YAML_MAP) return NULL;
    for (int i = map->n - 1; i >= 0; i--)
        if (!strcmp(map->keys[i], key)) return map->items[i];
    return NULL;
}

static cJSON *to_cjson(const xv_yaml_node *n) {
    switch (n->kind) {
    case XV_YAML_NULL: return cJSON_CreateNull();
    case XV_YAML_BOOL: return cJSON_CreateBool(n->b);
    case XV_YAML_INT:
    case XV_YAML_FLOAT: return cJSON_CreateNumber(n->f);
    case XV_YAML_STRING: return cJSON_CreateString(n->text);
    case XV_YAML_MAP:
    case XV_YAML_SEQ: {
        cJSON *c = n->kind == XV_YAML_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
        for (int i = 0; c && i < n->n; i++) {
            cJSON *child = to_cjson(n->items[i]);
            if (!child) {
                cJSON_Delete(c);
                return NULL;
            }
            if (n->kind == XV_YAML_MAP) cJSON_AddItemToObject(c, n->keys[i], child);
            else cJSON_AddItemToArray(c, child);
        }
        return c;
    }
    }
    return NULL;
}

char *xv_yaml_to_json(const xv_yaml_node *n) {
    cJSON *c = to_cjson(n);
    if (!c) return NULL;
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
}
