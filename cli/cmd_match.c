/* `xvlm match`: how well texts describe an image (ITM probability and logit,
 * and the ITC similarity). */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/error.h"
#include "model_opts.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: xvlm match --model M --image I --text T [--text T2 ...] [--json]\n"
            "\n"
            "Scores how well each text matches the image with X-VLM's image-text matching\n"
            "head (fusion encoder over all vision tokens, itm_head on [CLS]):\n"
            "  itm_prob   softmax of the two ITM logits, class 1 (\"match\")\n"
            "  itm_logit  the raw class-1 logit (the score Retrieval.py re-ranks with)\n"
            "  itc        cosine similarity of the ITC features (when the model has them)\n"
            "Images get the official test transform; texts pre_caption (30 words) and\n"
            "[CLS] + WordPiece tokens (at most 40).\n"
            "\n" XV_CLI_MODEL_HELP
            "  --json          one JSON object on stdout\n"
            "\n"
            "Exit status: 0 ok, 1 runtime error (unreadable image, empty text, ...), 2 usage.\n");
}

int xv_cmd_match(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    xv_cli_model_opts mo;
    xv_cli_model_opts_init(&mo);
    const char *image = NULL;
    const char **texts = calloc((size_t)argc, sizeof *texts);
    int nt = 0, json = 0;
    if (!texts) return 1;
    for (int i = 1; i < argc; i++) {
        int r = xv_cli_model_option("match", argc, argv, &i, &mo);
        if (r < 0) {
            free(texts);
            return 2;
        }
        if (r) continue;
        if (!strcmp(argv[i], "--image") && i + 1 < argc) image = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) texts[nt++] = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "xvlm match: unknown or incomplete option '%s'\n\n", argv[i]);
            help(stderr);
            free(texts);
            return 2;
        }
    }
    if (!mo.model || !image || nt == 0) {
        fprintf(stderr, "xvlm match: --model, --image and at least one --text are required\n\n");
        help(stderr);
        free(texts);
        return 2;
    }
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("match", &mo, &m, &ctx)) {
        free(texts);
        return 1;
    }
    xvlm_model_info info;
    xvlm_model_get_info(m, &info);
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_pair *pairs = calloc((size_t)nt, sizeof *pairs);
    float *logit = calloc((size_t)nt, sizeof *logit), *prob = calloc((size_t)nt, sizeof *prob);
    float *sim = calloc((size_t)nt, sizeof *sim);
    xv_status st = pairs && logit && prob && sim ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = xv_api_encode_image_files(ctx, &image, 1, NULL, &im);
    if (st == XV_OK) st = xv_api_encode_texts(ctx, texts, nt, NULL, &tx);
    for (int i = 0; i < nt && st == XV_OK; i++) pairs[i] = (xvlm_pair){.image = 0, .text = i};
    if (st == XV_OK) st = xv_api_itm(ctx, im, tx, pairs, nt, logit, prob);
    if (st == XV_OK && info.has_itc) st = xv_api_similarity(im, tx, sim);
    if (st == XV_OK) {
        int w, h;
        xvlm_images_size(im, 0, &w, &h);
        if (json) {
            printf("{\"model\": \"%s\", \"image\": ", info.id);
            xv_cli_json_string(stdout, image);
            printf(", \"width\": %d, \"height\": %d, \"results\": [", w, h);
            for (int i = 0; i < nt; i++) {
                printf("%s{\"text\": ", i ? ", " : "");
                xv_cli_json_string(stdout, texts[i]);
                printf(", \"clean\": ");
                xv_cli_json_string(stdout, xvlm_texts_text(tx, i));
                printf(", \"itm_prob\": %.9g, \"itm_logit\": %.9g", prob[i], logit[i]);
                if (info.has_itc) printf(", \"itc\": %.9g", sim[i]);
                printf("}");
            }
            printf("]}\n");
        } else {
            printf("image %s (%dx%d)\n", image, w, h);
            printf("%9s %10s %8s  text\n", "itm_prob", "itm_logit", "itc");
            for (int i = 0; i < nt; i++) {
                printf("%9.4f %10.4f ", prob[i], logit[i]);
                if (info.has_itc) printf("%8.4f", sim[i]);
                else printf("%8s", "-");
                printf("  %s\n", texts[i]);
            }
        }
    } else {
        fprintf(stderr, "xvlm match: %s\n", xv_error_message());
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(pairs);
    free(logit);
    free(prob);
    free(sim);
    free(texts);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XV_OK ? 0 : 1;
}
