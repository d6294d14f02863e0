/* The pretraining loader on a generated data set of 20 JPEG images (image-text
 * and region records): batch shapes and values, a hand-checked region record,
 * sharding, determinism, resume, and bad data. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "data/caption.h"
#include "data/base64.h"
#include "data/image.h"
#include "data/image_write.h"
#include "data/masking.h"
#include "data/pretrain_data.h"
#include "data/pretrain_sample.h"
#include "data/tokenizer.h"
#include "testutil.h"

enum { N_IMAGES = 20 };
static char g_dir[64];
static xv_tokenizer *g_tok;

static const char *const k_words[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",     "red",   "blue",  "green", "car",  "dog",  "cat",
    "on",    "the",   "road",  "street", "scene", "whole", "tree",  "sky",   "big",   "small", "man", "with",
    "hat",   "photo", "of",    "##s",   "left",  "right", "and",   "near",  "white", "black", "house", "park"};
enum { N_WORDS = sizeof k_words / sizeof *k_words };
static const char *const k_colors[] = {"red", "blue", "green", "white", "black"};
static const char *const k_objects[] = {"car", "dog", "cat", "man", "tree", "house"};
static const char *const k_places[] = {"road", "street", "park"};

static char *path_of(const char *fmt, const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    char rel[256];
    snprintf(rel, sizeof rel, fmt, name);
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, rel);
    return buf[k];
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int image_w(int i) { return 160 + 8 * i; }
static int image_h(int i) { return 120 + 5 * i; }

/* A gradient with a few coloured rectangles, so every augmentation has work. */
static void make_image(xv_image *im, int w, int h, int seed) {
    xv_image_new(im, w, h, "test");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = xv_image_px(im, x, y);
            p[0] = (uint8_t)(x * 255 / w), p[1] = (uint8_t)(y * 255 / h), p[2] = (uint8_t)(seed * 37);
        }
    for (int r = 0; r < 3; r++) {
        int x0 = (seed * 13 + r * 41) % (w / 2), y0 = (seed * 7 + r * 29) % (h / 2);
        for (int y = y0; y < y0 + h / 3; y++)
            for (int x = x0; x < x0 + w / 3; x++) {
                uint8_t *p = xv_image_px(im, x, y);
                p[0] = (uint8_t)(60 * r), p[1] = 200, p[2] = (uint8_t)(255 - 60 * r);
            }
    }
}

/* The image-text caption of record i (with a list for every third record). */
static void caption_of(int i, int variant, char *out, size_t cap) {
    snprintf(out, cap, "A %s %s on the %s%s", k_colors[(i + variant) % 5], k_objects[i % 6], k_places[i % 3],
             variant ? " near a tree." : "!");
}

/* it/part-{0,1,2}: 20 image-text records by path; b64.jsonl: 6 records in
 * base64; rg/part-{0,1}: 20 region records; hand.jsonl: the hand-checked one. */
static void make_dataset(void) {
    mkdir(path_of("%s", "img"), 0755);
    mkdir(path_of("%s", "it"), 0755);
    mkdir(path_of("%s", "rg"), 0755);
    FILE *it[3], *rg[2], *b64 = fopen(path_of("%s", "b64.jsonl"), "wb");
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "it/part-%d", k);
        it[k] = fopen(path_of("%s", name), "wb");
    }
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "rg/part-%d", k);
        rg[k] = fopen(path_of("%s", name), "wb");
    }
    for (int i = 0; i < N_IMAGES; i++) {
        int w = image_w(i), h = image_h(i);
        xv_image im;
        make_image(&im, w, h, i);
        char name[32], c0[128], c1[128];
        snprintf(name, sizeof name, "img%02d.jpg", i);
        CHECK_OK(xv_jpeg_write(path_of("img/%s", name), im.rgb, w, h, 90));
        caption_of(i, 0, c0, sizeof c0);
        caption_of(i, 1, c1, sizeof c1);
        if (i % 3 == 0)
            fprintf(it[i * 3 / N_IMAGES], "{\"image\": \"img/%s\", \"caption\": [\"%s\", \"%s\"]}\n", name, c0, c1);
        else
            fprintf(it[i * 3 / N_IMAGES], "{\"image\": \"img/%s\", \"caption\": \"%s\"}\n", name, c0);
        if (i < 6) {
            uint8_t *jpg;
            size_t n;
            xv_jpeg_encode(im.rgb, w, h, 90, &jpg, &n);
            char *enc = xv_base64_encode(jpg, n);
            fprintf(b64, "{\"binary\": \"%s\", \"caption\": \"%s\"}\n", enc, c0);
            free(enc);
            free(jpg);
        }
        /* Regions: 2..4 elems inside the image, an image caption on even records. */
        fprintf(rg[i % 2], "{\"image\": \"img/%s\", ", name);
        if (i % 2 == 0) fprintf(rg[i % 2], "\"caption\": \"%s\", ", c0);
        fprintf(rg[i % 2], "\"elems\": [");
        int n_elems = 2 + i % 3;
        for (int e = 0; e < n_elems; e++) {
            int bx = (i * 11 + e * 37) % (w / 2), by = (i * 5 + e * 23) % (h / 2);
            int bw = 20 + (i * 7 + e * 13) % (w / 2), bh = 15 + (i * 3 + e * 17) % (h / 2);
            fprintf(rg[i % 2], "%s{\"bb\": [%d.%d, %d, %d, %d], \"caption\": \"%s\"", e ? ", " : "", bx, e, by, bw, bh,
                    k_objects[(i + e) % 6]);
            if (e % 2) fprintf(rg[i % 2], ", \"attributes\": [\"%s\", \"big\"]", k_colors[e % 5]);
            fprintf(rg[i % 2], "}");
        }
        fprintf(rg[i % 2], "]}\n");
        xv_image_free(&im);
    }
    for (int k = 0; k < 3; k++) fclose(it[k]);
    for (int k = 0; k < 2; k++) fclose(rg[k]);
    fclose(b64);

    xv_image im;
    make_image(&im, 320, 240, 99);
    CHECK_OK(xv_jpeg_write(path_of("img/%s", "hand.jpg"), im.rgb, 320, 240, 90));
    xv_image_free(&im);
    write_text(path_of("%s", "hand.jsonl"),
               "{\"image\": \"img/hand.jpg\", \"caption\": \"a street scene\", \"elems\": ["
               "{\"bb\": [0, 0, 320, 240], \"caption\": \"the whole street\"}, "
               "{\"bb\": [-20, 10, 60, 40], \"caption\": \"car\", \"attributes\": [\"red\"]}, "
               "{\"bb\": [300, 200, 100, 100], \"caption\": \"dog\"}]}\n");

    char vocab[1024] = "";
    for (int i = 0; i < N_WORDS; i++) strcat(strcat(vocab, k_words[i]), "\n");
    write_text(path_of("%s", "vocab.txt"), vocab);
}

static xv_pretrain_config config(xv_pretrain_kind kind, const char *const *files, int n_files) {
    static char vocab[512], root[512];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_dir);
    snprintf(root, sizeof root, "%s", g_dir);
    xv_pretrain_config c = xv_pretrain_config_default(kind);
    c.files = files;
    c.n_files = n_files;
    c.vocab_path = vocab;
    c.image_root = root;
    c.image_key = "image";
    c.is_image_rpath = true;
    c.num_workers = 2;
    c.batch_size = kind == XV_PRETRAIN_IMAGES ? 6 : 12;
    c.max_images = 4;
    c.max_words = 30;
    c.max_tokens = 8;
    c.masking.max_masks = 3;
    return c;
}

static int32_t id_of(const char *w) { return xv_tokenizer_token_to_id(g_tok, w); }

/* The rows the loader should produce for a caption: pre_caption, WordPiece,
 * [CLS] + tokens[:max_tokens-1]. */
static int expected_ids(const char *caption, int max_words, int max_tokens, int32_t *out) {
    char *clean;
    size_t n;
    if (xv_pre_caption(caption, strlen(caption), max_words, &clean, &n) != XV_OK) return 0;
    xv_ids ids = {0};
    xv_tokenize(g_tok, clean, n, &ids);
    free(clean);
    out[0] = id_of("[CLS]");
    int len = 1;
    for (size_t i = 0; i < ids.n && len < max_tokens; i++) out[len++] = ids.v[i];
    xv_ids_free(&ids);
    return len;
}

/* Invariants of one text row; returns its length. */
static int check_row(const xv_pretrain_batch *b, int r, const char *what) {
    const int32_t *ids = b->text_ids + r * b->text_len, *atts = b->text_atts + r * b->text_len;
    const int32_t *masked = b->text_ids_masked + r * b->text_len;
    const int32_t *pos = b->masked_pos + r * b->max_masks, *mids = b->masked_ids + r * b->max_masks;
    int n = 0;
    while (n < b->text_len && atts[n]) n++;
    int bad = ids[0] != id_of("[CLS]") || n < 2;
    for (int i = n; i < b->text_len; i++) bad |= atts[i] != 0 || ids[i] != 0 || masked[i] != 0;
    for (int i = 1; i < n; i++) bad |= ids[i] == 0 || ids[i] == id_of("[CLS]");
    CHECK(!bad, "%s row %d: [CLS] + tokens, mask 1..1 0..0, padding 0", what, r);
    /* Masked ids are the original ids at in-range masked positions; nothing else changed. */
    xv_masking_config mc = xv_masking_default();
    mc.max_masks = b->max_masks;
    int n_pred = xv_masking_n_pred(&mc, n), k = 0;
    bool is_masked[64] = {0};
    for (; k < b->max_masks && mids[k] != -100; k++) {
        bad |= pos[k] < 1 || pos[k] >= n || mids[k] != ids[pos[k]];
        if (pos[k] >= 1 && pos[k] < 64) is_masked[pos[k]] = true;
    }
    for (int j = k; j < b->max_masks; j++) bad |= pos[j] != 0 || mids[j] != -100;
    for (int i = 0; i < n; i++) bad |= !is_masked[i] && masked[i] != ids[i];
    CHECK(!bad && k == n_pred, "%s row %d: %d masked positions (expected %d) consistent with the text", what, r, k,
          n_pred);
    return n;
}

static void check_image_values(const xv_pretrain_batch *b, const char *what) {
    /* Normalised u8: (0 - mean)/std .. (1 - mean)/std, min -1.792 (R), max 2.146 (B). */
    size_t n = (size_t)b->n_images * 3 * b->res * b->res;
    int bad = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        float v = b->image[i];
        bad += !(v >= -1.8f && v <= 2.15f);
        sum += v;
    }
    CHECK(!bad && sum != 0, "%s: %d image values outside the normalised range", what, bad);
}

static void test_image_text(void) {
    const char *files[] = {path_of("%s", "it")};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    xv_pretrain_loader *l;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 42, &l));
    if (!l) return;
    /* Every row must be one of the captions' encodings. */
    int32_t want[2 * N_IMAGES][16];
    int want_len[2 * N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++)
        for (int v = 0; v < 2; v++) {
            char cap[128];
            caption_of(i, v, cap, sizeof cap);
            want_len[2 * i + v] = expected_ids(cap, c.max_words, c.max_tokens, want[2 * i + v]);
        }
    int truncated = 0;
    for (int bi = 0; bi < 8; bi++) {
        xv_pretrain_batch b;
        CHECK_OK(xv_pretrain_next(l, &b));
        CHECK(b.n_images == 6 && b.n_texts == 6 && b.res == 224 && b.text_len == 8 && b.max_masks == 3,
              "image-text batch shape: %d images", b.n_images);
        CHECK(xv_pretrain_last_worker(l) == bi % 2 && xv_pretrain_batches_consumed(l) == bi + 1,
              "round robin over the 2 workers");
        CHECK(!b.image_atts && !b.idx_to_group_img && !b.target_bbox && !b.is_image, "no region arrays");
        check_image_values(&b, "image-text");
        for (int r = 0; r < b.n_texts; r++) {
            int n = check_row(&b, r, "image-text");
            int found = 0;
            for (int k = 0; k < 2 * N_IMAGES && !found; k++)
                found = want_len[k] == n && !memcmp(want[k], b.text_ids + r * b.text_len, (size_t)n * 4);
            CHECK(found, "row %d is the encoding of a caption of the data set", r);
            truncated += n == c.max_tokens;
        }
    }
    CHECK(truncated > 0, "long captions are cut to max_tokens");
    xv_pretrain_counters k = xv_pretrain_get_counters(l);
    CHECK(k.samples == 48 && k.texts == 48 && k.bad_json + k.missing_image + k.corrupt_image + k.bad_caption == 0,
          "counters: %lld samples", (long long)k.samples);
    xv_pretrain_close(l);

    /* The same records with base64 images (the 4M config's form). */
    const char *b64files[] = {path_of("%s", "b64.jsonl")};
    c = config(XV_PRETRAIN_IMAGES, b64files, 1);
    c.image_key = "binary";
    c.is_image_rpath = false;
    c.batch_size = 4;
    c.num_workers = 1;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 42, &l));
    if (!l) return;
    xv_pretrain_batch b;
    for (int bi = 0; bi < 3; bi++) { /* 12 samples out of 6 records: the stream repeats */
        CHECK_OK(xv_pretrain_next(l, &b));
        CHECK(b.n_images == 4, "base64 batch of 4");
        check_image_values(&b, "base64");
        for (int r = 0; r < b.n_texts; r++) check_row(&b, r, "base64");
    }
    k = xv_pretrain_get_counters(l);
    CHECK(k.samples == 12 && k.corrupt_image == 0, "base64 images decode");
    xv_pretrain_close(l);
}

static void test_tokenized(void) {
    write_text(path_of("%s", "tok.jsonl"), "{\"image\": \"img/img00.jpg\", \"caption\": \" red car ##s zebra the \"}\n");
    const char *files[] = {path_of("%s", "tok.jsonl")};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    c.tokenized = true;
    c.batch_size = 1;
    c.num_workers = 1;
    xv_pretrain_loader *l;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 1, &l));
    if (!l) return;
    xv_pretrain_batch b;
    CHECK_OK(xv_pretrain_next(l, &b));
    const int32_t want[] = {id_of("[CLS]"), id_of("red"), id_of("car"), id_of("##s"), id_of("[UNK]"), id_of("the"), 0};
    CHECK(!memcmp(b.text_ids, want, sizeof want), "pre-tokenized: split on spaces, unknown -> [UNK], no cleaning");
    xv_pretrain_close(l);
}

/* The record of hand.jsonl: the only elem wholly inside the image is the
 * whole image, so the crop is the whole 320x240 image; the partly outside
 * "red car" box keeps 40x40 of 60x40 (> 0.5), the "dog" box 20x40 of 100x100
 * (< 0.5) is dropped. */
static void test_region_by_hand(void) {
    const char *files[] = {path_of("%s", "hand.jsonl")};
    xv_pretrain_config c = config(XV_PRETRAIN_REGIONS, files, 1);
    c.max_images = 1;
    c.batch_size = 3;
    c.num_workers = 1;
    xv_pretrain_loader *l;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 5, &l));
    if (!l) return;
    int flips[2] = {0, 0};
    const int32_t car[] = {id_of("[CLS]"), id_of("red"), id_of("car"), 0};
    const int32_t whole[] = {id_of("[CLS]"), id_of("the"), id_of("whole"), id_of("street"), 0};
    const int32_t scene[] = {id_of("[CLS]"), id_of("a"), id_of("street"), id_of("scene"), 0};
    for (int bi = 0; bi < 16; bi++) {
        xv_pretrain_batch b;
        CHECK_OK(xv_pretrain_next(l, &b));
        CHECK(b.n_images == 1 && b.n_texts == 3 && b.n_atts == 50, "one image, 3 texts, 1 + 7x7 atts");
        int seen = 0;
        for (int r = 0; r < 3; r++) {
            check_row(&b, r, "hand");
            const int32_t *ids = b.text_ids + r * b.text_len, *atts = b.image_atts + r * 50;
            const float *t = b.target_bbox + 4 * r;
            int ones = 0;
            for (int j = 0; j < 50; j++) ones += atts[j];
            CHECK(b.idx_to_group_img[r] == 0, "group 0");
            if (!memcmp(ids, scene, sizeof scene)) {
                seen |= 1;
                CHECK(b.is_image[r] == 1 && ones == 50 && t[0] == 0.5f && t[1] == 0.5f && t[2] == 1 && t[3] == 1,
                      "image caption: is_image 1, all-ones mask, target (0.5, 0.5, 1, 1)");
            } else if (!memcmp(ids, whole, sizeof whole)) {
                seen |= 2;
                CHECK(b.is_image[r] == 0 && ones == 50 && fabsf(t[0] - 0.5f) < 1e-6f && fabsf(t[2] - 1) < 1e-6f,
                      "whole-image elem: is_image 0, every patch, centred full box");
            } else if (!memcmp(ids, car, sizeof car)) {
                seen |= 4;
                /* Inside part (0,10,40,40) -> x·224/320, y·224/240: (0, 9.33, 28, 37.33), or
                 * flipped x = 320-40 -> 196. Rows 0..1 (y 9.33..46.67 over 32 px patches);
                 * column 0, or column 6 when flipped. */
                bool flipped = t[0] > 0.5f;
                flips[flipped]++;
                float cx = flipped ? 210.0f / 224 : 14.0f / 224;
                /* float32 targets of double maths: within 1 ulp-ish (1e-6). */
                CHECK(fabsf(t[0] - cx) < 1e-6f && fabsf(t[1] - (9.3333333f + 18.666667f) / 224) < 1e-6f &&
                          fabsf(t[2] - 0.125f) < 1e-6f && fabsf(t[3] - 37.333333f / 224) < 1e-6f,
                      "red car target (%g %g %g %g)", t[0], t[1], t[2], t[3]);
                int col = flipped ? 6 : 0;
                CHECK(ones == 3 && atts[0] == 1 && atts[1 + col] == 1 && atts[1 + 7 + col] == 1,
                      "red car mask: CLS + patches (row 0, col %d), (row 1, col %d)", col, col);
                CHECK(b.is_image[r] == 0, "region text: is_image 0");
            }
        }
        CHECK(seen == 7, "the three texts: caption, whole street, red car (not the dog)");
    }
    CHECK(flips[0] > 0 && flips[1] > 0, "both flip outcomes occurred (%d / %d)", flips[0], flips[1]);
    xv_pretrain_counters k = xv_pretrain_get_counters(l);
    CHECK(k.bad_box == 0 && k.samples == 16 && k.texts == 48 && k.padded_texts == 0 && k.dropped_texts == 0,
          "hand counters: %lld bad boxes, %lld texts", (long long)k.bad_box, (long long)k.texts);
    xv_pretrain_close(l);
}

/* image_atts of §2.11 on boxes worked out by hand (224 px, 32 px patches). */
static void test_image_atts_rule(void) {
    int32_t a[50];
    xv_region_image_atts(33, 40, 10, 10, 32, 7, a);
    int ones = 0;
    for (int j = 0; j < 50; j++) ones += a[j];
    CHECK(ones == 2 && a[0] && a[1 + 7 * 1 + 1], "(33,40,10,10): patch (1,1) only");
    xv_region_image_atts(0, 0, 224, 224, 32, 7, a);
    ones = 0;
    for (int j = 0; j < 50; j++) ones += a[j];
    CHECK(ones == 50, "whole image: all patches");
    xv_region_image_atts(223.5, 100, 0.4, 0.1, 32, 7, a);
    ones = 0;
    for (int j = 0; j < 50; j++) ones += a[j];
    CHECK(ones == 2 && a[1 + 7 * 3 + 6], "a sliver at the right edge still gets one patch (3,6)");
    xv_region_image_atts(31.9, 64, 32.2, 32, 32, 7, a); /* x 31.9..64.1: columns 0..2, y 64..96: row 2 */
    ones = 0;
    for (int j = 0; j < 50; j++) ones += a[j];
    CHECK(ones == 4 && a[1 + 14] && a[1 + 15] && a[1 + 16], "(31.9,64,32.2,32): row 2, columns 0-2");
}

/* Box -> mask consistency on generated records, where the mask is recomputed
 * from the float target (a box edge within 1e-3 px of a patch border is
 * ambiguous after float rounding and is not judged). */
static int atts_agree(const int32_t *atts, const float *t, int res, int ps) {
    int n = res / ps;
    double w = (double)t[2] * res, h = (double)t[3] * res, x = (double)t[0] * res - w / 2, y = (double)t[1] * res - h / 2;
    double edges[4] = {x / ps, (x + w) / ps, y / ps, (y + h) / ps};
    for (int e = 0; e < 4; e++)
        if (fabs(edges[e] - nearbyint(edges[e])) < 1e-3 / ps) return -1;
    int32_t want[1 + 64 * 64];
    xv_region_image_atts(x, y, w, h, ps, n, want);
    return !memcmp(want, atts, (size_t)(1 + n * n) * sizeof *atts);
}

static void test_region_batches(void) {
    const char *files[] = {path_of("%s", "rg")};
    xv_pretrain_config c = config(XV_PRETRAIN_REGIONS, files, 1);
    /* 4 records give at most 20 texts: 48 slots take the padding rule that
     * repeats the list, so the records' own text order stays visible. */
    c.batch_size = 48;
    xv_pretrain_loader *l;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 9, &l));
    if (!l) return;
    int judged = 0, captions = 0;
    int64_t padded = 0;
    for (int bi = 0; bi < 6; bi++) {
        xv_pretrain_batch b;
        CHECK_OK(xv_pretrain_next(l, &b));
        CHECK(b.n_images == 4 && b.n_texts == 48 && b.n_atts == 50, "region batch: 4 images, 48 texts");
        check_image_values(&b, "regions");
        int bad = 0, n_txt = 0;
        for (int r = 1; r < b.n_texts && !n_txt; r++)
            if (b.idx_to_group_img[r] == 0 && b.idx_to_group_img[r - 1] != 0) n_txt = r;
        padded += b.n_texts - n_txt;
        for (int r = 0; r < b.n_texts; r++) {
            check_row(&b, r, "regions");
            int g = b.idx_to_group_img[r];
            const float *t = b.target_bbox + 4 * r;
            const int32_t *atts = b.image_atts + r * 50;
            bad |= g < 0 || g >= b.n_images || atts[0] != 1;
            for (int j = 0; j < 4; j++) bad |= !(t[j] >= 0 && t[j] <= 1);
            int ones = 0;
            for (int j = 1; j < 50; j++) ones += atts[j];
            bad |= (ones < 1) << 1;
            if (r >= n_txt) { /* the repeated list */
                bad |= (g != b.idx_to_group_img[r % n_txt] || t[0] != b.target_bbox[4 * (r % n_txt)]) << 2;
                continue;
            }
            bad |= (r > 0 && g < b.idx_to_group_img[r - 1]) << 3; /* records in order */
            if (b.is_image[r]) {
                captions++;
                bad |= (ones != 49 || t[0] != 0.5f || t[1] != 0.5f || t[2] != 1 || t[3] != 1) << 4;
                bad |= (r > 0 && b.idx_to_group_img[r - 1] == g) << 5; /* the caption first in its record */
            } else {
                int a = atts_agree(atts, t, 224, 32);
                bad |= (a == 0) << 6;
                judged += a == 1;
            }
        }
        CHECK(n_txt >= 4 && bad == 0, "batch %d (%d texts): groups, masks, targets in [0,1], caption rows (bad 0x%x)",
              bi, n_txt, bad);
    }
    CHECK(judged > 20 && captions > 4, "%d region masks checked against their targets, %d image captions", judged,
          captions);
    xv_pretrain_counters k = xv_pretrain_get_counters(l);
    CHECK(k.samples == 24 && k.padded_texts == padded && k.texts == 6 * 48 - padded,
          "padding counted: %lld texts made, %lld padded", (long long)k.texts, (long long)k.padded_texts);
    xv_pretrain_close(l);

    /* Fewer slots than texts: a random subset, the rest counted as dropped. */
    c.batch_size = 5;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 9, &l));
    if (!l) return;
    xv_pretrain_batch b;
    for (int bi = 0; bi < 4; bi++) {
        CHECK_OK(xv_pretrain_next(l, &b));
        CHECK(b.n_texts == 5, "subset of 5 texts");
    }
    k = xv_pretrain_get_counters(l);
    CHECK(k.dropped_texts == k.texts - 20 && k.padded_texts == 0, "dropped texts counted");
    xv_pretrain_close(l);
}

/* The collate's choice: subsets, padding by sampling, padding by repeating. */
static void test_choose_texts(void) {
    xv_rng r;
    xv_rng_seed(&r, 3);
    int32_t keep[16];
    CHECK(xv_region_choose_texts(&r, 10, 4, keep) == 0, "subset: no padding");
    int distinct = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) distinct &= keep[i] != keep[j];
    CHECK(distinct, "a subset without repeats");
    CHECK(xv_region_choose_texts(&r, 6, 10, keep) == 4, "4 padded");
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= keep[i] == i;
    for (int i = 6; i < 10; i++)
        for (int j = 6; j < i; j++) ok &= keep[i] != keep[j]; /* random.sample: no repeats among the pads */
    CHECK(ok, "all texts in order, then a sample of them");
    CHECK(xv_region_choose_texts(&r, 3, 8, keep) == 5, "5 padded");
    CHECK(keep[3] == 0 && keep[4] == 1 && keep[5] == 2 && keep[6] == 0 && keep[7] == 1, "too few: the list repeated");
}

/* A batch's bytes as one hash (every array, images included). */
static uint64_t batch_hash(const xv_pretrain_batch *b) {
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(p, n)                                                                                                    \
    for (size_t i_ = 0; p && i_ < (size_t)(n); i_++) h = (h ^ ((const unsigned char *)(p))[i_]) * 0x100000001b3ull
    size_t T = (size_t)b->n_texts, L = (size_t)b->text_len, M = (size_t)b->max_masks;
    MIX(b->image, (size_t)b->n_images * 3 * b->res * b->res * 4);
    MIX(b->text_ids, T * L * 4);
    MIX(b->text_atts, T * L * 4);
    MIX(b->text_ids_masked, T * L * 4);
    MIX(b->masked_pos, T * M * 4);
    MIX(b->masked_ids, T * M * 4);
    MIX(b->idx_to_group_img, T * 4);
    MIX(b->image_atts, T * (size_t)b->n_atts * 4);
    MIX(b->target_bbox, T * 16);
    MIX(b->is_image, T * 4);
#undef MIX
    return h;
}

static void hashes(xv_pretrain_loader *l, int n, uint64_t *out) {
    for (int i = 0; i < n; i++) {
        xv_pretrain_batch b;
        out[i] = xv_pretrain_next(l, &b) == XV_OK ? batch_hash(&b) : (uint64_t)i;
    }
}

static void test_determinism_and_resume(xv_pretrain_kind kind) {
    const char *it[] = {path_of("%s", "it")}, *rg[] = {path_of("%s", "rg")};
    xv_pretrain_config c = config(kind, kind == XV_PRETRAIN_IMAGES ? it : rg, 1);
    const char *what = kind == XV_PRETRAIN_IMAGES ? "images" : "regions";
    enum { N = 10, CUT = 4 };
    uint64_t a[N], b[N], d[N];
    xv_pretrain_loader *l1, *l2, *l3;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 11, &l1));
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 11, &l2));
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 12, &l3));
    if (!l1 || !l2 || !l3) return;
    hashes(l1, N, a);
    hashes(l2, N, b);
    hashes(l3, N, d);
    CHECK(!memcmp(a, b, sizeof a), "%s: same seed and workers -> bitwise identical batches", what);
    int differ = 0;
    for (int i = 0; i < N; i++) differ += a[i] != d[i];
    CHECK(differ == N, "%s: another seed -> other batches (%d of %d differ)", what, differ, N);
    xv_pretrain_close(l2);
    xv_pretrain_close(l3);

    /* Save after CUT batches (with more prefetched), continue; a new loader
     * restored from the state must continue identically. */
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 11, &l2));
    if (!l2) return;
    hashes(l2, CUT, b);
    int n = xv_pretrain_state_len(l2);
    int64_t *state = malloc((size_t)n * sizeof *state);
    CHECK_OK(xv_pretrain_state_save(l2, state, n));
    xv_pretrain_counters k_saved = xv_pretrain_get_counters(l2);
    usleep(200 * 1000); /* let the workers run ahead: their prefetched batches must not leak into the state */
    CHECK(!strcmp(xv_pretrain_state_name(l2, 0), "version") && !strcmp(xv_pretrain_state_name(l2, 9), "w0.epoch") &&
              !strcmp(xv_pretrain_state_name(l2, n - 1), "w1.outside_root"),
          "state names");
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 11, &l3));
    if (!l3) return;
    CHECK_OK(xv_pretrain_state_restore(l3, state, n));
    xv_pretrain_counters k_restored = xv_pretrain_get_counters(l3);
    CHECK(!memcmp(&k_saved, &k_restored, sizeof k_saved), "%s: counters restored", what);
    hashes(l3, N - CUT, d);
    CHECK(!memcmp(d, a + CUT, (N - CUT) * sizeof *a), "%s: resumed stream = the rest of the original", what);
    xv_pretrain_batch bb;
    xv_pretrain_next(l3, &bb);
    CHECK(xv_pretrain_batches_consumed(l3) == N + 1, "batch numbering continues (%lld)",
          (long long)xv_pretrain_batches_consumed(l3));
    /* Rewinding the first loader itself works too. */
    CHECK_OK(xv_pretrain_state_restore(l2, state, n));
    hashes(l2, N - CUT, d);
    CHECK(!memcmp(d, a + CUT, (N - CUT) * sizeof *a), "%s: restore into a running loader", what);

    /* Refusals leave the loader going on as before. */
    c.num_workers = 1;
    xv_pretrain_loader *l4;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 11, &l4));
    if (l4) {
        CHECK(xv_pretrain_state_restore(l4, state, n) == XV_ERR_INVALID_ARG, "another worker count refused: %s",
              xv_error_message());
        xv_pretrain_close(l4);
    }
    state[6] ^= 1; /* the configuration hash */
    CHECK(xv_pretrain_state_restore(l3, state, n) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "config_hash"),
          "another configuration refused: %s", xv_error_message());
    state[6] ^= 1;
    state[9 + 2] += 3; /* worker 0's offset, now inside a line */
    CHECK(xv_pretrain_state_restore(l3, state, n) != XV_OK, "an offset inside a line is refused: %s",
          xv_error_message());
    /* l3 has handed out batches up to index N; l1 gives the reference N..N+3. */
    uint64_t ref[4], after[3];
    hashes(l1, 4, ref);
    hashes(l3, 3, after);
    CHECK(!memcmp(after, ref + 1, sizeof after), "%s: after a refused restore the stream goes on unchanged", what);
    free(state);
    xv_pretrain_close(l1);
    xv_pretrain_close(l2);
    xv_pretrain_close(l3);
}

/* Ranks read disjoint shares whose union is the data set. */
static void test_sharding(void) {
    const char *files[] = {path_of("%s", "it")};
    int64_t samples = 0, lines = 0;
    for (int world = 1; world <= 3; world++) {
        samples = lines = 0;
        for (int rank = 0; rank < world; rank++) {
            xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
            c.repeat = false;
            c.batch_size = 4;
            xv_pretrain_loader *l;
            CHECK_OK(xv_pretrain_open(&c, rank, world, 3, &l));
            if (!l) return;
            xv_pretrain_batch b;
            int64_t got = 0;
            while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) got += b.n_images;
            xv_pretrain_counters k = xv_pretrain_get_counters(l);
            /* 3 files of 7, 7, 6 records (i*3/20); world 2 splits them [0,1) and [1,3). */
            int64_t share = world == 1 ? 20 : world == 2 ? (rank == 0 ? 7 : 13) : (rank == 2 ? 6 : 7);
            CHECK(got == share && k.samples == share, "world %d rank %d: %lld samples, share %lld", world, rank,
                  (long long)got, (long long)share);
            samples += k.samples;
            lines += k.lines;
            xv_pretrain_close(l);
        }
        CHECK(samples == 20 && lines == 20, "world %d: every record read once (%lld)", world, (long long)samples);
    }
}

/* Bad data: each kind skipped, warned (file:line on stderr) and counted; the
 * batch is still full. */
static void test_bad_data(void) {
    write_text(path_of("%s", "img/garbage.jpg"), "\xff\xd8\xff\xe0 this is not a jpeg at all");
    FILE *f = fopen(path_of("%s", "img/img03.jpg"), "rb"), *g = fopen(path_of("%s", "img/truncated.jpg"), "wb");
    char buf[600];
    size_t n = fread(buf, 1, sizeof buf, f);
    fwrite(buf, 1, n, g);
    fclose(f);
    fclose(g);
    write_text(path_of("%s", "bad.jsonl"),
               "{\"image\": \"img/img00.jpg\", \"caption\": \"a red car\"}\n"         /* 1 good */
               "{\"image\": \"img/missing.jpg\", \"caption\": \"a red car\"}\n"       /* 2 missing image */
               "{\"image\": \"img/garbage.jpg\", \"caption\": \"a red car\"}\n"       /* 3 corrupt */
               "{\"image\": \"img/img01.jpg\", \"caption\": \"a red car\"\n"          /* 4 malformed */
               "{\"image\": \"img/img01.jpg\", \"caption\": \"?! ...\"}\n"            /* 5 empty caption */
               "{\"image\": \"img/img02.jpg\", \"caption\": [\"a dog\", \"a cat\"]}\n" /* 6 good */
               "{\"image\": \"img/truncated.jpg\", \"caption\": \"a dog\"}\n"         /* 7 truncated JPEG */
               "{\"image\": \"img/img04.jpg\", \"caption\": \"the sky\"}\n"           /* 8 good */
               "{\"image\": \"img/img05.jpg\"}\n"                                     /* 9 no caption */
               "{\"caption\": \"a tree\"}\n"                                          /* 10 no image key */
               "{\"image\": \"img/img06.jpg\", \"caption\": \"a tree\"}\n");          /* 11 good */
    write_text(path_of("%s", "badrg.jsonl"),
               /* 1: one box outside the image (dropped), one good: the record is used */
               "{\"image\": \"img/img00.jpg\", \"elems\": [{\"bb\": [500, 10, 20, 20], \"caption\": \"dog\"}, "
               "{\"bb\": [10, 10, 50, 40], \"caption\": \"cat\"}]}\n"
               /* 2: only a degenerate box: skipped */
               "{\"image\": \"img/img01.jpg\", \"caption\": \"a car\", \"elems\": [{\"bb\": [10, 10, 0, 40], "
               "\"caption\": \"dog\"}]}\n"
               /* 3: an empty elem caption (dropped) next to a good elem */
               "{\"image\": \"img/img02.jpg\", \"elems\": [{\"bb\": [0, 0, 160, 120], \"caption\": \"...\"}, "
               "{\"bb\": [0, 0, 160, 120], \"caption\": \"a tree\"}]}\n"
               /* 4: a malformed bb: skipped (no elem left) */
               "{\"image\": \"img/img03.jpg\", \"elems\": [{\"bb\": [1, 2, 3], \"caption\": \"dog\"}]}\n"
               /* 5: good */
               "{\"image\": \"img/img04.jpg\", \"caption\": \"the park\", \"elems\": [{\"bb\": [5, 5, 60, 60], "
               "\"caption\": \"man\"}]}\n");
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.txt", g_dir);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);

    const char *files[] = {path_of("%s", "bad.jsonl")};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    c.repeat = false;
    c.batch_size = 4;
    c.num_workers = 1;
    xv_pretrain_loader *l;
    xv_pretrain_batch b;
    int n_full = 0, n_end = 0;
    xv_pretrain_counters k = {0}, kr = {0};
    if (xv_pretrain_open(&c, 0, 1, 2, &l) == XV_OK) {
        while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) n_full += b.n_images == 4;
        n_end = b.n_images == 0 && xv_pretrain_last_worker(l) == -1;
        k = xv_pretrain_get_counters(l);
        xv_pretrain_close(l);
    }
    const char *rfiles[] = {path_of("%s", "badrg.jsonl")};
    c = config(XV_PRETRAIN_REGIONS, rfiles, 1);
    c.repeat = false;
    c.batch_size = 6;
    c.max_images = 3;
    c.num_workers = 1;
    int rg_images = 0;
    if (xv_pretrain_open(&c, 0, 1, 2, &l) == XV_OK) {
        while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) rg_images += b.n_images;
        kr = xv_pretrain_get_counters(l);
        xv_pretrain_close(l);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    CHECK(n_full == 1 && n_end, "one full batch of the 4 good records, then the end");
    CHECK(k.lines == 11 && k.samples == 4 && k.missing_image == 2 && k.corrupt_image == 2 && k.bad_json == 1 &&
              k.bad_caption == 2,
          "image-text counters: lines %lld samples %lld missing %lld corrupt %lld json %lld caption %lld",
          (long long)k.lines, (long long)k.samples, (long long)k.missing_image, (long long)k.corrupt_image,
          (long long)k.bad_json, (long long)k.bad_caption);
    CHECK(rg_images == 3, "region records 1, 3, 5 used (%d)", rg_images);
    CHECK(kr.samples == 3 && kr.bad_box == 3 && kr.bad_caption == 1 && kr.no_region == 2,
          "region counters: samples %lld bad_box %lld bad_caption %lld no_region %lld", (long long)kr.samples,
          (long long)kr.bad_box, (long long)kr.bad_caption, (long long)kr.no_region);
    /* Every warning names the file and line. */
    uint8_t *log_bytes = NULL;
    size_t len = 0;
    (void)xv_fs_read_file(log, INT64_C(1) << 30, &log_bytes, &len);
    char *text = (char *)log_bytes;
    fprintf(stderr, "---- captured warnings ----\n%s---- end ----\n", text ? text : "");
    const char *want[] = {"bad.jsonl:2: skipped: image", "missing.jpg", "bad.jsonl:3: skipped: image",
                          "bad.jsonl:4: skipped: malformed JSON", "bad.jsonl:5: skipped: \"caption\": empty",
                          "bad.jsonl:7: skipped: image", "truncated", "bad.jsonl:9: skipped: \"caption\"",
                          "bad.jsonl:10: skipped: no image", "badrg.jsonl:1: dropped elem 0: box (500, 10, 20, 20) is outside",
                          "badrg.jsonl:2: dropped elem 0: box (10, 10, 0, 40) is degenerate",
                          "badrg.jsonl:2: skipped: no elem", "badrg.jsonl:3: dropped elem 0: empty",
                          "badrg.jsonl:4: dropped elem 0: \"bb\" is not"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(text && strstr(text, want[i]), "warning \"%s\" printed", want[i]);
    free(text);
}

static void test_config_errors(void) {
    const char *files[] = {path_of("%s", "it")};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    xv_pretrain_loader *l;
    c.patch_size = 30;
    CHECK(xv_pretrain_open(&c, 0, 1, 1, &l) == XV_ERR_INVALID_ARG && !l && strstr(xv_error_message(), "patch_size"),
          "image_res not a multiple of patch_size: %s", xv_error_message());
    c = config(XV_PRETRAIN_IMAGES, files, 1);
    const char *nofiles[] = {path_of("%s", "nowhere")};
    c.files = nofiles;
    CHECK(xv_pretrain_open(&c, 0, 1, 1, &l) == XV_ERR_MISSING && strstr(xv_error_message(), "nowhere"),
          "missing data named: %s", xv_error_message());
    c = config(XV_PRETRAIN_IMAGES, files, 1);
    CHECK(xv_pretrain_open(&c, 2, 2, 1, &l) == XV_ERR_INVALID_ARG, "rank outside world");
}

/* The loader over records naming an image without read permission, in a
 * child that drops root (root reads any file): 0 when every record was
 * counted unreadable and none corrupt. */
static int unreadable_child(const char *jsonl) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 2;
    const char *files[] = {jsonl};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    c.repeat = false;
    c.batch_size = 1;
    c.num_workers = 1;
    c.max_warnings = 0;
    xv_pretrain_loader *l = NULL;
    if (xv_pretrain_open(&c, 0, 1, 2, &l) != XV_OK) return 3;
    xv_pretrain_batch b;
    int images = 0;
    while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) images += b.n_images;
    const xv_pretrain_counters k = xv_pretrain_get_counters(l);
    xv_pretrain_close(l);
    fprintf(stderr, "no-permission image: %d taken, %lld unreadable, %lld corrupt\n", images, (long long)k.unreadable_image,
           (long long)k.corrupt_image);
    return images == 1 && k.unreadable_image >= 1 && k.corrupt_image == 0 ? 0 : 1; /* counters as of the last batch taken */
}

/* A permission error on an image is counted as unreadable (and warned with
 * the reason), not as a corrupt image. */
static void test_permission_denied(void) {
    write_text(path_of("%s", "perm.jsonl"), "{\"image\": \"img/noperm.jpg\", \"caption\": \"a red car\"}\n"
                                             "{\"image\": \"img/img01.jpg\", \"caption\": \"a red car\"}\n"
                                             "{\"image\": \"img/noperm.jpg\", \"caption\": \"a blue car\"}\n");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 000 '%s'", path_of("%s", "img/img00.jpg"),
             path_of("%s", "img/noperm.jpg"), path_of("%s", "img/noperm.jpg"));
    CHECK(system(cmd) == 0, "%s", cmd);
    chmod(g_dir, 0755); /* the unprivileged child walks the scratch folder */
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) _exit(unreadable_child(path_of("%s", "perm.jsonl")));
    int status = 0;
    waitpid(pid, &status, 0);
    chmod(g_dir, 0700);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the no-permission image counted unreadable, not corrupt (child status %d)", status);
}

/* image_root = img/, a decoy image in its parent: "../decoy.jpg" and the
 * decoy's absolute path are skipped and counted outside_root (the decoy is
 * never a sample), the image inside is taken; allow_outside_root takes all. */
static void test_outside_root(void) {
    char cmd[600], json[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path_of("%s", "img/img02.jpg"), path_of("%s", "decoy.jpg"));
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(json, sizeof json,
             "{\"image\": \"../decoy.jpg\", \"caption\": \"a red car\"}\n"
             "{\"image\": \"%s\", \"caption\": \"a red car\"}\n"
             "{\"image\": \"img01.jpg\", \"caption\": \"a red car\"}\n",
             path_of("%s", "decoy.jpg"));
    write_text(path_of("%s", "outside.jsonl"), json);
    const char *files[] = {path_of("%s", "outside.jsonl")};
    for (int allow = 0; allow < 2; allow++) {
        xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
        c.image_root = path_of("%s", "img");
        c.allow_outside_root = allow;
        c.repeat = false;
        c.batch_size = allow ? 3 : 1;
        c.num_workers = 1;
        c.max_warnings = 0;
        xv_pretrain_loader *l = NULL;
        CHECK_OK(xv_pretrain_open(&c, 0, 1, 2, &l));
        if (!l) return;
        xv_pretrain_batch b;
        int images = 0;
        xv_pretrain_counters k = {0};
        while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) images += b.n_images, k = xv_pretrain_get_counters(l);
        xv_pretrain_close(l);
        if (allow)
            CHECK(images == 3 && k.outside_root == 0, "allow_outside_root: all 3 taken (%d)", images);
        else
            CHECK(images == 1 && k.outside_root == 2, "escaping paths skipped: %d taken, %lld outside the root", images,
                  (long long)k.outside_root);
    }
}

static int always(void) { return 1; }

/* A signal while the consumer waits for a batch the workers are still making
 * (here: slow, from 3000 x 3000 images; in the field a stalled read): the
 * interrupt hook ends the wait at once, takes nothing, and closing stops the
 * worker after the image under way. Without the hook the same batch comes. */
static void test_interrupted_wait(void) {
    enum { SIDE = 3000, RECORDS = 24 };
    xv_image im;
    make_image(&im, SIDE, SIDE, 3);
    CHECK_OK(xv_jpeg_write(path_of("%s", "big.jpg"), im.rgb, SIDE, SIDE, 90));
    xv_image_free(&im);
    FILE *f = fopen(path_of("%s", "big.jsonl"), "wb");
    for (int i = 0; i < RECORDS; i++) fprintf(f, "{\"image\": \"big.jpg\", \"caption\": \"a red car\"}\n");
    fclose(f);
    const char *files[] = {path_of("%s", "big.jsonl")};
    xv_pretrain_config c = config(XV_PRETRAIN_IMAGES, files, 1);
    c.num_workers = 1;
    c.batch_size = RECORDS; /* one batch: RECORDS decodes of 9 Mpixel, seconds of work */
    c.interrupted = always;
    xv_pretrain_loader *l = NULL;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 4, &l));
    if (!l) return;
    xv_pretrain_batch b;
    double t0 = xv_monotonic_seconds();
    CHECK(xv_pretrain_next(l, &b) == XV_ERR_INTERRUPTED && strstr(xv_error_message(), "interrupted while waiting") &&
              xv_pretrain_batches_consumed(l) == 0,
          "the wait ends on the hook, nothing taken: %s", xv_error_message());
    xv_pretrain_close(l);
    const double stop_s = xv_monotonic_seconds() - t0;
    c.interrupted = NULL;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 4, &l));
    t0 = xv_monotonic_seconds();
    CHECK(l && xv_pretrain_next(l, &b) == XV_OK && b.n_images == RECORDS, "without the hook the batch comes");
    const double batch_s = xv_monotonic_seconds() - t0;
    xv_pretrain_close(l);
    printf("interrupted wait and close: %.3f s; the batch it did not wait for: %.3f s\n", stop_s, batch_s);
    /* The worker finishes at most the image under way (1/RECORDS of the batch). */
    CHECK(stop_s < batch_s / 4, "stopped in %.3f s, well before the batch (%.3f s)", stop_s, batch_s);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_pretrain_data", g_dir, sizeof g_dir)) return 1;
    make_dataset();
    if (xv_tokenizer_load(path_of("%s", "vocab.txt"), &g_tok) != XV_OK) {
        fprintf(stderr, "vocab: %s\n", xv_error_message());
        return 1;
    }
    test_image_atts_rule();
    test_choose_texts();
    test_image_text();
    test_tokenized();
    test_region_by_hand();
    test_region_batches();
    test_determinism_and_resume(XV_PRETRAIN_IMAGES);
    test_determinism_and_resume(XV_PRETRAIN_REGIONS);
    test_sharding();
    test_bad_data();
    test_config_errors();
    test_interrupted_wait();
    test_permission_denied();
    test_outside_root();
    xv_tokenizer_free(g_tok);
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_pretrain_data");
}
