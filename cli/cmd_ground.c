/* `xvlm ground`: the box a referring expression describes in an image. */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"
#include "model_opts.h"
#include "tasks/draw.h"

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

int xv_cmd_ground(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    xv_cli_image_texts it = {0};
    const char *draw_out = NULL;
    bool json = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        XV_OPT_IMAGE_TEXTS(&it, "an expression to locate (at least one)"),
        {.name = "--draw", .kind = XV_OPT_STRING, .dest = &draw_out, .value = "OUT.png",
         .help = "write the image with each box and its text drawn on it"},
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "ground",
        .usage = "xvlm ground --model M --image I --text T [--text T2 ...] [--draw OUT.png] [--json]",
        .about = "Locates what each text describes (Grounding_bbox.py inference): the fusion\n"
                 "encoder over the text and the whole image, bbox_head on [CLS], sigmoid ->\n"
                 "(cx, cy, w, h) relative to the image; in pixels of the original image\n"
                 "x = cx*W - w*W/2, y = cy*H - h*H/2, width w*W, height h*H.\n"
                 "Texts get pre_caption (30 words); needs a model with bbox_head (pretraining or\n"
                 "grounding checkpoints).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_model *m;
    xvlm_ctx *ctx;
    if ((rc = xv_cli_open_model_for_texts("ground", &mo, &it, &m, &ctx))) return rc;
    /* Grounding_bbox.py does not cut texts to a token count. */
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    const char *image = it.image, **texts = it.texts.items;
    const int nt = it.texts.n;
    xvlm_box *boxes = calloc((size_t)nt, sizeof *boxes);
    xv_cli_encoded e;
    xvlm_status st = xv_cli_encode_image_texts(ctx, &it, &tp, &e);
    if (st == XVLM_OK && !boxes) st = XVLM_ERR_NOMEM;
    if (st == XVLM_OK) st = xvlm_ground(ctx, e.im, e.tx, e.pairs, nt, boxes);
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
                printf(", \"box\": [%.9g, %.9g, %.9g, %.9g], \"box_normalized\": [%.9g, %.9g, %.9g, %.9g]}", b->x,
                       b->y, b->width, b->height, b->cx, b->cy, b->w, b->h);
            }
            printf("]}\n");
        } else {
            printf("image %s (%dx%d)\n", image, w, h);
            printf("%8s %8s %8s %8s | %7s %7s %7s %7s  text\n", "x", "y", "width", "height", "cx", "cy", "w", "h");
            for (int i = 0; i < nt; i++) {
                const xvlm_box *b = &boxes[i];
                printf("%8.1f %8.1f %8.1f %8.1f | %7.4f %7.4f %7.4f %7.4f  %s\n", b->x, b->y, b->width, b->height,
                       b->cx, b->cy, b->w, b->h, texts[i]);
            }
        }
        if (draw_out) {
            rc = draw(image, texts, boxes, nt, draw_out);
            if (rc == 0 && !json) printf("drawn: %s\n", draw_out);
            /* Release cairo's and fontconfig's font caches so leak checkers
             * see a clean exit; safe here: nothing else in this program draws. */
            cairo_debug_reset_static_data();
            FcFini();
        }
    }
    free(boxes);
    xv_cli_encoded_free(&e, &it);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return rc;
}
