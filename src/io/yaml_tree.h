/* A whole YAML document as a small tree, with the scalar types of the YAML 1.2
 * core schema (the default of ruamel.yaml, which the official scripts use to
 * read their configs): plain `null`/`~`/empty -> null, `true`/`false` (any of
 * the three casings) -> bool, `[-+]?[0-9]+` (and 0x/0o) -> int, decimal or
 * exponent forms and .inf/.nan -> float; quoted scalars are always strings.
 * Every node keeps its file, source line and dotted name ("images.batch_size",
 * "train_file[1]") for error messages. Anchors and aliases, tags and
 * multi-document streams are refused (the official configs use none).
 *
 * This is the one YAML reader of the project: every config (model, pretraining
 * run, fine-tuning, demo) reads its keys with the typed getters below. */
#ifndef XV_IO_YAML_TREE_H
#define XV_IO_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    const char *file; /* the file (or label) it was read from */
    char *owned_file; /* the root's copy of `file` (NULL in other nodes) */
    char *name;    /* dotted name from the root: "" for the root, "images.batch_size", "train_file[1]" */
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

/* ---- typed getters ----
 * `map` may be NULL (an absent section: every key is absent). An absent key
 * leaves *out as it is, so the caller fills *out with the default first (the
 * defaults live in the `*_default()` function of the struct being filled). A
 * present key must have the type and lie in [lo, hi]; otherwise the error
 * (XV_ERR_FORMAT for a wrong type, XV_ERR_INVALID_ARG for a bad value) reads
 *   file:line: "images.batch_size" must be an integer (got a string "8x")
 *   file:line: "regions.iter_perc" = 1.5 outside [0, 1]
 * A key given as `null` counts as present and is refused by every getter. */
xv_status xv_yaml_get_bool(const xv_yaml_node *map, const char *key, bool *out);
xv_status xv_yaml_get_int(const xv_yaml_node *map, const char *key, int lo, int hi, int *out);
xv_status xv_yaml_get_int64(const xv_yaml_node *map, const char *key, int64_t lo, int64_t hi, int64_t *out);
/* An integer or a float. */
xv_status xv_yaml_get_double(const xv_yaml_node *map, const char *key, double lo, double hi, double *out);
/* *out points into the tree (valid until xv_yaml_free). */
xv_status xv_yaml_get_string(const xv_yaml_node *map, const char *key, const char **out);
/* A list of strings, or one string (a list of one). *out is a malloc'd,
 * NULL-terminated array of pointers into the tree (free the array only);
 * absent: *out and *n unchanged. */
xv_status xv_yaml_get_strings(const xv_yaml_node *map, const char *key, const char ***out, int *n);
/* A nested mapping (*out NULL when absent). */
xv_status xv_yaml_get_map(const xv_yaml_node *map, const char *key, const xv_yaml_node **out);
/* XV_ERR_MISSING "file: key "name" is missing (what)" when `key` is absent. */
xv_status xv_yaml_require(const xv_yaml_node *map, const char *key, const char *what);

/* The getters' wrong-type error for node `n`: file:line: "name" must be
 * `want` (got <kind> "text"), for checks of the caller's own. */
xv_status xv_yaml_type_error(const xv_yaml_node *n, const char *want);

/* One note per key of `map` not in `known` (NULL-terminated) to `notes` (may
 * be NULL): "note: file:line: unknown key "name" ignored". */
void xv_yaml_note_unknown(const xv_yaml_node *map, const char *const *known, FILE *notes);

/* Official configs name files relative to the repository root (where run.py
 * starts): `rel` is looked for next to the YAML file `yaml_path`, in its
 * parent folder, then in the working directory (an absolute `rel` only as
 * given). *out is malloc'd. */
xv_status xv_yaml_find_file(const char *yaml_path, const char *rel, char **out);

#endif
