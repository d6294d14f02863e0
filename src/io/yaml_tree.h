/* A whole YAML document as a small tree, with the scalar types of the YAML 1.2
 * core schema (the default of ruamel.yaml, which the official scripts use to
 * read their configs): plain `null`/`~`/empty -> null, `true`/`false` (any of
 * the three casings) -> bool, `[-+]?[0-9]+` (and 0x/0o) -> int, decimal or
 * exponent forms and .inf/.nan -> float; quoted scalars are always strings.
 * Every node keeps its source line for error messages. Anchors and aliases,
 * tags and multi-document streams are refused (the official configs use none). */
#ifndef XV_IO_YAML_TREE_H
#define XV_IO_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum {
    XV_YAML_NULL,
    XV_YAML_BOOL,
    XV_YAML_INT,
    XV_YAML_FLOAT,
    XV_YAML_STRING,
    XV_YAML_MAP,
    XV_YAML_SEQ
} xv_yaml_kind;

typedef struct xv_yaml_node {
    xv_yaml_kind kind;
    int line;      /* 1-based source line */
    char *text;    /* scalars: the text as written */
    bool b;        /* BOOL */
    int64_t i;     /* INT */
    double f;      /* FLOAT, and INT as a double */
    int n;         /* MAP / SEQ: number of children */
    char **keys;   /* MAP: key of each child */
    struct xv_yaml_node **items;
} xv_yaml_node;

/* Parse a file; the root must be a mapping. Errors name path:line. */
xv_status xv_yaml_load(const char *path, xv_yaml_node **out);
/* Same from memory; `label` names the text in errors. */
xv_status xv_yaml_parse(const char *text, size_t len, const char *label, xv_yaml_node **out);
void xv_yaml_free(xv_yaml_node *n);

/* Child of a mapping by key (the last one if repeated, as YAML loaders keep
 * it); NULL when absent or when `map` is not a mapping. */
const xv_yaml_node *xv_yaml_get(const xv_yaml_node *map, const char *key);
const char *xv_yaml_kind_name(xv_yaml_kind k);

/* The subtree as JSON text (malloc'd; NULL when out of memory): maps to
 * objects, sequences to arrays, scalars to their JSON values. */
char *xv_yaml_to_json(const xv_yaml_node *n);

#endif
