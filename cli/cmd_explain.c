/* `xvlm explain`: where the ITM score looks for a text in an image (the
 * official Grad-CAM of Grounding.py), as numbers and as a heat-map picture. */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"
#include "model/gradcam_boxes.h"
#include "model_opts.h"
#include "tasks/heatmap.h"

/* The expression's map and, with per_word, each token's, upsampled to the
 * image and drawn as panels. */
static int draw(const char *image, const xvlm_model *m, const xvlm_texts *tx, const float *map,
                const float *token_maps, int side, const char *out) {
    xv_image img;
    xv_status st = xv_image_load(image, &img);
    if (st != XV_OK) {
        fprintf(stderr, "xvlm explain: %s\n", xv_error_message());
        return 1;
    }
    int64_t len = 0;
    const int32_t *ids = xvlm_texts_tokens(tx, 0, &len);
    const int panels = token_maps ? (int)len : 1; /* the expression, then tokens 1 .. len-1 ([CLS] left out) */
    const size_t npx = (size_t)img.width * (size_t)img.height;
    float *up = malloc(sizeof(float) * npx * (size_t)panels);
    const float **maps = calloc((size_t)panels, sizeof *maps);
    const char **labels = calloc((size_t)panels, sizeof *labels);
    if (!up || !maps || !labels) st = xv_error(XV_ERR_NOMEM, "out of memory for %d maps of %dx%d", panels, img.width, img.height);
    for (int i = 0; st == XV_OK && i < panels; i++) {
        const float *src = i == 0 ? map : token_maps + (size_t)i * (size_t)side * (size_t)side; /* token i (0 = [CLS]) */
        xv_upsample_bicubic_torch(src, side, side, up + (size_t)i * npx, img.height, img.width);
        maps[i] = up + (size_t)i * npx;
        labels[i] = i == 0 ? xvlm_texts_text(tx, 0) : xvlm_model_token(m, ids[i]);
    }
    if (st == XV_OK) st = xv_draw_heatmaps_png(&img, maps, labels, panels, out);
    if (st != XV_OK) fprintf(stderr, "xvlm explain: %s\n", xv_error_message());
    xv_image_free(&img);
    free(up), free(maps), free(labels);
    /* Release cairo's and fontconfig's font caches so leak checkers see a
     * clean exit; safe here: nothing else in this program draws. */
    cairo_debug_reset_static_data();
    FcFini();
    return st == XV_OK ? 0 : 1;
}

static void json_map(const float *map, int side) {
    printf("[");
    for (int y = 0; y < side; y++) {
        printf("%s[", y ? ", " : "");
        for (int x = 0; x < side; x++) printf("%s%.9g", x ? ", " : "", map[y * side + x]);
        printf("]");
    }
    printf("]");
}

static int peak_of(const float *map, int side) {
    int best = 0;
    for (int p = 1; p < side * side; p++)
        if (map[p] > map[best]) best = p;
    return best;
}

static void print_result(const char *image, const xvlm_model *m, const xvlm_texts *tx, int layer, const float *map,
                         const float *token_maps, int side, int W, int H, bool json) {
    int64_t len = 0;
    const int32_t *ids = xvlm_texts_tokens(tx, 0, &len);
    const int peak = peak_of(map, side);
    /* centre of the peak patch in original pixels */
    const double px = (peak % side + 0.5) * W / side, py = (peak / side + 0.5) * H / side;
    if (json) {
        printf("{\"image\": ");
        xv_cli_json_string(stdout, image);
        printf(", \"width\": %d, \"height\": %d, \"text\": ", W, H);
        xv_cli_json_string(stdout, xvlm_texts_text(tx, 0));
        printf(", \"layer\": %d, \"side\": %d, \"tokens\": [", layer, side);
        for (int64_t t = 0; t < len; t++) {
            printf("%s", t ? ", " : "");
            xv_cli_json_string(stdout, xvlm_model_token(m, ids[t]));
        }
        printf("], \"peak\": {\"row\": %d, \"col\": %d, \"x\": %.1f, \"y\": %.1f}, \"map\": ", peak / side,
               peak % side, px, py);
        json_map(map, side);
        if (token_maps) {
            printf(", \"token_maps\": [");
            for (int64_t t = 0; t < len; t++) {
                printf("%s", t ? ", " : "");
                json_map(token_maps + t * side * side, side);
            }
            printf("]");
        }
        printf("}\n");
        return;
    }
    printf("image %s (%dx%d), layer %d, map %dx%d\ntext: %s\n", image, W, H, layer, side, side, xvlm_texts_text(tx, 0));
    printf("peak: patch row %d col %d (around x %.0f, y %.0f)\n", peak / side, peak % side, px, py);
    float top = map[peak] > 0 ? map[peak] : 1;
    printf("map / peak:\n");
    for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) printf(" %4.2f", map[y * side + x] / top);
        printf("\n");
    }
    if (token_maps)
        for (int64_t t = 1; t < len; t++) {
            int pk = peak_of(token_maps + t * side * side, side);
            printf("token %-14s peak row %d col %d\n", xvlm_model_token(m, ids[t]), pk / side, pk % side);
        }
}

int xv_cmd_explain(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    const char *image = NULL, *text = NULL, *out = NULL;
    int layer = -1;
    bool json = false, per_word = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--image", .kind = XV_OPT_STRING, .dest = &image, .value = "I", .help = "the image", .required = true},
        {.name = "--text", .kind = XV_OPT_STRING, .dest = &text, .value = "T", .help = "the expression",
         .required = true},
        {.name = "--layer", .kind = XV_OPT_INT, .dest = &layer, .value = "L", .lo = -1, .hi = 1000,
         .help = "encoder layer whose cross-attention is read (absolute index, a fusion layer;\n"
                 "Grounding.yaml's block_num)",
         .unset = "fusion_layer + 3 (block_num 9 of X-VLM base), or the last layer"},
        {.name = "--per-word", .kind = XV_OPT_FLAG, .dest = &per_word,
         .help = "also a map per token (before the mean over the text)"},
        XV_OPT_OUT(&out, "MAP.png", "write the heat map(s) over the image as a PNG", false),
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "explain",
        .usage = "xvlm explain --model M --image I --text T [--layer L] [--per-word] [--out MAP.png] [--json]",
        .about = "Grad-CAM of the image-text matching score, as Grounding.py computes it: A = the\n"
                 "cross-attention probabilities of one fusion layer, G = d(ITM class-1 logit)/dA,\n"
                 "map = mean over heads and tokens of A * max(G, 0) over the image patches\n"
                 "(side x side, side = image_res / 32). --out draws it upsampled (PyTorch bicubic)\n"
                 "over the image. Needs a model with itm_head (pretraining or retrieval).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error (unreadable image, text empty after cleaning,\n"
                  "layer outside the fusion layers, ...), 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("explain", &mo, &m, &ctx)) return 1;
    xvlm_model_info info;
    xvlm_model_get_info(m, &info);
    if (layer < 0) layer = xvlm_gradcam_default_layer(m);
    /* Grounding.py's tokenizer call cuts nothing */
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    float *map = NULL, *token_maps = NULL;
    const int side = info.map_side;
    xvlm_status st = xvlm_encode_image_files(ctx, &image, 1, NULL, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, &text, 1, &tp, &tx);
    int64_t len = 0;
    if (st == XVLM_OK) xvlm_texts_tokens(tx, 0, &len);
    if (st == XVLM_OK) {
        map = malloc(sizeof(float) * (size_t)(side * side));
        token_maps = per_word ? malloc(sizeof(float) * (size_t)(len * side * side)) : NULL;
        if (!map || (per_word && !token_maps)) st = XVLM_ERR_NOMEM;
    }
    if (st == XVLM_OK) st = xvlm_gradcam(ctx, im, tx, (xvlm_pair){0, 0}, layer, map, token_maps);
    rc = st == XVLM_OK ? 0 : 1;
    if (st != XVLM_OK) {
        fprintf(stderr, "xvlm explain: %s\n", st == XVLM_ERR_NOMEM && !map ? "out of memory" : xvlm_last_error());
    } else {
        int W, H;
        xvlm_images_size(im, 0, &W, &H);
        print_result(image, m, tx, layer, map, token_maps, side, W, H, json);
        if (out) {
            rc = draw(image, m, tx, map, token_maps, side, out);
            if (rc == 0 && !json) printf("drawn: %s\n", out);
        }
    }
    free(map), free(token_maps);
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return rc;
}
