/* The generated world (data/synth.h): byte-identical output by seed and across
 * thread counts; the official JSON keys and value types; boxes inside the image
 * and tight around the drawn pixels; colours kept apart from the backgrounds;
 * a vocab.txt that covers every text; bad parameters refused.
 * (test_synth_semantics checks that every text is true of its scene.) */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/fs.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/synth.h"
#include "testutil.h"

static const char *const g_json_files[] = {
    "pretrain_captions.jsonl", "pretrain_regions.jsonl", "pretrain_regions_objects.jsonl",
    "pretrain_regions_relations.jsonl", "retrieval_train.json", "retrieval_test.json", "grounding_train.json",
    "grounding_test.json", "grounding_test_attributes.json", "grounding_test_spatial.json", "scenes.jsonl", "world.json", "vocab.txt"};
#define N_JSON_FILES ((int)(sizeof g_json_files / sizeof g_json_files[0]))

static char *slurp(const char *path, size_t *len) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (xv_fs_read_file(path, INT64_C(1) << 30, &d, &n) != XV_OK) return NULL;
    if (len) *len = n;
    return (char *)d;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static xv_synth_params small_params(uint64_t seed, int threads) {
    xv_synth_params p = xv_synth_default_params();
    p.seed = seed;
    p.train_images = 12;
    p.test_images = 8;
    p.size = 128;
    p.threads = threads;
    return p;
}

static bool files_equal(const char *dir_a, const char *dir_b, const char *name) {
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    size_t na = 0, nb = 0;
    char *a = slurp(pa, &na), *b = slurp(pb, &nb);
    bool eq = a && b && na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    return eq;
}

static void image_name(char *buf, size_t cap, bool test, int i) {
    snprintf(buf, cap, "images/%s_%06d.jpg", test ? "test" : "train", i);
}

/* ---- determinism ---- */

static void check_determinism(const char *root) {
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s/seed5_t1", root);
    snprintf(b, sizeof b, "%s/seed5_t2", root);
    snprintf(c, sizeof c, "%s/seed6_t2", root);
    xv_synth_params pa = small_params(5, 1), pb = small_params(5, 2), pc = small_params(6, 2);
    xv_synth_stats st;
    CHECK_OK(xv_synth_generate(&pa, a, &st));
    CHECK(st.train_images == 12 && st.test_images == 8, "counts %d %d", st.train_images, st.test_images);
    CHECK_OK(xv_synth_generate(&pb, b, NULL));
    CHECK_OK(xv_synth_generate(&pc, c, NULL));
    /* Every file: the JSON files, then the 12 + 8 images. */
    char names[N_JSON_FILES + 20][64];
    int total = 0, same_ab = 0, same_ac = 0;
    for (int k = 0; k < N_JSON_FILES; k++) snprintf(names[total++], 64, "%s", g_json_files[k]);
    for (int k = 0; k < 20; k++) image_name(names[total++], 64, k >= 12, k >= 12 ? k - 12 : k);
    for (int k = 0; k < total; k++) {
        bool ab = files_equal(a, b, names[k]), ac = files_equal(a, c, names[k]);
        CHECK(ab, "%s differs between 1 and 2 threads", names[k]);
        same_ab += ab, same_ac += ac;
    }
    CHECK(same_ab == total, "%d of %d files identical across thread counts", same_ab, total);
    /* vocab.txt is the world's, not the seed's: only it may coincide. */
    CHECK(same_ac == 1, "seeds 5 and 6 share %d of %d files (expected only vocab.txt)", same_ac, total);
    CHECK(files_equal(a, c, "vocab.txt"), "vocab.txt depends on the seed");
    /* A rerun into the same folder overwrites it with the same bytes. */
    CHECK_OK(xv_synth_generate(&pb, a, NULL));
    CHECK(files_equal(a, b, "world.json") && files_equal(a, b, "images/test_000007.jpg"), "rerun differs");
}

/* ---- official keys ---- */

static cJSON *load_json(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path, NULL);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    CHECK(j != NULL, "%s does not parse", name);
    return j;
}

/* Each line of a JSON-lines file, parsed; returns the number of lines. */
static int load_jsonl(const char *dir, const char *name, cJSON **out, int max) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path, NULL);
    CHECK(s != NULL, "%s unreadable", name);
    int n = 0;
    for (char *line = s, *next; s && *line; line = next) {
        next = strchr(line, '\n');
        CHECK(next != NULL, "%s: last line without newline", name);
        if (!next) break;
        *next++ = '\0';
        CHECK(n < max, "%s: more than %d lines", name, max);
        if (n >= max) break;
        out[n] = cJSON_Parse(line);
        CHECK(out[n] != NULL, "%s line %d does not parse", name, n + 1);
        n++;
    }
    free(s);
    return n;
}

static bool is_string_array(const cJSON *a, int n) {
    if (!cJSON_IsArray(a) || (n >= 0 && cJSON_GetArraySize(a) != n) || cJSON_GetArraySize(a) == 0) return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (!cJSON_IsString(e) || !e->valuestring[0]) return false;
    return true;
}

/* [x, y, w, h] integers, positive size, inside a size x size image. */
static bool box_ok(const cJSON *bb, int size) {
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) return false;
    double v[4];
    for (int k = 0; k < 4; k++) {
        const cJSON *e = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(e) || e->valuedouble != (int)e->valuedouble) return false;
        v[k] = e->valuedouble;
    }
    return v[0] >= 0 && v[1] >= 0 && v[2] > 0 && v[3] > 0 && v[0] + v[2] <= size && v[1] + v[3] <= size;
}

static bool image_exists(const char *dir, const cJSON *image) {
    if (!cJSON_IsString(image)) return false;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, image->valuestring);
    xv_image im;
    if (xv_image_load(path, &im) != XV_OK) return false;
    bool ok = im.width == 128 && im.height == 128;
    xv_image_free(&im);
    return ok;
}

static void check_pretrain_files(const char *dir) {
    cJSON *lines[64];
    int n = load_jsonl(dir, "pretrain_captions.jsonl", lines, 64);
    CHECK(n == 12, "%d image-text lines", n);
    for (int i = 0; i < n; i++) {
        CHECK(image_exists(dir, cJSON_GetObjectItemCaseSensitive(lines[i], "image")), "line %d: image", i + 1);
        CHECK(is_string_array(cJSON_GetObjectItemCaseSensitive(lines[i], "caption"), 5), "line %d: caption", i + 1);
        CHECK(cJSON_GetArraySize(lines[i]) == 2, "line %d: extra keys", i + 1);
        cJSON_Delete(lines[i]);
    }
    n = load_jsonl(dir, "pretrain_regions.jsonl", lines, 64);
    CHECK(n == 12, "%d region lines", n);
    for (int i = 0; i < n; i++) {
        const cJSON *l = lines[i], *elems = cJSON_GetObjectItemCaseSensitive(l, "elems"), *e;
        CHECK(image_exists(dir, cJSON_GetObjectItemCaseSensitive(l, "image")), "region line %d: image", i + 1);
        CHECK(is_string_array(cJSON_GetObjectItemCaseSensitive(l, "caption"), 5), "region line %d: caption", i + 1);
        CHECK(cJSON_IsArray(elems) && cJSON_GetArraySize(elems) >= 2, "region line %d: elems", i + 1);
        int objects = 0;
        cJSON_ArrayForEach(e, elems) {
            CHECK(box_ok(cJSON_GetObjectItemCaseSensitive(e, "bb"), 128), "region line %d: bb", i + 1);
            CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "caption")), "region line %d: caption", i + 1);
            const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(e, "attributes");
            if (attrs) {
                CHECK(is_string_array(attrs, -1), "region line %d: attributes", i + 1);
                objects++;
            }
        }
        CHECK(objects >= 2 && objects <= 4, "region line %d: %d objects", i + 1, objects);
        cJSON_Delete(lines[i]);
    }
}

/* The ablation files are the region file split: every record with its object
 * elems only, and the records that have relation regions with those only. */
static void check_ablation_files(const char *dir) {
    cJSON *full[64], *obj[64], *rel[64];
    int nf = load_jsonl(dir, "pretrain_regions.jsonl", full, 64);
    int no = load_jsonl(dir, "pretrain_regions_objects.jsonl", obj, 64);
    int nr = load_jsonl(dir, "pretrain_regions_relations.jsonl", rel, 64);
    CHECK(nf == 12 && no == 12 && nr > 0 && nr <= 12, "ablation files: %d, %d, %d lines", nf, no, nr);
    int r = 0;
    for (int i = 0; i < nf && i < no; i++) {
        cJSON *want_obj = cJSON_Duplicate(full[i], true), *want_rel = cJSON_Duplicate(full[i], true);
        cJSON *eo = cJSON_GetObjectItemCaseSensitive(want_obj, "elems");
        cJSON *er = cJSON_GetObjectItemCaseSensitive(want_rel, "elems");
        for (int k = cJSON_GetArraySize(eo) - 1; k >= 0; k--) {
            bool is_object = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(eo, k), "attributes") != NULL;
            cJSON_DeleteItemFromArray(is_object ? er : eo, k);
        }
        CHECK(cJSON_Compare(obj[i], want_obj, true), "objects file line %d", i + 1);
        if (cJSON_GetArraySize(er) > 0) {
            CHECK(r < nr && cJSON_Compare(rel[r], want_rel, true), "relations file line %d", r + 1);
            r++;
        }
        cJSON_Delete(want_obj);
        cJSON_Delete(want_rel);
    }
    CHECK(r == nr, "relations file: %d lines, %d records with relations", nr, r);
    for (int i = 0; i < nf; i++) cJSON_Delete(full[i]);
    for (int i = 0; i < no; i++) cJSON_Delete(obj[i]);
    for (int i = 0; i < nr; i++) cJSON_Delete(rel[i]);
}

/* grounding_test_attributes.json and grounding_test_spatial.json split
 * grounding_test.json in two, in its order: attribute-only expressions, and
 * those with a relation or an extreme word. */
static bool spatial_text(const char *t) {
    static const char *const words[] = {"above", "below", "left of", "right of", "next to", "larger than",
                                        "smaller than", "leftmost", "rightmost", "highest", "lowest"};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strstr(t, words[k])) return true;
    return false;
}

static void check_test_halves(const char *dir) {
    cJSON *all = load_json(dir, "grounding_test.json");
    cJSON *half[2] = {load_json(dir, "grounding_test_attributes.json"), load_json(dir, "grounding_test_spatial.json")};
    int next[2] = {0, 0};
    const cJSON *e;
    cJSON_ArrayForEach(e, all) {
        const char *text = cJSON_GetObjectItemCaseSensitive(e, "text")->valuestring;
        int h = spatial_text(text);
        const cJSON *got = cJSON_GetArrayItem(half[h], next[h]);
        const cJSON *gt = got ? cJSON_GetObjectItemCaseSensitive(got, "text") : NULL;
        CHECK(cJSON_IsString(gt) && !strcmp(gt->valuestring, text) &&
                  cJSON_Compare(cJSON_GetObjectItemCaseSensitive(got, "bbox"), cJSON_GetObjectItemCaseSensitive(e, "bbox"), 1) &&
                  cJSON_GetObjectItemCaseSensitive(got, "ref_id")->valueint == next[h],
              "'%s' is entry %d of the %s half", text, next[h], h ? "spatial" : "attributes");
        next[h]++;
    }
    CHECK(next[0] == cJSON_GetArraySize(half[0]) && next[1] == cJSON_GetArraySize(half[1]) && next[0] > 0 && next[1] > 0,
          "the halves hold %d + %d of the test expressions, nothing else", next[0], next[1]);
    cJSON_Delete(all);
    cJSON_Delete(half[0]);
    cJSON_Delete(half[1]);
}

static void check_finetune_files(const char *dir) {
    cJSON *train = load_json(dir, "retrieval_train.json"), *test = load_json(dir, "retrieval_test.json"), *e;
    CHECK(cJSON_GetArraySize(train) == 12 * 5, "%d retrieval train entries", cJSON_GetArraySize(train));
    int k = 0;
    cJSON_ArrayForEach(e, train) {
        const cJSON *img = cJSON_GetObjectItemCaseSensitive(e, "image"), *id = cJSON_GetObjectItemCaseSensitive(e, "image_id");
        CHECK(cJSON_IsString(img) && strncmp(img->valuestring, "images/train_", 13) == 0, "train entry %d image", k);
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "caption")), "train entry %d caption", k);
        CHECK(cJSON_IsNumber(id) && id->valueint == k / 5, "train entry %d image_id", k);
        k++;
    }
    CHECK(cJSON_GetArraySize(test) == 8, "%d retrieval test entries", cJSON_GetArraySize(test));
    cJSON_ArrayForEach(e, test) {
        const cJSON *img = cJSON_GetObjectItemCaseSensitive(e, "image");
        CHECK(image_exists(dir, img) && strncmp(img->valuestring, "images/test_", 12) == 0, "test entry image");
        CHECK(is_string_array(cJSON_GetObjectItemCaseSensitive(e, "caption"), 5), "test entry captions");
    }
    cJSON_Delete(train);
    cJSON_Delete(test);

    for (int split = 0; split < 2; split++) {
        cJSON *g = load_json(dir, split ? "grounding_test.json" : "grounding_train.json");
        int n = 0;
        cJSON_ArrayForEach(e, g) {
            const cJSON *img = cJSON_GetObjectItemCaseSensitive(e, "image"), *ref = cJSON_GetObjectItemCaseSensitive(e, "ref_id");
            CHECK(cJSON_IsString(img) && strncmp(img->valuestring, split ? "images/test_" : "images/train_", split ? 12 : 13) == 0,
                  "grounding image");
            CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "text")), "grounding text");
            CHECK(cJSON_IsNumber(ref) && ref->valueint == n, "grounding ref_id %d", n);
            CHECK(box_ok(cJSON_GetObjectItemCaseSensitive(e, "bbox"), 128), "grounding bbox");
            CHECK(cJSON_GetObjectItemCaseSensitive(e, "width")->valueint == 128 &&
                      cJSON_GetObjectItemCaseSensitive(e, "height")->valueint == 128,
                  "grounding width/height");
            n++;
        }
        /* 2-4 objects per image, nearly every one gets an expression. */
        int images = split ? 8 : 12;
        CHECK(n >= images * 2 - 2 && n <= images * 4, "%d grounding entries for %d images", n, images);
        cJSON_Delete(g);
    }

    check_test_halves(dir);

    cJSON *w = load_json(dir, "world.json");
    const cJSON *splits = cJSON_GetObjectItemCaseSensitive(w, "splits"), *vocab = cJSON_GetObjectItemCaseSensitive(w, "vocab");
    CHECK(cJSON_GetObjectItemCaseSensitive(splits, "train")->valueint == 12, "world train");
    CHECK(cJSON_GetObjectItemCaseSensitive(splits, "test")->valueint == 8, "world test");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "shapes")) == XV_SYNTH_N_SHAPES, "world shapes");
    CHECK(cJSON_GetObjectItemCaseSensitive(vocab, "pad")->valueint == 0, "world [PAD] id");
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    char *v = slurp(path, NULL);
    int lines = 0;
    for (char *p = v; p && *p; p++) lines += *p == '\n';
    CHECK(lines == cJSON_GetObjectItemCaseSensitive(vocab, "size")->valueint, "vocab.txt has %d lines", lines);
    free(v);
    cJSON_Delete(w);
}

/* ---- vocab.txt covers every word of every text ---- */

static bool in_vocab(char *const *tokens, int n, const char *word, size_t len) {
    for (int k = 0; k < n; k++)
        if (strlen(tokens[k]) == len && !memcmp(tokens[k], word, len)) return true;
    return false;
}

/* Split a text into BERT's basic words (spaces; ',' alone) and look each up. */
static int missing_words(char *const *tokens, int n, const char *text) {
    int missing = 0;
    for (const char *p = text; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = *p == ',' ? 1 : strcspn(p, " ,");
        if (!in_vocab(tokens, n, p, len)) {
            fprintf(stderr, "not in vocab: '%.*s' (in '%s')\n", (int)len, p, text);
            missing++;
        }
        p += len;
    }
    return missing;
}

static void collect_strings(const cJSON *j, const char **out, int *n, int max) {
    if (cJSON_IsString(j) && *n < max) out[(*n)++] = j->valuestring;
    const cJSON *c;
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) cJSON_ArrayForEach(c, j) collect_strings(c, out, n, max);
}

static void check_vocab(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    char *v = slurp(path, NULL);
    CHECK(v != NULL, "vocab.txt missing");
    if (!v) return;
    char *tokens[1024];
    int n = 0;
    for (char *p = v, *nl; (nl = strchr(p, '\n')) && n < 1024; p = nl + 1) *nl = '\0', tokens[n++] = p;
    CHECK(n > 100 && !strcmp(tokens[0], "[PAD]"), "vocab.txt: %d tokens, first '%s'", n, n ? tokens[0] : "");
    const char *special[] = {"[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", "##z", "z", "9"};
    for (int k = 0; k < 8; k++) CHECK(in_vocab(tokens, n, special[k], strlen(special[k])), "%s not in vocab", special[k]);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) CHECK(strcmp(tokens[a], tokens[b]) != 0, "duplicate token %s", tokens[a]);
    const char *const *words;
    int nw = xv_synth_words(&words);
    for (int k = 0; k < nw; k++) CHECK(in_vocab(tokens, n, words[k], strlen(words[k])), "world word %s", words[k]);

    /* Every caption, attribute, region caption and expression, word by word. */
    const char *names[] = {"retrieval_train.json", "retrieval_test.json", "grounding_train.json", "grounding_test.json"};
    int missing = 0, texts = 0;
    for (int f = 0; f < 4; f++) {
        cJSON *j = load_json(dir, names[f]), *e;
        cJSON_ArrayForEach(e, j) {
            const char *s[16];
            int ns = 0;
            collect_strings(cJSON_GetObjectItemCaseSensitive(e, "caption"), s, &ns, 16);
            collect_strings(cJSON_GetObjectItemCaseSensitive(e, "text"), s, &ns, 16);
            for (int k = 0; k < ns; k++) missing += missing_words(tokens, n, s[k]), texts++;
        }
        cJSON_Delete(j);
    }
    cJSON *lines[64];
    int nl = load_jsonl(dir, "pretrain_regions.jsonl", lines, 64);
    for (int i = 0; i < nl; i++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(lines[i], "elems")) {
            const char *s[16];
            int ns = 0;
            collect_strings(e, s, &ns, 16);
            for (int k = 0; k < ns; k++) missing += missing_words(tokens, n, s[k]), texts++;
        }
        cJSON_Delete(lines[i]);
    }
    CHECK(missing == 0 && texts > 200, "%d words of %d texts not in vocab.txt", missing, texts);
    free(v);
}

/* ---- pixels: colours and tight boxes ---- */

static int linf(const uint8_t *p, const uint8_t *c) {
    int d = 0;
    for (int k = 0; k < 3; k++) {
        int x = abs((int)p[k] - (int)c[k]);
        d = x > d ? x : d;
    }
    return d;
}

/* Object pixels: within 30 of the object's colour (backgrounds, noise included,
 * stay at least 48 away; checked by check_palette). */
#define NEAR 30

static void check_object_pixels(const xv_synth_scene *s, const uint8_t *rgb, int *bad) {
    int n = s->size;
    for (int k = 0; k < s->n; k++) {
        const xv_synth_object *o = &s->obj[k];
        const uint8_t *c = xv_synth_colour_rgb[o->colour];
        int x0 = o->bb[0], y0 = o->bb[1], x1 = x0 + o->bb[2], y1 = y0 + o->bb[3];
        bool inside = x0 >= 0 && y0 >= 0 && x1 <= n && y1 <= n;
        CHECK(inside, "box %d,%d,%d,%d outside %d", x0, y0, o->bb[2], o->bb[3], n);
        if (!inside) continue;
        /* Inside: a share of the box is the colour: the outline alone covers
         * about perimeter x line >= 3e x 0.07e of an at most e x e box (e the
         * extent), 0.2, less the anti-aliased pixels beyond 30 levels: >= 0.12.
         * And each side's outer 3-pixel band holds an object pixel (the box
         * is tight; 3 because the sharp tip of a small star or diamond only
         * reaches full colour a pixel or two in). */
        int hits = 0, edge[4] = {0, 0, 0, 0};
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                if (linf(rgb + ((size_t)y * n + x) * 3, c) > NEAR) continue;
                hits++;
                edge[0] |= x < x0 + 3, edge[1] |= x >= x1 - 3, edge[2] |= y < y0 + 3, edge[3] |= y >= y1 - 3;
            }
        double share = (double)hits / ((double)o->bb[2] * o->bb[3]);
        if (share < 0.12 || !(edge[0] && edge[1] && edge[2] && edge[3])) {
            (*bad)++;
            fprintf(stderr, "object %s %s %s at %d,%d,%d,%d: share %.2f, edges %d%d%d%d\n",
                    xv_synth_colour_names[o->colour], xv_synth_pattern_names[o->pattern],
                    xv_synth_shape_names[o->shape], x0, y0, o->bb[2], o->bb[3], share, edge[0], edge[1], edge[2],
                    edge[3]);
        }
        /* Outside: a 2-pixel ring around the box shows none of the colour (other
         * objects are at least max(3, 4%) pixels away). */
        for (int y = y0 - 2; y < y1 + 2; y++)
            for (int x = x0 - 2; x < x1 + 2; x++) {
                if (x < 0 || y < 0 || x >= n || y >= n || (x >= x0 && x < x1 && y >= y0 && y < y1)) continue;
                if (linf(rgb + ((size_t)y * n + x) * 3, c) <= NEAR) {
                    (*bad)++;
                    fprintf(stderr, "object colour outside its box at %d,%d (box %d,%d,%d,%d)\n", x, y, x0, y0,
                            o->bb[2], o->bb[3]);
                    y = y1 + 2;
                    break;
                }
            }
    }
}

static void check_render(void) {
    static const int sizes[] = {48, 96, 128, 256};
    xv_rng r;
    xv_rng_seed(&r, 99);
    int bad = 0, objects = 0, shapes_seen[XV_SYNTH_N_SHAPES] = {0};
    for (int z = 0; z < 4; z++) {
        int n = sizes[z];
        uint8_t *rgb = malloc((size_t)n * n * 3);
        for (int t = 0; t < 150; t++) {
            xv_synth_scene s;
            CHECK_OK(xv_synth_sample_scene(&r, n, 2, 4, &s));
            CHECK_OK(xv_synth_render(&s, rgb));
            check_object_pixels(&s, rgb, &bad);
            objects += s.n;
            for (int k = 0; k < s.n; k++) shapes_seen[s.obj[k].shape]++;
        }
        free(rgb);
    }
    CHECK(bad == 0, "%d of %d objects not tight or not coloured", bad, objects);
    for (int k = 0; k < XV_SYNTH_N_SHAPES; k++) CHECK(shapes_seen[k] > 20, "shape %d drawn %d times", k, shapes_seen[k]);
}

/* Sizes follow the classes: every large extent at least 1.4x every small one. */
static void check_sizes(void) {
    xv_rng r;
    xv_rng_seed(&r, 3);
    float max_small = 0, min_large = 1e9f;
    for (int t = 0; t < 300; t++) {
        xv_synth_scene s;
        CHECK_OK(xv_synth_sample_scene(&r, 200, 2, 4, &s));
        for (int k = 0; k < s.n; k++) {
            float e = s.obj[k].extent / 200.0f;
            if (s.obj[k].size == XV_SIZE_SMALL && e > max_small) max_small = e;
            if (s.obj[k].size == XV_SIZE_LARGE && e < min_large) min_large = e;
        }
    }
    CHECK(min_large / max_small >= 1.4f, "large/small extents %.3f / %.3f", min_large, max_small);
}

/* Every blend of two backgrounds stays >= 60 from every object colour (the
 * noise, at most 12, keeps it >= 48 > NEAR). */
static void check_palette(void) {
    int worst = 255;
    for (int a = 0; a < XV_SYNTH_N_BACKGROUNDS; a++)
        for (int b = 0; b < XV_SYNTH_N_BACKGROUNDS; b++)
            for (int t = 0; t <= 64; t++)
                for (int c = 0; c < XV_SYNTH_N_COLOURS; c++) {
                    int d = 0;
                    for (int ch = 0; ch < 3; ch++) {
                        double v = xv_synth_background_rgb[a][ch] + (xv_synth_background_rgb[b][ch] - xv_synth_background_rgb[a][ch]) * t / 64.0;
                        double x = v - xv_synth_colour_rgb[c][ch];
                        int ax = (int)(x < 0 ? -x : x);
                        d = ax > d ? ax : d;
                    }
                    worst = d < worst ? d : worst;
                }
    CHECK(worst >= 60, "a background blend comes within %d of an object colour", worst);
    for (int a = 0; a < XV_SYNTH_N_COLOURS; a++)
        for (int b = a + 1; b < XV_SYNTH_N_COLOURS; b++)
            CHECK(linf(xv_synth_colour_rgb[a], xv_synth_colour_rgb[b]) >= 85, "colours %d and %d too close", a, b);
}

/* JPEG at quality 90 with full chroma stays close to the rendering. */
static void check_jpeg(void) {
    xv_rng r;
    xv_rng_seed(&r, 11);
    xv_synth_scene s;
    CHECK_OK(xv_synth_sample_scene(&r, 128, 4, 4, &s));
    uint8_t *rgb = malloc(128 * 128 * 3), *jpg = NULL;
    CHECK_OK(xv_synth_render(&s, rgb));
    size_t len = 0;
    CHECK_OK(xv_jpeg_encode(rgb, 128, 128, 90, &jpg, &len));
    xv_image im = {0};
    CHECK_OK(xv_image_decode(jpg, len, "synth.jpg", &im));
    if (im.rgb) {
        double err = 0;
        for (int k = 0; k < 128 * 128 * 3; k++) err += abs((int)im.rgb[k] - (int)rgb[k]);
        err /= 128 * 128 * 3;
        /* Quality 90 4:4:4: a mean error of about 1-2 levels; 4 means broken colours. */
        CHECK(err < 4.0, "JPEG mean abs error %.2f levels", err);
    }
    CHECK(xv_jpeg_encode(rgb, 0, 10, 90, &jpg, &len) == XV_ERR_INVALID_ARG, "zero width accepted");
    CHECK(xv_jpeg_encode(rgb, 10, 10, 0, &jpg, &len) == XV_ERR_INVALID_ARG, "quality 0 accepted");
    xv_image_free(&im);
    free(jpg);
    free(rgb);
}

static void check_bad_params(const char *root) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bad", root);
    xv_synth_params p = small_params(1, 1);
    p.size = 20;
    CHECK(xv_synth_generate(&p, dir, NULL) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "--size"),
          "size 20: %s", xv_error_message());
    p = small_params(1, 1);
    p.min_objects = 3, p.max_objects = 2;
    CHECK(xv_synth_generate(&p, dir, NULL) == XV_ERR_INVALID_ARG, "objects 3..2 accepted");
    p = small_params(1, 1);
    CHECK(xv_synth_generate(&p, "/proc/xv_synth_no_such_dir", NULL) == XV_ERR_IO, "unwritable folder: %s",
          xv_error_message());
    xv_rng r;
    xv_rng_seed(&r, 1);
    xv_synth_scene s;
    CHECK(xv_synth_sample_scene(&r, 128, 0, 2, &s) == XV_ERR_INVALID_ARG, "0 objects accepted");
    CHECK(xv_synth_sample_scene(&r, 5000, 2, 2, &s) == XV_ERR_INVALID_ARG, "size 5000 accepted");
}

int main(void) {
    char root[64];
    if (!xv_test_scratch_dir("xv_test_synth", root, sizeof root)) return xv_test_skip("mkdtemp failed");
    check_determinism(root);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/seed5_t1", root);
    check_pretrain_files(dir);
    check_ablation_files(dir);
    check_finetune_files(dir);
    check_vocab(dir);
    check_palette();
    check_sizes();
    check_render();
    check_jpeg();
    check_bad_params(root);
    remove_tree(root);
    return xv_test_finish("test_synth");
}
