/* `xvlm synth`: generate the demo's multi-grained world (data/synth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "data/synth.h"
#include "xvlm.h"

/* --objects MIN:MAX, each in 1..XV_SYNTH_MAX_OBJECTS, MIN <= MAX (1:1: the oracle world of docs/demo.md). */
static bool parse_objects(const char *v, int *lo, int *hi) {
    char *end;
    errno = 0;
    long a = strtol(v, &end, 10);
    if (end == v || *end != ':' || errno) return false;
    const char *second = end + 1;
    long b = strtol(second, &end, 10);
    if (end == second || *end || errno || a < 1 || b < a || b > XV_SYNTH_MAX_OBJECTS) return false;
    *lo = (int)a, *hi = (int)b;
    return true;
}

int xv_cmd_synth(int argc, char **argv) {
    xv_synth_params p = xv_synth_default_params();
    p.progress = true;
    const char *out = NULL, *vocab_out = NULL, *objects = NULL;
    char objects_default[32], objects_help[64];
    snprintf(objects_default, sizeof objects_default, "%d:%d", p.min_objects, p.max_objects);
    snprintf(objects_help, sizeof objects_help, "objects per image, 1..%d", XV_SYNTH_MAX_OBJECTS);
    const xv_opt opts[] = {
        XV_OPT_OUT(&out, "DIR", "output folder (created; image paths in the JSON are relative to it)", false),
        XV_OPT_SEED(&p.seed, "the world"),
        {.name = "--images", .kind = XV_OPT_INT, .dest = &p.train_images, .value = "N", .lo = 1, .hi = 10000000,
         .help = "training images"},
        {.name = "--test-images", .kind = XV_OPT_INT, .dest = &p.test_images, .value = "M", .lo = 1, .hi = 1000000,
         .help = "test images for retrieval and grounding"},
        {.name = "--size", .kind = XV_OPT_INT, .dest = &p.size, .value = "PX", .lo = XV_SYNTH_MIN_SIZE,
         .hi = XV_SYNTH_MAX_SIZE, .help = "image side in pixels"},
        {.name = "--captions", .kind = XV_OPT_INT, .dest = &p.captions_per_image, .value = "K", .lo = 1, .hi = 20,
         .help = "captions per image"},
        {.name = "--objects", .kind = XV_OPT_STRING, .dest = &objects, .value = "MIN:MAX", .unset = objects_default,
         .help = objects_help},
        {.name = "--quality", .kind = XV_OPT_INT, .dest = &p.jpeg_quality, .value = "Q", .lo = 1, .hi = 100,
         .help = "JPEG quality"},
        XV_OPT_THREADS(&p.threads),
        {.name = "--no-left-right", .kind = XV_OPT_FLAG, .dest = &p.flip_invariant,
         .help = "no text says left/right (left of, rightmost...): every text stays\n"
                 "true under the horizontal flip of the official pretraining transform"},
        {.name = "--vocab-out", .kind = XV_OPT_STRING, .dest = &vocab_out, .value = "FILE",
         .help = "only write the world's vocab.txt to FILE (no --out needed)"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "synth",
        .usage = "xvlm synth --out DIR [--seed S] [--images N] [--test-images M] [--size PX]\n"
                 "                  [--captions K] [--objects MIN:MAX] [--quality Q] [--threads T]\n"
                 "                  [--no-left-right] [--vocab-out FILE]",
        .about = "Generates a world of coloured shapes (2-4 per image) with whole-image captions,\n"
                 "object and relation-region annotations and referring expressions, in the official\n"
                 "X-VLM data formats. The same seed gives the same bytes, whatever the thread count.\n",
        .opts = opts,
        .footer = "Writes: images/{train,test}_NNNNNN.jpg, pretrain_captions.jsonl, pretrain_regions.jsonl,\n"
                  "retrieval_{train,test}.json, grounding_{train,test}.json, grounding_test_{attributes,spatial}.json\n"
                  "(the test expressions in two halves), scenes.jsonl, world.json,\n"
                  "vocab.txt ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4).\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    if (objects && !parse_objects(objects, &p.min_objects, &p.max_objects))
        return xv_cli_usage_error("synth", "--objects expects MIN:MAX with 1 <= MIN <= MAX <= %d, got '%s'",
                                  XV_SYNTH_MAX_OBJECTS, objects);
    if (vocab_out) {
        if (xv_synth_write_vocab(vocab_out) != XV_OK) {
            fprintf(stderr, "xvlm synth: %s\n", xv_error_message());
            return 1;
        }
        if (!out) return 0;
    }
    if (!out) return xv_cli_usage_error("synth", "--out DIR is required");
    if (p.threads > 0) xvlm_set_threads(p.threads);
    xv_synth_stats st;
    if (xv_synth_generate(&p, out, &st) != XV_OK) {
        fprintf(stderr, "xvlm synth: %s\n", xv_error_message());
        return 1;
    }
    fprintf(stderr,
            "synth: %d train + %d test images (%d px) in %.1f s (%.0f images/s); %lld captions, %lld objects, "
            "%lld relation regions, %lld + %lld grounding expressions (%lld objects without one); "
            "%lld of %lld test captions single out their image\n",
            st.train_images, st.test_images, p.size, st.seconds, (st.train_images + st.test_images) / st.seconds,
            (long long)st.captions, (long long)st.objects, (long long)st.relation_regions, (long long)st.refs_train,
            (long long)st.refs_test, (long long)st.refs_skipped, (long long)st.test_captions_unique,
            (long long)st.test_images * p.captions_per_image);
    return 0;
}
