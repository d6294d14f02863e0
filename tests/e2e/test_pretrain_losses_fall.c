/* A tiny X-VLM pretrained from scratch by the real loop (`xv_pretrain_run`,
 * what `xvlm pretrain` runs: the data loader on JSON-lines files with the
 * official transforms, region and image-text updates, AdamW, schedule,
 * clipping, dropout) learns, within the test suite's time: ITC, ITM, MLM and
 * both box losses (L1, GIoU) each end below a stated fraction of their start.
 *
 * The world is made simple enough for that: 32 px images on a noisy grey
 * background with one large or two smaller flat shapes of distinct colours
 * (8 colours, 3 shapes); captions name them ("a red square and a blue
 * circle", both orders); region annotations box each shape ("circle" with
 * the attribute "blue"). Its words are those of the `xvlm synth` vocabulary.
 * What it takes for ITM to leave chance in ~800 steps (measured): batch 16
 * (at 8 it stays at chance), captions that rarely repeat within a batch (a
 * repeated caption is drawn as a "hard negative" that is in fact a match),
 * lr 2e-3 (3e-3 learns ITM slower), and two shapes in half of the images
 * (worlds of one shape per image stayed at chance).
 * Region updates are 30% of the steps (the box losses fit their statistics
 * within ~40 steps; image-text updates teach matching).
 *
 * The start window is the warm-up (the first update has lr 0 and the rate
 * rises over 20 steps), so each fraction compares the trained model with one
 * close to its initialisation; the end window is longer, to average the
 * noise of single batches. XV_LEARN_SEED overrides the run's seed (to
 * re-measure the margins). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/threads.h"
#include "data/image_write.h"
#include "data/synth.h"
#include "testutil.h"
#include "train/pretrain_run.h"

enum { IMAGES = 256, SIDE = 32, BATCH = 16, STEPS = 800, START = 20, END = 80 };
/* Objects per image (1 or 2, evenly) and their side as a fraction of the
 * image's: a single object is large, two are smaller. */
enum { OBJ_MAX = 2 };
static const double SIDE_RANGE[OBJ_MAX][2] = {{0.55, 0.85}, {0.30, 0.45}};

static const char *const shape_names[3] = {"square", "circle", "triangle"};

typedef struct {
    int x, y, size, colour, shape;
} object;

/* Whether pixel (px, py) lies in the shape drawn in the object's square. */
static bool inside(const object *o, int px, int py) {
    const double u = (px - o->x + 0.5) / o->size, v = (py - o->y + 0.5) / o->size; /* in (0, 1) */
    switch (o->shape) {
    case 1: return (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25;
    case 2: return fabs(u - 0.5) <= 0.5 * v; /* apex up, base at the bottom */
    default: return true;
    }
}

static bool overlaps(const object *a, const object *b) {
    return a->x < b->x + b->size && b->x < a->x + a->size && a->y < b->y + b->size && b->y < a->y + a->size;
}

/* One image's objects: distinct colours, no overlap (sizes fit by design). */
static int place_objects(xv_rng *rng, object *obj) {
    const int n = 1 + (int)xv_rng_below(rng, OBJ_MAX);
    const double lo = SIDE_RANGE[n - 1][0], hi = SIDE_RANGE[n - 1][1];
    for (int k = 0; k < n; k++) {
        object *o = &obj[k];
        for (int again = 0; again < 1000; again++) {
            o->size = (int)(SIDE * (lo + (hi - lo) * xv_rng_uniform_double(rng)));
            o->x = (int)xv_rng_below(rng, (uint64_t)(SIDE - o->size + 1));
            o->y = (int)xv_rng_below(rng, (uint64_t)(SIDE - o->size + 1));
            bool clear = true;
            for (int j = 0; j < k; j++) clear &= !overlaps(o, &obj[j]);
            if (clear) break;
        }
        o->shape = (int)xv_rng_below(rng, 3);
        for (bool fresh = false; !fresh;) {
            o->colour = (int)xv_rng_below(rng, 8);
            fresh = true;
            for (int j = 0; j < k; j++) fresh &= obj[j].colour != o->colour;
        }
    }
    return n;
}

/* Write the world: images/NNNN.jpg, captions.jsonl, regions.jsonl, vocab.txt. */
static void make_world(const char *dir) {
    char path[1024];
    FILE *fc, *fr;
    if (!xv_test_world_open(dir, &fc, &fr)) return;
    xv_rng rng;
    xv_rng_seed(&rng, 2024);
    uint8_t *rgb = malloc(SIDE * SIDE * 3);
    for (int i = 0; i < IMAGES; i++) {
        for (int p = 0; p < SIDE * SIDE * 3; p += 3) memset(rgb + p, 118 + (int)xv_rng_below(&rng, 21), 3);
        object obj[OBJ_MAX];
        const int n = place_objects(&rng, obj);
        for (int k = 0; k < n; k++)
            for (int y = obj[k].y; y < obj[k].y + obj[k].size; y++)
                for (int x = obj[k].x; x < obj[k].x + obj[k].size; x++)
                    if (inside(&obj[k], x, y)) memcpy(rgb + 3 * (y * SIDE + x), xv_test_colour_rgb[obj[k].colour], 3);
        snprintf(path, sizeof path, "%s/images/%04d.jpg", dir, i);
        CHECK_OK(xv_jpeg_write(path, rgb, SIDE, SIDE, 95));
        char phrase[OBJ_MAX][32], forward[128] = "", backward[128] = "";
        for (int k = 0; k < n; k++)
            snprintf(phrase[k], sizeof phrase[k], "a %s %s", xv_test_colour_names[obj[k].colour], shape_names[obj[k].shape]);
        for (int k = 0; k < n; k++) {
            strcat(strcat(forward, k ? " and " : ""), phrase[k]);
            strcat(strcat(backward, k ? " and " : ""), phrase[n - 1 - k]);
        }
        fprintf(fc, "{\"image\": \"images/%04d.jpg\", \"caption\": [\"%s\", \"%s\"]}\n", i, forward, backward);
        fprintf(fr, "{\"image\": \"images/%04d.jpg\", \"caption\": \"%s\", \"elems\": [", i, forward);
        for (int k = 0; k < n; k++)
            fprintf(fr, "%s{\"bb\": [%d, %d, %d, %d], \"caption\": \"%s\", \"attributes\": \"%s\"}", k ? ", " : "",
                    obj[k].x, obj[k].y, obj[k].size, obj[k].size, shape_names[obj[k].shape],
                    xv_test_colour_names[obj[k].colour]);
        fprintf(fr, "]}\n");
    }
    free(rgb);
    fclose(fc);
    fclose(fr);
}

/* The model: Swin 32 px (8x8 patches of 4 px, one block per stage, the `ape`
 * position embeddings on: off in X-VLM, here a position signal for the box
 * head), BERT of 4 layers of width 64 split 2/2. The schedule is that of
 * STEPS steps. */
static void write_config(const char *dir, const char *yaml) {
    int n_vocab;
    FILE *f = xv_test_pretrain_yaml_open(dir, "", yaml, IMAGES, &n_vocab);
    if (!f) return;
    fprintf(f,
            "images: {image_key: image, is_image_rpath: True, caption_key: caption, batch_size: %d, num_workers: 1}\n"
            "regions: {image_key: image, is_image_rpath: True, caption_key: caption, iter_perc: 0.3,\n"
            "          batch_size: %d, max_images: %d, max_regions: 3, min_perc_in_image: 0.5, num_workers: 1}\n"
            "max_words: 12\nmax_tokens: 12\nmax_masks: 4\n"
            "ckpt_frequent_step: 100000\n"
            "schedular: {sched: linear, lr: 2e-3, epochs: %d, num_warmup_steps: %d}\n",
            BATCH, BATCH, BATCH / 2, STEPS / (IMAGES / BATCH), START);
    xv_test_learning_model_yaml(f, 1, true, n_vocab);
    fclose(f);
}

int main(void) {
    xv_test_learning_dirs d;
    if (!xv_test_learning_setup("xv_test_pretrain_losses_fall", "world.yaml", &d)) return 1;
    make_world(d.world);
    write_config(d.world, d.yaml);

    /* Required fractions last/first. Measured with this test (seeds 1, 2, 3
     * via XV_LEARN_SEED; one thread; 32 s of CPU each): ITC 0.39-0.42, ITM
     * 0.85-0.89, MLM 0.13-0.14, box L1 0.76-0.85, GIoU 0.72-0.82. The box
     * losses fall mostly by fitting the boxes' statistics and the large
     * single objects' size (the region crops enlarge them); placing a shape
     * named among two barely starts in this budget. */
    const double fraction[XV_N_LOSSES] = {0.60, 0.94, 0.25, 0.92, 0.90};
    double first[XV_N_LOSSES], last[XV_N_LOSSES];
    xv_test_pretrain_losses_fall(d.yaml, d.out, STEPS, START, END, fraction, first, last);
    /* The start of ITM depends on the initial head (0.64-0.69 measured), so
     * also against chance, -(1/3) ln(1/3) - (2/3) ln(2/3) = 0.6365 for one
     * positive per two negatives: measured 0.572-0.586 at the end. */
    const double chance = -log(1.0 / 3) / 3 - 2 * log(2.0 / 3) / 3;
    CHECK(last[XV_LOSS_ITM] < 0.96 * chance, "ITM ends at %.4f, not below 0.96 of chance (%.4f)", last[XV_LOSS_ITM], chance);
    if (xv_test_failures == 0) xv_test_remove_dir(d.root);
    return xv_test_finish("test_pretrain_losses_fall");
}
