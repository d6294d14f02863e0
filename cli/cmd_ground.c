/* `xvlm ground`: the box a referring expression describes in an image. */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"
#include "model_opts.h"
#include "tasks/draw.h"
#include "tasks/refer.h"

static int draw(const char *image, const char *const *texts, const xvlm_box *boxes, int n, const char *out) {
    xv_image img;
    xv_status st = xv_image_load(image, &img);
    int loaded = st == XV_OK;
    xv_drawn_box *db = calloc((size_t)n, sizeof *db);
    if (st == XV_OK && !db) st = xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == XV_OK && i < n; i++)
        db[i] = (xv_drawn_box){boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height, texts[i]};
    if (st == XV_OK) st = xv_draw_boxes_png(&img, db, n, out);
    if (loaded) xv_image_free(&img);
    free(db);
    if (st != XV_OK) fprintf(stderr, "xvlm ground: %s\n", xv_error_message());
    return st == XV_OK ? 0 : 1;
}

/* The proposals of --image-id in a dets.json (or of its only image). */
static const xv_dets_image *pick_proposals(const xv_dets *d, const char *path, int64_t image_id) {
    if (image_id >= 0) {
        const xv_dets_image *e = xv_dets_find(d, image_id);
        if (!e) fprintf(stderr, "xvlm ground: %s has no proposals for image id %lld\n", path, (long long)image_id);
        return e;
    }
    if (d->n != 1) {
        fprintf(stderr, "xvlm ground: %s holds proposals of %lld images: choose one with --image-id\n", path,
                (long long)d->n);
        return NULL;
    }
    return &d->images[0];
}

/* Weakly-supervised grounding: the Grad-CAM map picks a proposal per text. */
static xvlm_status ground_weak(xvlm_ctx *ctx, const xvlm_images *im, const xvlm_texts *tx, int nt, int layer,
                               const xv_dets_image *props, xvlm_box *boxes, int *chosen) {
    const int64_t k = props->n;
    float *flat = malloc(sizeof(float) * (size_t)(4 * (k ? k : 1)));
    if (!flat) return XVLM_ERR_NOMEM;
    for (int64_t j = 0; j < 4 * k; j++) flat[j] = (float)props->box[j / 4][j % 4];
    xvlm_status st = XVLM_OK;
    for (int i = 0; i < nt && st == XVLM_OK; i++) {
        st = xvlm_ground_weak(ctx, im, tx, (xvlm_pair){0, i}, layer, flat, (int)k, NULL, &chosen[i]);
        const double *b = chosen[i] >= 0 ? props->box[chosen[i]] : NULL;
        if (st == XVLM_OK && b) boxes[i] = (xvlm_box){.x = (float)b[0], .y = (float)b[1], .width = (float)b[2], .height = (float)b[3]};
    }
    free(flat);
    return st;
}

int xv_cmd_ground(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    xv_cli_image_texts it = {0};
    const char *draw_out = NULL, *proposals = NULL;
    bool json = false, weak = false;
    int layer = -1;
    int64_t image_id = -1;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        XV_OPT_IMAGE_TEXTS(&it, "an expression to locate (at least one)"),
        {.name = "--draw", .kind = XV_OPT_STRING, .dest = &draw_out, .value = "OUT.png",
         .help = "write the image with each box and its text drawn on it"},
        {.name = "--weak", .kind = XV_OPT_FLAG, .dest = &weak,
         .help = "weakly-supervised grounding (Grounding.py): the proposal the Grad-CAM map of\n"
                 "the ITM score covers best, instead of the box head"},
        {.name = "--proposals", .kind = XV_OPT_STRING, .dest = &proposals, .value = "DETS.json",
         .help = "--weak: candidate boxes, the official dets.json form\n"
                 "{\"<image id>\": [[x, y, w, h, ...], ...]} in pixels of the original image"},
        {.name = "--image-id", .kind = XV_OPT_I64, .dest = &image_id, .value = "ID", .lo = 0, .hi = 9e18,
         .help = "--weak: the entry of --proposals to use", .unset = "the file's only entry"},
        {.name = "--layer", .kind = XV_OPT_INT, .dest = &layer, .value = "L", .lo = -1, .hi = 1000,
         .help = "--weak: the fusion layer Grad-CAM reads (block_num)",
         .unset = "fusion_layer + 3, or the last layer"},
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "ground",
        .usage = "xvlm ground --model M --image I --text T [--text T2 ...] [--draw OUT.png] [--json]\n"
                 "       xvlm ground --weak --proposals DETS.json [--image-id ID] [--layer L] --model M --image I\n"
                 "                   --text T [...]",
        .about = "Locates what each text describes (Grounding_bbox.py inference): the fusion\n"
                 "encoder over the text and the whole image, bbox_head on [CLS], sigmoid ->\n"
                 "(cx, cy, w, h) relative to the image; in pixels of the original image\n"
                 "x = cx*W - w*W/2, y = cy*H - h*H/2, width w*W, height h*H.\n"
                 "Texts get pre_caption (30 words); needs a model with bbox_head (pretraining or\n"
                 "grounding checkpoints).\n"
                 "With --weak: the Grad-CAM map (xvlm explain) upsampled to the image, each proposal\n"
                 "scored by the map's sum inside it / sqrt(w*h), the first best above 0 chosen\n"
                 "(dataset/utils.py grounding_eval); needs itm_head instead of bbox_head.\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char *usage = weak != (proposals != NULL) ? "--weak and --proposals go together"
                        : !weak && (image_id >= 0 || layer >= 0) ? "--image-id and --layer apply to --weak only"
                                                                 : NULL;
    if (usage) {
        xv_opt_list_free(&it.texts);
        return xv_cli_usage_error("ground", usage);
    }
    xv_dets dets = {0};
    const xv_dets_image *props = NULL;
    if (weak && xv_dets_read(proposals, &dets) != XV_OK) {
        fprintf(stderr, "xvlm ground: %s\n", xv_error_message());
        xv_opt_list_free(&it.texts);
        return 1;
    }
    if (weak && !(props = pick_proposals(&dets, proposals, image_id))) {
        xv_dets_free(&dets);
        xv_opt_list_free(&it.texts);
        return 1;
    }
    xvlm_model *m;
    xvlm_ctx *ctx;
    if ((rc = xv_cli_open_model_for_texts("ground", &mo, &it, &m, &ctx))) {
        xv_dets_free(&dets);
        return rc;
    }
    if (weak && layer < 0) layer = xvlm_gradcam_default_layer(m);
    /* Grounding_bbox.py does not cut texts to a token count. */
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    const char *image = it.image, **texts = it.texts.items;
    const int nt = it.texts.n;
    xvlm_box *boxes = calloc((size_t)nt, sizeof *boxes);
    int *chosen = calloc((size_t)nt, sizeof *chosen);
    xv_cli_encoded e;
    xvlm_status st = xv_cli_encode_image_texts(ctx, &it, &tp, &e);
    if (st == XVLM_OK && !(boxes && chosen)) st = XVLM_ERR_NOMEM;
    if (st == XVLM_OK && !weak) st = xvlm_ground(ctx, e.im, e.tx, e.pairs, nt, boxes);
    if (st == XVLM_OK && weak) st = ground_weak(ctx, e.im, e.tx, nt, layer, props, boxes, chosen);
    rc = st == XVLM_OK ? 0 : 1;
    if (st != XVLM_OK)
        fprintf(stderr, "xvlm ground: %s\n", st == XVLM_ERR_NOMEM ? "out of memory" : xvlm_last_error());
    if (rc == 0) {
        int w, h;
        xvlm_images_size(e.im, 0, &w, &h);
        if (json) {
            xv_cli_json_image_start(NULL, image, w, h);
            for (int i = 0; i < nt; i++) {
                const xvlm_box *b = &boxes[i];
                printf("%s{\"text\": ", i ? ", " : "");
                xv_cli_json_string(stdout, texts[i]);
                if (weak && chosen[i] < 0)
                    printf(", \"proposal\": -1, \"box\": null}");
                else if (weak)
                    printf(", \"proposal\": %d, \"box\": [%.9g, %.9g, %.9g, %.9g]}", chosen[i], b->x, b->y, b->width,
                           b->height);
                else
                    printf(", \"box\": [%.9g, %.9g, %.9g, %.9g], \"box_normalized\": [%.9g, %.9g, %.9g, %.9g]}",
                           b->x, b->y, b->width, b->height, b->cx, b->cy, b->w, b->h);
            }
            printf("]}\n");
        } else {
            printf("image %s (%dx%d)\n", image, w, h);
            if (weak) printf("%8s %8s %8s %8s %8s  text\n", "proposal", "x", "y", "width", "height");
            else printf("%8s %8s %8s %8s | %7s %7s %7s %7s  text\n", "x", "y", "width", "height", "cx", "cy", "w", "h");
            for (int i = 0; i < nt; i++) {
                if (weak) {
                    const xvlm_box *b = &boxes[i];
                    if (chosen[i] < 0) printf("%8s %35s  %s\n", "none", "(no proposal scores above 0)", texts[i]);
                    else printf("%8d %8.1f %8.1f %8.1f %8.1f  %s\n", chosen[i], b->x, b->y, b->width, b->height, texts[i]);
                    continue;
                }
                const xvlm_box *b = &boxes[i];
                printf("%8.1f %8.1f %8.1f %8.1f | %7.4f %7.4f %7.4f %7.4f  %s\n", b->x, b->y, b->width, b->height,
                       b->cx, b->cy, b->w, b->h, texts[i]);
            }
        }
        if (draw_out) {
            /* a text whose weak choice found nothing gets no box */
            for (int i = 0; weak && i < nt; i++)
                if (chosen[i] < 0) boxes[i] = (xvlm_box){0};
            rc = draw(image, texts, boxes, nt, draw_out);
            if (rc == 0 && !json) printf("drawn: %s\n", draw_out);
            /* Release cairo's and fontconfig's font caches so leak checkers
             * see a clean exit; safe here: nothing else in this program draws. */
            cairo_debug_reset_static_data();
            FcFini();
        }
    }
    free(boxes);
    free(chosen);
    xv_dets_free(&dets);
    xv_cli_encoded_free(&e, &it);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return rc;
}
