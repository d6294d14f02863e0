/* Texts of the generated world as claims about a scene: whole-image captions
 * (exhaustive descriptions and relations) and referring expressions, each with
 * its meaning (a predicate on the scene) next to its wording.
 *
 * Noun phrase: [size] [colour] [pattern] shape; an attribute left out matches
 * anything ("a red circle" is any red circle).
 *
 * Captions (true of a scene when):
 *  - describe: "a picture of two triangles and a large red star" — the objects
 *    can be paired one-to-one with the listed items (counts included), so the
 *    list is exhaustive. With shapes only this is a count caption.
 *  - relation: "a red circle left of a blue square" — some object matching the
 *    first phrase stands in the relation to another matching the second.
 *
 * Referring expressions (no articles, like RefCOCO+): exactly one object
 * satisfies them.
 *  - attributes: "red circle";
 *  - relation: "circle left of blue square" — matches the phrase and stands in
 *    the relation to some other object matching the second phrase;
 *  - extreme: "leftmost circle" — matches the phrase and its centre is ahead of
 *    every other match by at least XV_SYNTH_EXTREME_FRAC of the image side. */
#ifndef XV_DATA_SYNTH_TEXT_H
#define XV_DATA_SYNTH_TEXT_H

#include <stddef.h>

#include "data/synth.h"

/* An attribute value of -1 means "not said". shape is always said. */
typedef struct {
    int shape, colour, size, pattern;
} xv_synth_np;

bool xv_synth_np_matches(const xv_synth_np *np, const xv_synth_object *o);

/* Caption styles: which attributes a description names, or a relation. */
typedef enum {
    XV_CAP_COUNT,         /* shapes only: "two triangles and a star" */
    XV_CAP_COLOUR,        /* colour + shape */
    XV_CAP_SIZE_COLOUR,   /* size + colour + shape */
    XV_CAP_COLOUR_PATTERN, /* colour + pattern + shape */
    XV_CAP_FULL,          /* size + colour + pattern + shape */
    XV_CAP_RELATION,
    XV_SYNTH_N_CAP_STYLES
} xv_synth_cap_style;

typedef struct {
    bool relation;
    /* describe */
    int n_items;
    xv_synth_np item[XV_SYNTH_MAX_OBJECTS];
    int count[XV_SYNTH_MAX_OBJECTS];
    /* relation */
    xv_synth_np a, b;
    xv_synth_relation rel;
    int prefix; /* index of the opening phrase ("", "a picture of ", ...) */
} xv_synth_caption;

/* flip_invariant (below): say nothing that depends on left and right ("left
 * of", "right of", "leftmost", "rightmost"), so that a horizontal flip, as in
 * the official pretraining transform, keeps every text true. */

/* Draw a caption of the given style that is true of the scene. A relation needs
 * two objects that have one to say; otherwise it falls back to
 * XV_CAP_SIZE_COLOUR. */
void xv_synth_caption_sample(xv_rng *r, const xv_synth_scene *s, xv_synth_cap_style style, bool flip_invariant,
                             xv_synth_caption *out);
bool xv_synth_caption_holds(const xv_synth_caption *c, const xv_synth_scene *s);
/* The wording; returns the length (truncated to cap-1 like snprintf). */
int xv_synth_caption_text(const xv_synth_caption *c, char *buf, size_t cap);

/* A relation region: objects a and b of the scene, "red circle left of blue
 * square" (colour + shape phrases, no articles). Returns false if no relation
 * of the pair can be said. */
bool xv_synth_region_caption(xv_rng *r, const xv_synth_scene *s, int a, int b, bool flip_invariant,
                             xv_synth_caption *out);
/* The wording of a relation caption without articles or prefix. */
int xv_synth_relation_text(const xv_synth_caption *c, char *buf, size_t cap);

/* ---- referring expressions ---- */
typedef enum { XV_EXPR_ATTRIBUTES, XV_EXPR_RELATION, XV_EXPR_EXTREME } xv_synth_expr_kind;
typedef enum { XV_EXTREME_LEFTMOST, XV_EXTREME_RIGHTMOST, XV_EXTREME_HIGHEST, XV_EXTREME_LOWEST,
               XV_SYNTH_N_EXTREMES } xv_synth_extreme;
extern const char *const xv_synth_extreme_words[XV_SYNTH_N_EXTREMES];

typedef struct {
    xv_synth_expr_kind kind;
    xv_synth_np np;
    xv_synth_relation rel;  /* XV_EXPR_RELATION */
    xv_synth_np other;      /* XV_EXPR_RELATION */
    xv_synth_extreme extreme; /* XV_EXPR_EXTREME */
} xv_synth_expr;

/* Whether object i satisfies the expression. */
bool xv_synth_expr_satisfied(const xv_synth_expr *e, const xv_synth_scene *s, int i);
/* Number of objects satisfying it (1 = unambiguous). */
int xv_synth_expr_referents(const xv_synth_expr *e, const xv_synth_scene *s);
/* Draw an expression that singles out object `target`, preferring ones that
 * need an attribute or a relation beyond the shape. False if none exists (two
 * identical objects no relation tells apart). */
bool xv_synth_expr_sample(xv_rng *r, const xv_synth_scene *s, int target, bool flip_invariant, xv_synth_expr *out);
int xv_synth_expr_text(const xv_synth_expr *e, char *buf, size_t cap);

/* "large red striped": the attributes of an object annotation (size colour
 * pattern), or a shorter variant (0 full, 1 colour, 2 size + colour). */
int xv_synth_attributes_text(const xv_synth_object *o, int variant, char *buf, size_t cap);

/* Longest text any of the above can produce, bytes including the NUL. */
#define XV_SYNTH_TEXT_MAX 256

#endif
