/* `xvlm synth`: generate the demo's multi-grained world (data/synth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data/synth.h"
#include "xvlm.h"

static void usage(FILE *f) {
    xv_synth_params d = xv_synth_default_params();
    fprintf(f,
            "usage: xvlm synth --out DIR [--seed S] [--images N] [--test-images M] [--size PX]\n"
            "                  [--captions K] [--objects MIN:MAX] [--quality Q] [--threads T]\n"
            "                  [--no-left-right] [--vocab-out FILE]\n\n"
            "Generates a world of coloured shapes (2-4 per image) with whole-image captions,\n"
            "object and relation-region annotations and referring expressions, in the official\n"
            "X-VLM data formats. The same seed gives the same bytes, whatever the thread count.\n\n"
            "  --out DIR          output folder (created; image paths in the JSON are relative to it)\n"
            "  --seed S           random seed (default %llu)\n"
            "  --images N         training images (default %d)\n"
            "  --test-images M    test images for retrieval and grounding (default %d)\n"
            "  --size PX          image side in pixels, %d..%d (default %d)\n"
            "  --captions K       captions per image (default %d)\n"
            "  --objects MIN:MAX  objects per image, 2..%d (default %d:%d)\n"
            "  --quality Q        JPEG quality (default %d)\n"
            "  --threads T        threads (default: all cores)\n"
            "  --no-left-right    no text says left/right (left of, rightmost...): every text stays\n"
            "                     true under the horizontal flip of the official pretraining transform\n"
            "  --vocab-out FILE   only write the world's vocab.txt to FILE (no --out needed)\n\n"
            "Writes: images/{train,test}_NNNNNN.jpg, pretrain_captions.jsonl, pretrain_regions.jsonl,\n"
            "retrieval_{train,test}.json, grounding_{train,test}.json, scenes.jsonl, world.json,\n"
            "vocab.txt ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4).\n",
            (unsigned long long)d.seed, d.train_images, d.test_images, XV_SYNTH_MIN_SIZE, XV_SYNTH_MAX_SIZE, d.size,
            d.captions_per_image, XV_SYNTH_MAX_OBJECTS, d.min_objects, d.max_objects, d.jpeg_quality);
}

/* Whole-string integer in [lo, hi]. */
static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int xv_cmd_synth(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    xv_synth_params p = xv_synth_default_params();
    p.progress = true;
    const char *out = NULL, *vocab_out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x = 0, y = 0;
        int ok = v != NULL;
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--no-left-right")) {
            p.flip_invariant = true;
            continue; /* takes no value */
        } else if (!strcmp(a, "--vocab-out")) {
            vocab_out = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = v ? strtoull(v, &end, 10) : 0;
            ok = ok && !errno && end != v && !*end && v[0] != '-';
            p.seed = s;
        } else if (!strcmp(a, "--images")) {
            ok = ok && parse_int(v, 1, 10000000, &x), p.train_images = (int)x;
        } else if (!strcmp(a, "--test-images")) {
            ok = ok && parse_int(v, 1, 1000000, &x), p.test_images = (int)x;
        } else if (!strcmp(a, "--size")) {
            ok = ok && parse_int(v, XV_SYNTH_MIN_SIZE, XV_SYNTH_MAX_SIZE, &x), p.size = (int)x;
        } else if (!strcmp(a, "--captions")) {
            ok = ok && parse_int(v, 1, 20, &x), p.captions_per_image = (int)x;
        } else if (!strcmp(a, "--quality")) {
            ok = ok && parse_int(v, 1, 100, &x), p.jpeg_quality = (int)x;
        } else if (!strcmp(a, "--threads")) {
            ok = ok && parse_int(v, 1, 1024, &x), p.threads = (int)x;
        } else if (!strcmp(a, "--objects")) {
            char lo[16] = "", *colon = v ? strchr(v, ':') : NULL;
            ok = ok && colon && (size_t)(colon - v) < sizeof lo;
            if (ok) {
                memcpy(lo, v, (size_t)(colon - v));
                ok = parse_int(lo, 2, XV_SYNTH_MAX_OBJECTS, &x) && parse_int(colon + 1, x, XV_SYNTH_MAX_OBJECTS, &y);
                p.min_objects = (int)x, p.max_objects = (int)y;
            }
        } else {
            fprintf(stderr, "xvlm synth: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "xvlm synth: bad or missing value for %s%s%s\n", a, v ? ": " : "", v ? v : "");
            return 2;
        }
        i++;
    }
    if (vocab_out) {
        if (xv_synth_write_vocab(vocab_out) != XV_OK) {
            fprintf(stderr, "xvlm synth: %s\n", xv_error_message());
            return 1;
        }
        if (!out) return 0;
    }
    if (!out) {
        fprintf(stderr, "xvlm synth: --out DIR is required\n\n");
        usage(stderr);
        return 2;
    }
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
