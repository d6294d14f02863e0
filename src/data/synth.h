/* A generated multi-grained world: the data of the demo, where no real
 * pretraining data or weights can be downloaded.
 *
 * Each image holds 2-4 flat objects (shape x colour x size x pattern) on a
 * plain, gradient or lightly noisy background, never overlapping (their boxes
 * are at least XV_SYNTH_GAP_FRAC·size apart). From that scene come the three
 * granularities X-VLM aligns: whole-image captions, object annotations (box +
 * shape noun + attributes) and region annotations (a box around two related
 * objects + a relational caption), plus referring expressions for grounding.
 * Every text is a claim checked against the scene's geometry (synth_text.h).
 *
 * Everything is drawn from the project's Philox RNG: image i of a split uses
 * its own stream, split from the seed, so the output is byte-identical for a
 * seed whatever the thread count. The output layout and JSON formats are
 * described at xv_synth_generate. */
#ifndef XV_DATA_SYNTH_H
#define XV_DATA_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"

#define XV_SYNTH_MAX_OBJECTS 4
/* Image sides accepted (pixels). Below 48 the small shapes lose their form. */
#define XV_SYNTH_MIN_SIZE 48
#define XV_SYNTH_MAX_SIZE 2048

/* ---- the vocabulary of the world (synth_world.c) ---- */
typedef enum {
    XV_SHAPE_CIRCLE, XV_SHAPE_SQUARE, XV_SHAPE_TRIANGLE, XV_SHAPE_STAR,
    XV_SHAPE_DIAMOND, XV_SHAPE_CROSS, XV_SHAPE_HEART, XV_SHAPE_HEXAGON,
    XV_SYNTH_N_SHAPES
} xv_synth_shape;
typedef enum {
    XV_COLOUR_RED, XV_COLOUR_ORANGE, XV_COLOUR_YELLOW, XV_COLOUR_GREEN,
    XV_COLOUR_BLUE, XV_COLOUR_PURPLE, XV_COLOUR_WHITE, XV_COLOUR_BLACK,
    XV_SYNTH_N_COLOURS
} xv_synth_colour;
typedef enum { XV_SIZE_SMALL, XV_SIZE_LARGE, XV_SYNTH_N_SIZES } xv_synth_size;
typedef enum {
    XV_PATTERN_SOLID, XV_PATTERN_STRIPED, XV_PATTERN_DOTTED, XV_PATTERN_OUTLINED,
    XV_SYNTH_N_PATTERNS
} xv_synth_pattern;

extern const char *const xv_synth_shape_names[XV_SYNTH_N_SHAPES];
extern const char *const xv_synth_shape_plurals[XV_SYNTH_N_SHAPES];
extern const char *const xv_synth_colour_names[XV_SYNTH_N_COLOURS];
extern const uint8_t xv_synth_colour_rgb[XV_SYNTH_N_COLOURS][3];
extern const char *const xv_synth_size_names[XV_SYNTH_N_SIZES];
/* Shape extent (the longer side of its outline, stroke excluded) as a fraction
 * of the image side: [lo, hi) per size class. large/small >= 1.4. */
extern const float xv_synth_size_range[XV_SYNTH_N_SIZES][2];
extern const char *const xv_synth_pattern_names[XV_SYNTH_N_PATTERNS];

/* Background colours: mid-tone, low saturation, at least 60 (per channel, after
 * noise) away from every object colour, so objects stay clearly coloured. */
#define XV_SYNTH_N_BACKGROUNDS 7
extern const uint8_t xv_synth_background_rgb[XV_SYNTH_N_BACKGROUNDS][3];

/* Sorted, unique list of every word any caption or expression can use. */
int xv_synth_words(const char *const **words);

/* ---- shapes (synth_shape.c) ---- */
#define XV_SYNTH_MAX_VERTICES 72
/* The outline of a shape, a closed polygon in unit coordinates: centred on its
 * box, longer side 1, y pointing down. Returns the vertex count; *w, *h get the
 * box's sides (the longer is 1). */
int xv_synth_outline(xv_synth_shape shape, float xy[XV_SYNTH_MAX_VERTICES][2], float *w, float *h);

/* ---- scenes (synth_scene.c) ---- */
/* Separation of objects and the geometric thresholds of the relations, as
 * fractions of the image side. */
#define XV_SYNTH_GAP_FRAC 0.04f     /* boxes at least this far apart (x or y) */
#define XV_SYNTH_MARGIN_FRAC 0.02f  /* boxes at least this far from the border */
#define XV_SYNTH_NEXT_TO_FRAC 0.15f /* "next to": side by side, x gap at most this */
#define XV_SYNTH_EXTREME_FRAC 0.05f /* "leftmost" etc.: centres ahead by at least this */

typedef struct {
    xv_synth_shape shape;
    xv_synth_colour colour;
    xv_synth_size size;
    xv_synth_pattern pattern;
    float cx, cy;  /* centre of the outline's box, pixels */
    float extent;  /* longer side of the outline's box, pixels, stroke excluded */
    float line;    /* outline width, pixels */
    int bb[4];     /* x, y, w, h: integer pixel box holding every drawn pixel */
} xv_synth_object;

typedef enum { XV_BG_PLAIN, XV_BG_GRADIENT, XV_BG_NOISE, XV_SYNTH_N_BG_KINDS } xv_synth_bg_kind;
extern const char *const xv_synth_bg_kind_names[XV_SYNTH_N_BG_KINDS];

typedef struct {
    int size; /* image side, pixels (square images) */
    int n;    /* objects */
    xv_synth_object obj[XV_SYNTH_MAX_OBJECTS];
    xv_synth_bg_kind bg_kind;
    int bg[2];          /* background palette indices (the gradient's two ends) */
    float bg_angle;     /* gradient direction, radians */
    uint64_t noise_key; /* Philox key of the per-pixel noise */
} xv_synth_scene;

/* Draw a scene of n_min..n_max objects for an image of side `size`. Fails
 * (XV_ERR_INVALID_ARG) only for arguments out of range. */
xv_status xv_synth_sample_scene(xv_rng *r, int size, int n_min, int n_max, xv_synth_scene *out);

/* The geometric relations, on the integer boxes (so anyone can recompute them
 * from the written `bb`s), "a REL b". */
typedef enum {
    XV_REL_LEFT_OF, XV_REL_RIGHT_OF, XV_REL_ABOVE, XV_REL_BELOW, XV_REL_NEXT_TO,
    XV_REL_LARGER, XV_REL_SMALLER, XV_SYNTH_N_RELATIONS
} xv_synth_relation;
extern const char *const xv_synth_relation_phrases[XV_SYNTH_N_RELATIONS];
bool xv_synth_relation_holds(xv_synth_relation rel, const xv_synth_object *a, const xv_synth_object *b, int size);

/* ---- rendering (synth_render.c) ---- */
/* Draw the scene into rgb[size·size·3] (rows of RGB triplets). Stripes, dots
 * and outlines are in the object's colour; only the background shows between
 * them. Every object pixel lies inside its bb. */
xv_status xv_synth_render(const xv_synth_scene *s, uint8_t *rgb);

/* ---- the whole data set (synth_generate.c) ---- */
typedef struct {
    uint64_t seed;
    int train_images;       /* --images */
    int test_images;        /* retrieval and grounding test split */
    int size;               /* image side, pixels */
    int captions_per_image; /* whole-image captions per image (train and test) */
    int min_objects, max_objects;
    int jpeg_quality;
    bool flip_invariant; /* no left/right in any text (see synth_text.h) */
    int threads; /* <= 0: xv_get_threads() */
    bool progress; /* report on stderr */
} xv_synth_params;
xv_synth_params xv_synth_default_params(void);

typedef struct {
    int train_images, test_images;
    int64_t captions;            /* whole-image captions written, both splits */
    int64_t objects;             /* object annotations (train) */
    int64_t relation_regions;    /* relation region annotations (train) */
    int64_t refs_train, refs_test; /* grounding expressions */
    int64_t refs_skipped;        /* objects no expression could single out */
    int64_t test_captions_unique; /* test captions true of exactly one test image */
    double seconds;
} xv_synth_stats;

/* Generate the world into out_dir (created if absent; files are overwritten):
 *
 *   images/train_NNNNNN.jpg, images/test_NNNNNN.jpg   size x size RGB JPEG
 *   pretrain_captions.jsonl  one line per train image: {"image", "caption": [..]}
 *   pretrain_regions.jsonl   one line per train image: {"image", "caption": [..],
 *                            "elems": [{"bb": [x,y,w,h], "caption": "circle",
 *                            "attributes": ["large red striped", "red", "large red"]},
 *                            ..., {"bb": [..], "caption": "red circle left of blue square"}]}
 *   pretrain_regions_objects.jsonl, pretrain_regions_relations.jsonl
 *                            the region file with only its object elems (every record), and
 *                            with only its relation regions (records that have some): the
 *                            data of the paper's "w/o region" and "w/o object" ablations
 *   retrieval_train.json     [{"image", "caption", "image_id"}] one entry per caption
 *   retrieval_test.json      [{"image", "caption": [captions_per_image strings]}]
 *   grounding_train.json, grounding_test.json
 *                            [{"image", "text", "ref_id", "bbox": [x,y,w,h], "width", "height"}]
 *   grounding_test_attributes.json, grounding_test_spatial.json
 *                            the test expressions in two halves (like RefCOCO+ testA / testB):
 *                            by attributes alone, and by a relation or an extreme
 *   scenes.jsonl             one line per image (train, then test): the scene itself
 *   world.json               vocabulary, geometry constants, parameters, counts
 *   vocab.txt                a BERT-style WordPiece vocabulary covering every text
 *
 * Image paths are relative to out_dir (the image root). */
xv_status xv_synth_generate(const xv_synth_params *p, const char *out_dir, xv_synth_stats *stats);

/* Write the world's vocab.txt: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, ASCII
 * punctuation, digits and letters alone and as "##" continuations (so any ASCII
 * text tokenizes without [UNK]), then every word of the world. */
xv_status xv_synth_write_vocab(const char *path);

#endif
