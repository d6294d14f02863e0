/* `xvlm match`: how well texts describe an image (ITM probability and logit,
 * and the ITC similarity). */
#include <stdlib.h>
#include <string.h>

#include "model_opts.h"

int xv_cmd_match(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    xv_cli_image_texts it = {0};
    bool json = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        XV_OPT_IMAGE_TEXTS(&it, "a text to score (at least one)"),
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "match",
        .usage = "xvlm match --model M --image I --text T [--text T2 ...] [--json]",
        .about = "Scores how well each text matches the image with X-VLM's image-text matching\n"
                 "head (fusion encoder over all vision tokens, itm_head on [CLS]):\n"
                 "  itm_prob   softmax of the two ITM logits, class 1 (\"match\")\n"
                 "  itm_logit  the raw class-1 logit (the score Retrieval.py re-ranks with)\n"
                 "  itc        cosine similarity of the ITC features (when the model has them)\n"
                 "Images get the official test transform; texts pre_caption (30 words) and\n"
                 "[CLS] + WordPiece tokens (at most 40).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error (unreadable image, empty text, ...), 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_model *m;
    xvlm_ctx *ctx;
    if ((rc = xv_cli_open_model_for_texts("match", &mo, &it, &m, &ctx))) return rc;
    xvlm_model_info info;
    xvlm_model_get_info(m, &info);
    const char *image = it.image, **texts = it.texts.items;
    const int nt = it.texts.n;
    float *logit = calloc((size_t)nt, sizeof *logit), *prob = calloc((size_t)nt, sizeof *prob);
    float *sim = calloc((size_t)nt, sizeof *sim);
    xv_cli_encoded e;
    xvlm_status st = xv_cli_encode_image_texts(ctx, &it, NULL, &e);
    if (st == XVLM_OK && !(logit && prob && sim)) st = XVLM_ERR_NOMEM;
    if (st == XVLM_OK) st = xvlm_itm(ctx, e.im, e.tx, e.pairs, nt, logit, prob);
    if (st == XVLM_OK && info.has_itc) st = xvlm_similarity(e.im, e.tx, sim);
    if (st == XVLM_OK) {
        int w, h;
        xvlm_images_size(e.im, 0, &w, &h);
        if (json) {
            xv_cli_json_image_start(info.id, image, w, h);
            for (int i = 0; i < nt; i++) {
                printf("%s{\"text\": ", i ? ", " : "");
                xv_cli_json_string(stdout, texts[i]);
                printf(", \"clean\": ");
                xv_cli_json_string(stdout, xvlm_texts_text(e.tx, i));
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
        fprintf(stderr, "xvlm match: %s\n", st == XVLM_ERR_NOMEM ? "out of memory" : xvlm_last_error());
    }
    free(logit);
    free(prob);
    free(sim);
    xv_cli_encoded_free(&e, &it);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XVLM_OK ? 0 : 1;
}
