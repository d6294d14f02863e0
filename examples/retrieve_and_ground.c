/* Find the image that best matches a description, then locate what the
 * description refers to in it, using only the public API (xvlm.h).
 *
 *   retrieve_and_ground MODEL "the red car on the left" a.jpg b.jpg c.jpg
 *
 * MODEL is a folder with config.json, weights.safetensors and vocab.txt (or
 * an official .th checkpoint with vocab.txt beside it). */
#include <stdio.h>

#include "xvlm.h"

static int fail(const char *what) {
    fprintf(stderr, "retrieve_and_ground: %s: %s\n", what, xvlm_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL QUERY IMAGE...\n", argv[0]);
        return 2;
    }
    const char *query = argv[2];
    const char *const *images = (const char *const *)argv + 3;
    const int n_images = argc - 3;

    /* 1. Load the model once; one context per thread that runs it. */
    xvlm_model *model = NULL;
    xvlm_ctx *ctx = NULL;
    if (xvlm_model_load(argv[1], NULL, &model) != XVLM_OK) return fail("loading the model");
    if (xvlm_ctx_new(model, &ctx) != XVLM_OK) return fail("creating a context");

    /* 2. Encode the images (keeping their vision tokens for re-ranking and
     *    grounding) and the query. */
    xvlm_images *gallery = NULL;
    xvlm_texts *text = NULL;
    xvlm_image_params ip = xvlm_image_params_default();
    if (xvlm_encode_image_files(ctx, images, n_images, &ip, &gallery) != XVLM_OK) return fail("encoding the images");
    if (xvlm_encode_texts(ctx, &query, 1, NULL, &text) != XVLM_OK) return fail("encoding the query");

    /* 3. Search: ITC similarity for all, ITM re-rank of the best ones. */
    xvlm_search_params sp = xvlm_search_params_default();
    sp.k = n_images < 5 ? n_images : 5;
    xvlm_hit hits[5];
    int n_hits = 0;
    if (xvlm_search_images(ctx, gallery, text, 0, &sp, hits, &n_hits) != XVLM_OK) return fail("searching");
    printf("query: %s\n", query);
    for (int i = 0; i < n_hits; i++)
        printf("%d. %s  itm %.4f (logit %.4f)  itc %.4f\n", i + 1, xvlm_images_path(gallery, hits[i].index),
               hits[i].itm_prob, hits[i].itm_logit, hits[i].itc);

    /* 4. Ground the query in the best image. */
    xvlm_pair pair = {.image = hits[0].index, .text = 0};
    xvlm_box box;
    if (xvlm_ground(ctx, gallery, text, &pair, 1, &box) != XVLM_OK) return fail("grounding");
    int w, h;
    xvlm_images_size(gallery, pair.image, &w, &h);
    printf("box in %s (%dx%d): x %.1f y %.1f width %.1f height %.1f\n", xvlm_images_path(gallery, pair.image), w, h,
           box.x, box.y, box.width, box.height);

    xvlm_texts_free(text);
    xvlm_images_free(gallery);
    xvlm_ctx_free(ctx);
    xvlm_model_free(model);
    return 0;
}
