/* Writing the generated world in the official X-VLM data formats (see
 * xv_synth_generate in synth.h for the layout), plus scenes.jsonl, world.json
 * and vocab.txt. Every file goes through a temporary name and a rename. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/fs.h"
#include "data/synth_dataset.h"
#include "data/synth_text.h"

typedef struct {
    xv_fs_atomic w;
    bool ok;   /* false once a record could not be printed (out of memory) */
    int items; /* elements written to a JSON array */
} out_file;

static xv_status out_open(out_file *o, const char *dir, const char *name) {
    o->items = 0;
    o->ok = true;
    char *path = xv_fs_join(dir, name);
    if (!path) return xv_error(XV_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    xv_status st = xv_fs_atomic_open(path, XV_FS_DURABLE, &o->w);
    free(path);
    return st;
}

static void out_text(out_file *o, const char *s) {
    if (o->ok && fputs(s, o->w.f) < 0) o->ok = false;
}

/* Print `j` on one line (and free it); as a JSON-lines record or an array item. */
static void out_json(out_file *o, cJSON *j, bool array_item) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!s) o->ok = false;
    if (array_item) out_text(o, o->items++ ? ",\n" : "[\n");
    if (s) out_text(o, s);
    if (!array_item) out_text(o, "\n");
    cJSON_free(s);
    cJSON_Delete(j);
}

static xv_status out_close(out_file *o, bool array) {
    if (array) out_text(o, o->items ? "\n]\n" : "[]\n");
    if (o->ok) return xv_fs_atomic_commit(&o->w);
    xv_status st = xv_error(XV_ERR_IO, "%s: write failed", o->w.path);
    xv_fs_atomic_abort(&o->w);
    return st;
}

/* ---- JSON helpers (a NULL from an allocation failure makes printing fail) ---- */

static cJSON *int_array(const int *v, int n) { return cJSON_CreateIntArray(v, n); }

static cJSON *string_array(char *const *v, int n) { return cJSON_CreateStringArray((const char *const *)v, n); }

static cJSON *rgb_array(const uint8_t *c) {
    int v[3] = {c[0], c[1], c[2]};
    return cJSON_CreateIntArray(v, 3);
}

/* Decimal-friendly doubles: floats rounded to 2 (pixels) or 4 (fractions) places. */
static double rounded(double x, double scale) { return round(x * scale) / scale; }

static cJSON *image_record(const xv_synth_dataset *d, int i) {
    char path[64];
    xv_synth_image_path(d, i, path, sizeof path);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "image", path);
    return j;
}

/* ---- the pretraining files (JSON lines, official keys) ---- */

static cJSON *object_elem(const xv_synth_object *o) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToObject(e, "bb", int_array(o->bb, 4));
    cJSON_AddStringToObject(e, "caption", xv_synth_shape_names[o->shape]);
    char attrs[3][XV_SYNTH_TEXT_MAX];
    char *list[3] = {attrs[0], attrs[1], attrs[2]};
    for (int v = 0; v < 3; v++) xv_synth_attributes_text(o, v, attrs[v], sizeof attrs[v]);
    cJSON_AddItemToObject(e, "attributes", string_array(list, 3));
    return e;
}

static int n_expressions(const xv_synth_image *im) {
    int n = 0;
    for (int k = 0; k < im->scene.n; k++) n += im->refs[k] != NULL;
    return n;
}

/* The region record of train image i with its object elems, its region
 * elems (relation regions, then each object's referring expression with the
 * object's box, like Visual Genome's region descriptions) or both; NULL when
 * it would have no elem. */
static cJSON *region_record(const xv_synth_dataset *d, int i, bool objects, bool relations) {
    const xv_synth_image *im = &d->img[i];
    if ((!objects || im->scene.n == 0) && (!relations || im->n_regions + n_expressions(im) == 0)) return NULL;
    cJSON *j = image_record(d, i);
    cJSON_AddItemToObject(j, "caption", string_array(im->captions, d->p.captions_per_image));
    cJSON *elems = cJSON_AddArrayToObject(j, "elems");
    for (int k = 0; objects && k < im->scene.n; k++) cJSON_AddItemToArray(elems, object_elem(&im->scene.obj[k]));
    for (int k = 0; relations && k < im->n_regions; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "bb", int_array(im->regions[k].bb, 4));
        cJSON_AddStringToObject(e, "caption", im->regions[k].text);
        cJSON_AddItemToArray(elems, e);
    }
    for (int k = 0; relations && k < im->scene.n; k++) {
        if (!im->refs[k]) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "bb", int_array(im->scene.obj[k].bb, 4));
        cJSON_AddStringToObject(e, "caption", im->refs[k]);
        cJSON_AddItemToArray(elems, e);
    }
    return j;
}

/* The image-text file, the region file, and the region file's two halves
 * for the paper's ablations (objects only: "w/o region"; relation regions
 * only: "w/o object"). */
static xv_status write_pretrain(const xv_synth_dataset *d, const char *dir) {
    static const char *const names[4] = {"pretrain_captions.jsonl", "pretrain_regions.jsonl",
                                         "pretrain_regions_objects.jsonl", "pretrain_regions_relations.jsonl"};
    out_file f[4];
    xv_status st = XV_OK;
    int opened = 0;
    while (opened < 4 && (st = out_open(&f[opened], dir, names[opened])) == XV_OK) opened++;
    if (st != XV_OK) {
        for (int k = 0; k < opened; k++) xv_fs_atomic_abort(&f[k].w);
        return st;
    }
    for (int i = 0; i < d->n_train; i++) {
        const xv_synth_image *im = &d->img[i];
        cJSON *j = image_record(d, i);
        cJSON_AddItemToObject(j, "caption", string_array(im->captions, d->p.captions_per_image));
        out_json(&f[0], j, false);
        for (int k = 1; k < 4; k++) {
            j = region_record(d, i, k != 3, k != 2);
            if (j) out_json(&f[k], j, false);
        }
    }
    for (int k = 0; k < 4; k++) {
        xv_status sk = out_close(&f[k], false);
        if (st == XV_OK) st = sk;
    }
    return st;
}

/* ---- fine-tuning files (official retrieval and grounding formats) ---- */

static xv_status write_retrieval(const xv_synth_dataset *d, const char *dir) {
    out_file o;
    XV_TRY(out_open(&o, dir, "retrieval_train.json"));
    for (int i = 0; i < d->n_train; i++)
        for (int k = 0; k < d->p.captions_per_image; k++) {
            cJSON *j = image_record(d, i);
            cJSON_AddStringToObject(j, "caption", d->img[i].captions[k]);
            cJSON_AddNumberToObject(j, "image_id", i);
            out_json(&o, j, true);
        }
    XV_TRY(out_close(&o, true));
    XV_TRY(out_open(&o, dir, "retrieval_test.json"));
    for (int i = d->n_train; i < d->n_train + d->n_test; i++) {
        cJSON *j = image_record(d, i);
        cJSON_AddItemToObject(j, "caption", string_array(d->img[i].captions, d->p.captions_per_image));
        out_json(&o, j, true);
    }
    return out_close(&o, true);
}

/* Which expressions a grounding file holds: the test split also comes as its
 * two halves, like RefCOCO+ testA / testB: expressions by attributes alone
 * ("red circle") and spatial ones (relations and extremes: "circle above blue
 * square", "lowest star"). */
typedef enum { REFS_ALL, REFS_ATTRIBUTES, REFS_SPATIAL } refs_kind;

static xv_status write_grounding(const xv_synth_dataset *d, const char *dir, const char *name, bool test,
                                 refs_kind kind) {
    out_file o;
    XV_TRY(out_open(&o, dir, name));
    int first = test ? d->n_train : 0, last = test ? d->n_train + d->n_test : d->n_train, ref_id = 0;
    for (int i = first; i < last; i++) {
        const xv_synth_image *im = &d->img[i];
        for (int k = 0; k < im->scene.n; k++) {
            if (!im->refs[k]) continue;
            if (kind != REFS_ALL && im->ref_spatial[k] != (kind == REFS_SPATIAL)) continue;
            cJSON *j = image_record(d, i);
            cJSON_AddStringToObject(j, "text", im->refs[k]);
            cJSON_AddNumberToObject(j, "ref_id", ref_id++);
            cJSON_AddItemToObject(j, "bbox", int_array(im->scene.obj[k].bb, 4));
            cJSON_AddNumberToObject(j, "width", im->scene.size);
            cJSON_AddNumberToObject(j, "height", im->scene.size);
            out_json(&o, j, true);
        }
    }
    return out_close(&o, true);
}

/* ---- the scenes themselves ---- */

static xv_status write_scenes(const xv_synth_dataset *d, const char *dir) {
    out_file o;
    XV_TRY(out_open(&o, dir, "scenes.jsonl"));
    for (int i = 0; i < d->n_train + d->n_test; i++) {
        const xv_synth_scene *s = &d->img[i].scene;
        cJSON *j = image_record(d, i);
        cJSON_AddStringToObject(j, "split", xv_synth_is_test(d, i) ? "test" : "train");
        cJSON_AddNumberToObject(j, "width", s->size);
        cJSON_AddNumberToObject(j, "height", s->size);
        cJSON *bg = cJSON_AddObjectToObject(j, "background");
        cJSON_AddStringToObject(bg, "kind", xv_synth_bg_kind_names[s->bg_kind]);
        cJSON *colours = cJSON_AddArrayToObject(bg, "colours");
        cJSON_AddItemToArray(colours, rgb_array(xv_synth_background_rgb[s->bg[0]]));
        if (s->bg_kind == XV_BG_GRADIENT) {
            cJSON_AddItemToArray(colours, rgb_array(xv_synth_background_rgb[s->bg[1]]));
            cJSON_AddNumberToObject(bg, "angle", rounded(s->bg_angle, 1e4));
        }
        cJSON *objs = cJSON_AddArrayToObject(j, "objects");
        for (int k = 0; k < s->n; k++) {
            const xv_synth_object *ob = &s->obj[k];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "shape", xv_synth_shape_names[ob->shape]);
            cJSON_AddStringToObject(e, "colour", xv_synth_colour_names[ob->colour]);
            cJSON_AddStringToObject(e, "size", xv_synth_size_names[ob->size]);
            cJSON_AddStringToObject(e, "pattern", xv_synth_pattern_names[ob->pattern]);
            cJSON_AddItemToObject(e, "bb", int_array(ob->bb, 4));
            double c[2] = {rounded(ob->cx, 100), rounded(ob->cy, 100)};
            cJSON_AddItemToObject(e, "center", cJSON_CreateDoubleArray(c, 2));
            cJSON_AddNumberToObject(e, "extent", rounded(ob->extent, 100));
            cJSON_AddNumberToObject(e, "line", rounded(ob->line, 100));
            cJSON_AddItemToArray(objs, e);
        }
        out_json(&o, j, false);
    }
    return out_close(&o, false);
}

/* ---- vocab.txt ---- */

/* The vocabulary's tokens in id order; returns their number (tokens may be
 * NULL to count). Each is at most 15 bytes. */
static int vocab_tokens(char (*tokens)[16]) {
    static const char *const special[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    int n = 0;
#define ADD(...)                                                        \
    do {                                                                \
        if (tokens) snprintf(tokens[n], sizeof tokens[n], __VA_ARGS__); \
        n++;                                                            \
    } while (0)
    for (int k = 0; k < 5; k++) ADD("%s", special[k]);
    for (int c = 33; c < 127; c++) /* BERT splits every ASCII punctuation mark off as a word */
        if (!isalnum(c)) ADD("%c", c);
    for (int pass = 0; pass < 2; pass++) { /* alone, then as continuations */
        for (int c = '0'; c <= '9'; c++) ADD("%s%c", pass ? "##" : "", c);
        for (int c = 'a'; c <= 'z'; c++) ADD("%s%c", pass ? "##" : "", c);
    }
    const char *const *words;
    int nw = xv_synth_words(&words);
    for (int k = 0; k < nw; k++)
        if (strlen(words[k]) > 1) ADD("%s", words[k]); /* single letters are in already */
#undef ADD
    return n;
}

xv_status xv_synth_write_vocab(const char *path) {
    int n = vocab_tokens(NULL);
    char(*tokens)[16] = malloc(sizeof *tokens * (size_t)n);
    if (!tokens) return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    vocab_tokens(tokens);
    xv_fs_atomic w;
    xv_status st = xv_fs_atomic_open(path, XV_FS_DURABLE, &w);
    for (int k = 0; st == XV_OK && k < n; k++) fprintf(w.f, "%s\n", tokens[k]); /* an error fails the commit */
    free(tokens);
    return st == XV_OK ? xv_fs_atomic_commit(&w) : st;
}

/* ---- world.json ---- */

static cJSON *names(const char *const *v, int n) { return cJSON_CreateStringArray(v, n); }

static cJSON *world_json(const xv_synth_dataset *d, const xv_synth_stats *st) {
    const xv_synth_params *p = &d->p;
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "generator", "xvlm synth");
    cJSON_AddNumberToObject(w, "format_version", 1);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed); /* 64 bits do not fit a double */
    cJSON_AddStringToObject(w, "seed", seed);
    cJSON_AddNumberToObject(w, "image_size", p->size);
    int objs[2] = {p->min_objects, p->max_objects};
    cJSON_AddItemToObject(w, "objects_per_image", int_array(objs, 2));
    cJSON_AddNumberToObject(w, "captions_per_image", p->captions_per_image);
    cJSON_AddNumberToObject(w, "jpeg_quality", p->jpeg_quality);
    cJSON_AddBoolToObject(w, "flip_invariant", p->flip_invariant);
    cJSON *splits = cJSON_AddObjectToObject(w, "splits");
    cJSON_AddNumberToObject(splits, "train", d->n_train);
    cJSON_AddNumberToObject(splits, "test", d->n_test);

    cJSON_AddItemToObject(w, "shapes", names(xv_synth_shape_names, XV_SYNTH_N_SHAPES));
    cJSON_AddItemToObject(w, "shape_plurals", names(xv_synth_shape_plurals, XV_SYNTH_N_SHAPES));
    cJSON *colours = cJSON_AddObjectToObject(w, "colours");
    for (int k = 0; k < XV_SYNTH_N_COLOURS; k++)
        cJSON_AddItemToObject(colours, xv_synth_colour_names[k], rgb_array(xv_synth_colour_rgb[k]));
    cJSON *sizes = cJSON_AddObjectToObject(w, "sizes"); /* extent range, fraction of the image side */
    for (int k = 0; k < XV_SYNTH_N_SIZES; k++) {
        double r[2] = {rounded(xv_synth_size_range[k][0], 1e4), rounded(xv_synth_size_range[k][1], 1e4)};
        cJSON_AddItemToObject(sizes, xv_synth_size_names[k], cJSON_CreateDoubleArray(r, 2));
    }
    cJSON_AddItemToObject(w, "patterns", names(xv_synth_pattern_names, XV_SYNTH_N_PATTERNS));
    cJSON_AddItemToObject(w, "background_kinds", names(xv_synth_bg_kind_names, XV_SYNTH_N_BG_KINDS));
    cJSON *bgs = cJSON_AddArrayToObject(w, "backgrounds");
    for (int k = 0; k < XV_SYNTH_N_BACKGROUNDS; k++) cJSON_AddItemToArray(bgs, rgb_array(xv_synth_background_rgb[k]));
    cJSON_AddItemToObject(w, "relations", names(xv_synth_relation_phrases, XV_SYNTH_N_RELATIONS));
    cJSON_AddItemToObject(w, "extremes", names(xv_synth_extreme_words, XV_SYNTH_N_EXTREMES));
    cJSON *geo = cJSON_AddObjectToObject(w, "geometry"); /* fractions of the image side */
    cJSON_AddNumberToObject(geo, "gap", rounded(XV_SYNTH_GAP_FRAC, 1e4));
    cJSON_AddNumberToObject(geo, "margin", rounded(XV_SYNTH_MARGIN_FRAC, 1e4));
    cJSON_AddNumberToObject(geo, "next_to", rounded(XV_SYNTH_NEXT_TO_FRAC, 1e4));
    cJSON_AddNumberToObject(geo, "extreme", rounded(XV_SYNTH_EXTREME_FRAC, 1e4));
    const char *const *words;
    int nw = xv_synth_words(&words);
    cJSON_AddItemToObject(w, "words", names(words, nw));

    cJSON *vocab = cJSON_AddObjectToObject(w, "vocab");
    cJSON_AddStringToObject(vocab, "file", "vocab.txt");
    cJSON_AddNumberToObject(vocab, "size", vocab_tokens(NULL));
    static const char *const special[] = {"pad", "unk", "cls", "sep", "mask"};
    for (int k = 0; k < 5; k++) cJSON_AddNumberToObject(vocab, special[k], k);

    cJSON *files = cJSON_AddObjectToObject(w, "files");
    static const char *const file_keys[][2] = {
        {"images", "images"},
        {"pretrain_captions", "pretrain_captions.jsonl"},
        {"pretrain_regions", "pretrain_regions.jsonl"},
        {"pretrain_regions_objects", "pretrain_regions_objects.jsonl"},
        {"pretrain_regions_relations", "pretrain_regions_relations.jsonl"},
        {"retrieval_train", "retrieval_train.json"},
        {"retrieval_test", "retrieval_test.json"},
        {"grounding_train", "grounding_train.json"},
        {"grounding_test", "grounding_test.json"},
        {"grounding_test_attributes", "grounding_test_attributes.json"},
        {"grounding_test_spatial", "grounding_test_spatial.json"},
        {"scenes", "scenes.jsonl"},
        {"vqa_train", "vqa_train.json"},
        {"vqa_test", "vqa_test.json"},
        {"answer_list", "answer_list.json"},
        {"caption_train", "caption_train.json"},
        {"caption_test", "caption_test.json"},
        {"vocab", "vocab.txt"}};
    for (size_t k = 0; k < sizeof file_keys / sizeof file_keys[0]; k++)
        cJSON_AddStringToObject(files, file_keys[k][0], file_keys[k][1]);

    cJSON *counts = cJSON_AddObjectToObject(w, "counts");
    cJSON_AddNumberToObject(counts, "captions", (double)st->captions);
    cJSON_AddNumberToObject(counts, "objects_train", (double)st->objects);
    cJSON_AddNumberToObject(counts, "relation_regions_train", (double)st->relation_regions);
    cJSON_AddNumberToObject(counts, "refs_train", (double)st->refs_train);
    cJSON_AddNumberToObject(counts, "refs_test", (double)st->refs_test);
    cJSON_AddNumberToObject(counts, "refs_skipped", (double)st->refs_skipped);
    cJSON_AddNumberToObject(counts, "test_captions_unique", (double)st->test_captions_unique);
    return w;
}

static xv_status write_world(const xv_synth_dataset *d, const char *dir, const xv_synth_stats *st) {
    out_file o;
    XV_TRY(out_open(&o, dir, "world.json"));
    cJSON *w = world_json(d, st);
    char *s = w ? cJSON_Print(w) : NULL;
    if (!s) o.ok = false;
    out_text(&o, s ? s : "");
    out_text(&o, "\n");
    cJSON_free(s);
    cJSON_Delete(w);
    return out_close(&o, false);
}

xv_status xv_synth_write_outputs(const xv_synth_dataset *d, const char *dir, const xv_synth_stats *stats) {
    XV_TRY(write_pretrain(d, dir));
    XV_TRY(write_retrieval(d, dir));
    XV_TRY(write_grounding(d, dir, "grounding_train.json", false, REFS_ALL));
    XV_TRY(write_grounding(d, dir, "grounding_test.json", true, REFS_ALL));
    XV_TRY(write_grounding(d, dir, "grounding_test_attributes.json", true, REFS_ATTRIBUTES));
    XV_TRY(write_grounding(d, dir, "grounding_test_spatial.json", true, REFS_SPATIAL));
    XV_TRY(write_scenes(d, dir));
    XV_TRY(xv_synth_write_vqa_captioning(d, dir));
    XV_TRY(write_world(d, dir, stats));
    XV_TRY(xv_synth_write_nlvr(d, dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    return xv_synth_write_vocab(path);
}
