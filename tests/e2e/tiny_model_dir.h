/* A random tiny X-VLM in a model folder (config.json, weights.safetensors,
 * vocab.txt), generated images, and process helpers, for the retrieval and
 * grounding tests. Header-only: included by one test file each. */
#ifndef XV_TEST_TINY_MODEL_DIR_H
#define XV_TEST_TINY_MODEL_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/fs.h"
#include "data/image_write.h"
#include "model/model.h"
#include "testutil.h"

/* The words the test texts use; every other word becomes [UNK] pieces. */
static const char *const TINY_WORDS[] = {
    "a", "an", "the", "red", "green", "blue", "yellow", "white", "black", "square", "circle", "triangle",
    "on", "of", "in", "left", "right", "top", "bottom", "big", "small", "and", "with", "picture",
    "shape", "next", "to", "two", "one", "car", "bus", "dog", "cat", "##s", "##ed", "man", "horse",
};

/* A vocab.txt with the specials and TINY_WORDS (42 entries). */
static inline int tiny_vocab(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (size_t i = 0; i < sizeof TINY_WORDS / sizeof *TINY_WORDS; i++) fprintf(f, "%s\n", TINY_WORDS[i]);
    return fclose(f) == 0;
}

/* A model folder (weights.safetensors + config.json) of the pretraining model
 * that the config JSON `js` describes, with random weights from `seed`. */
static inline int model_dir_from_json(const char *dir, const char *js, uint64_t seed) {
    xv_model_config c;
    xv_model *m = NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    int ok = xv_config_parse_json(js, dir, &c) == XV_OK && xv_model_create(&c, &parts, &m) == XV_OK &&
             xv_model_init_random(m, seed) == XV_OK;
    char path[512];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    ok = ok && xv_model_save(m, path) == XV_OK;
    xv_model_free(m);
    char *cj = ok ? xv_config_to_json(&c) : NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = cj ? fopen(path, "w") : NULL;
    ok = ok && f && fputs(cj, f) >= 0;
    if (f) fclose(f);
    free(cj);
    return ok;
}

/* 64 px, window 8, a 4-stage Swin of width 64, a 3-layer BERT (fusion from
 * layer 1): every part of X-VLM, a few milliseconds per image. */
static inline int tiny_model_dir(const char *dir, uint64_t seed, int with_vocab) {
    const char *js =
        "{\"vision\": {\"image_res\": 64, \"window_size\": 8, \"embed_dim\": 8, \"depths\": [2, 2, 1, 1],"
        " \"num_heads\": [1, 2, 2, 4], \"vision_width\": 64, \"patch_size\": 32},"
        " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 32, \"vocab_size\": 64, \"max_position_embeddings\": 24, \"fusion_layer\": 1},"
        " \"embed_dim\": 8}";
    int ok = model_dir_from_json(dir, js, seed);
    char path[512];
    if (ok && with_vocab) {
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        ok = tiny_vocab(path);
    }
    CHECK(ok, "tiny model folder %s: %s", dir, xv_error_message());
    return ok;
}

/* A w x h JPEG: a coloured background with a lighter rectangle, varied by k. */
static inline int tiny_image(const char *path, int w, int h, int k) {
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);
    if (!px) return 0;
    int x0 = (k * 7) % (w / 2), y0 = (k * 5) % (h / 2), x1 = x0 + w / 3, y1 = y0 + h / 3;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + 3 * ((size_t)y * (size_t)w + (size_t)x);
            int in = x >= x0 && x < x1 && y >= y0 && y < y1;
            p[0] = (uint8_t)(in ? 230 : (40 * k + 3 * x) % 256);
            p[1] = (uint8_t)(in ? 200 - 20 * (k % 5) : (90 + 2 * y) % 256);
            p[2] = (uint8_t)(in ? 40 * (k % 6) : (150 + x * y) % 256);
        }
    xv_status st = xv_jpeg_write(path, px, w, h, 90);
    free(px);
    return st == XV_OK;
}

static inline int run_cmd(const char *cmd) {
    fflush(stdout);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The whole file as a NUL-terminated string (NULL if unreadable). */
static inline char *slurp_text(const char *path) {
    uint8_t *d = NULL;
    size_t n;
    return xv_fs_read_file(path, INT64_C(1) << 30, &d, &n) == XV_OK ? (char *)d : NULL;
}

#endif
