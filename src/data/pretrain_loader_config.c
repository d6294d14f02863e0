/* Pretraining loader settings: the official defaults and their validation. */
#include <math.h>
#include <string.h>

#include "data/pretrain_loader_internal.h"

xv_pretrain_config xv_pretrain_config_default(xv_pretrain_kind kind) {
    xv_pretrain_config c = {
        .kind = kind,
        .image_key = "binary",
        .caption_key = "caption",
        .is_image_rpath = false,
        .tokenized = false,
        .image_res = 224,
        .patch_size = 32,
        .max_words = 40,
        .max_tokens = 40,
        .masking = xv_masking_default(),
        .batch_size = 128,
        .max_images = 48,
        .max_regions = 5,
        .min_perc_in_image = 0.5,
        .careful_hflip = false,
        .crop_scale_min = 0.2,
        .crop_scale_max = 1.0,
        .num_workers = 4,
        .prefetch = 2,
        .shuffle_files = true,
        .repeat = true,
        .max_line_bytes = 0,
        .max_warnings = 100,
    };
    return c;
}

static const char *const k_counter_names[XV_PRETRAIN_N_COUNTERS] = {
    "lines",       "samples", "texts",     "bad_json",     "unreadable_files", "missing_image",
    "corrupt_image", "bad_caption", "bad_box", "no_region", "padded_texts",     "dropped_texts",
    "unreadable_image", "outside_root"};

const char *xv_pretrain_counter_name(int i) {
    return i >= 0 && i < XV_PRETRAIN_N_COUNTERS ? k_counter_names[i] : NULL;
}

/* The struct is XV_PRETRAIN_N_COUNTERS int64 fields in the order of the names. */
_Static_assert(sizeof(xv_pretrain_counters) == XV_PRETRAIN_N_COUNTERS * sizeof(int64_t), "counter layout");

static int nonempty(const char *s) { return s && s[0]; }

xv_status xv_pretrain_config_check(const xv_pretrain_config *c, int rank, int world) {
#define REQUIRE(cond, ...)                                                                                           \
    do {                                                                                                             \
        if (!(cond)) return xv_error(XV_ERR_INVALID_ARG, "pretrain data config: " __VA_ARGS__);                     \
    } while (0)
    REQUIRE(c->kind == XV_PRETRAIN_IMAGES || c->kind == XV_PRETRAIN_REGIONS, "kind %d", (int)c->kind);
    REQUIRE(c->files && c->n_files > 0, "no train files");
    REQUIRE(nonempty(c->vocab_path), "vocab_path is not set");
    REQUIRE(nonempty(c->image_key) && nonempty(c->caption_key), "image_key and caption_key must be set");
    REQUIRE(c->image_res > 0 && c->image_res <= 4096, "image_res %d", c->image_res);
    REQUIRE(c->patch_size > 0 && c->image_res % c->patch_size == 0,
            "image_res %d is not a multiple of patch_size %d (the official assert)", c->image_res, c->patch_size);
    REQUIRE(c->max_words > 0, "max_words %d", c->max_words);
    REQUIRE(c->max_tokens >= 2 && c->max_tokens <= 4096, "max_tokens %d (needs [CLS] and one token)",
            c->max_tokens);
    const xv_masking_config *m = &c->masking;
    REQUIRE(m->max_masks >= 1 && m->max_masks <= c->max_tokens, "max_masks %d", m->max_masks);
    REQUIRE(m->mask_prob > 0 && m->mask_prob <= 1, "mask_prob %g", m->mask_prob);
    REQUIRE(m->skipgram_prb >= 0 && m->skipgram_prb <= 1 && m->skipgram_size >= 1, "skipgram %g / %d",
            m->skipgram_prb, m->skipgram_size);
    REQUIRE(c->batch_size >= 1 && c->batch_size <= 65536, "batch_size %d", c->batch_size);
    if (c->kind == XV_PRETRAIN_REGIONS) {
        REQUIRE(c->max_images >= 1 && c->max_images <= 65536, "max_images %d", c->max_images);
        REQUIRE(c->max_regions >= 1 && c->max_regions <= 1024, "max_regions %d", c->max_regions);
        REQUIRE(c->min_perc_in_image >= 0 && c->min_perc_in_image < 1, "min_perc_in_image %g",
                c->min_perc_in_image);
    }
    REQUIRE(c->crop_scale_min > 0 && c->crop_scale_min <= c->crop_scale_max && c->crop_scale_max <= 1,
            "crop_scale [%g, %g] (0 < min <= max <= 1)", c->crop_scale_min, c->crop_scale_max);
    REQUIRE(c->num_workers >= 1 && c->num_workers <= XV_PRETRAIN_MAX_WORKERS, "num_workers %d (1..%d)",
            c->num_workers, XV_PRETRAIN_MAX_WORKERS);
    REQUIRE(c->prefetch >= 1 && c->prefetch <= 64, "prefetch %d", c->prefetch);
    REQUIRE(world >= 1 && rank >= 0 && rank < world, "rank %d of world %d", rank, world);
#undef REQUIRE
    return XV_OK;
}

/* FNV-1a, 64 bits. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1); }
static uint64_t fnv_i64(uint64_t h, int64_t v) { return fnv(h, &v, sizeof v); }
static uint64_t fnv_f64(uint64_t h, double v) { return fnv(h, &v, sizeof v); }

uint64_t xv_pretrain_config_hash(const xv_pretrain_config *c, const xv_file_list *files) {
    uint64_t h = 0xcbf29ce484222325ull;
    /* The data files by name (not directory), so a moved data set still resumes. */
    h = fnv_i64(h, files->n);
    for (int i = 0; i < files->n; i++) {
        const char *slash = strrchr(files->paths[i], '/');
        h = fnv_str(h, slash ? slash + 1 : files->paths[i]);
    }
    h = fnv_i64(h, c->kind);
    h = fnv_str(h, c->image_key);
    h = fnv_str(h, c->caption_key);
    const xv_masking_config *m = &c->masking;
    const int64_t ints[] = {c->is_image_rpath, c->tokenized,   c->image_res,     c->patch_size,    c->max_words,
                            c->max_tokens,     m->max_masks,   m->skipgram_size, m->whole_word,    c->batch_size,
                            c->max_images,     c->max_regions, c->careful_hflip, c->shuffle_files, c->repeat};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) h = fnv_i64(h, ints[i]);
    h = fnv_f64(h, m->mask_prob);
    h = fnv_f64(h, m->skipgram_prb);
    h = fnv_f64(h, c->min_perc_in_image);
    h = fnv_f64(h, c->crop_scale_min);
    h = fnv_f64(h, c->crop_scale_max);
    return h;
}
