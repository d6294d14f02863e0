/* The vocabulary of the generated world: names, colours, sizes, backgrounds. */
#include "data/synth.h"

const char *const xv_synth_shape_names[XV_SYNTH_N_SHAPES] = {
    "circle", "square", "triangle", "star", "diamond", "cross", "heart", "hexagon"};
const char *const xv_synth_shape_plurals[XV_SYNTH_N_SHAPES] = {
    "circles", "squares", "triangles", "stars", "diamonds", "crosses", "hearts", "hexagons"};

const char *const xv_synth_colour_names[XV_SYNTH_N_COLOURS] = {
    "red", "orange", "yellow", "green", "blue", "purple", "white", "black"};
/* Saturated hues about 45 degrees apart plus the two luminance extremes: any two
 * differ by at least 85 in some channel, so they survive JPEG and a 96-pixel
 * resize. */
const uint8_t xv_synth_colour_rgb[XV_SYNTH_N_COLOURS][3] = {
    {220, 40, 40}, {245, 135, 20}, {240, 220, 40}, {40, 170, 70},
    {40, 90, 225}, {145, 60, 200}, {250, 250, 250}, {15, 15, 15}};

const char *const xv_synth_size_names[XV_SYNTH_N_SIZES] = {"small", "large"};
/* Large enough for a small model at low resolution: at 96 pixels a small shape
 * spans 19-24 pixels, a large one 34-38 (IoU >= 0.5 then allows a centre error
 * of about 3 pixels on a small one). Four large shapes still fit (2 x 2). */
const float xv_synth_size_range[XV_SYNTH_N_SIZES][2] = {{0.20f, 0.25f}, {0.35f, 0.40f}};

const char *const xv_synth_pattern_names[XV_SYNTH_N_PATTERNS] = {"solid", "striped", "dotted", "outlined"};

const char *const xv_synth_bg_kind_names[XV_SYNTH_N_BG_KINDS] = {"plain", "gradient", "noise"};

/* Tinted mid-greys. Every blend of two of them is at least 60 from every object
 * colour in some channel (test_synth checks this), 48 after noise. */
const uint8_t xv_synth_background_rgb[XV_SYNTH_N_BACKGROUNDS][3] = {
    {128, 128, 128}, {150, 138, 122}, {118, 128, 146}, {122, 138, 118},
    {142, 122, 138}, {96, 104, 112},  {168, 164, 156}};

const char *const xv_synth_relation_phrases[XV_SYNTH_N_RELATIONS] = {
    "left of", "right of", "above", "below", "next to", "larger than", "smaller than"};

/* Every word of the texts (names above, numbers, relation and template words),
 * sorted; test_synth checks each generated text against it. */
static const char *const g_words[] = {
    "a",        "above",    "an",       "and",       "below",     "black",     "blue",
    "circle",   "circles",  "cross",    "crosses",   "diamond",   "diamonds",  "dotted",
    "four",     "green",    "heart",    "hearts",    "hexagon",   "hexagons",  "highest",
    "image",    "is",       "large",    "larger",    "left",      "leftmost",  "lowest",
    "next",     "of",       "orange",   "outlined",  "picture",   "purple",    "red",
    "right",    "rightmost", "small",   "smaller",   "solid",     "square",    "squares",
    "star",     "stars",    "striped",  "than",      "there",     "three",     "to",
    "triangle", "triangles", "two",     "white",     "with",      "yellow"};

int xv_synth_words(const char *const **words) {
    *words = g_words;
    return (int)(sizeof g_words / sizeof g_words[0]);
}
