/* `xvlm nlvr`: is a statement about two images true (NLVR2)? */
#include <stdlib.h>

#include "model_opts.h"

int xv_cmd_nlvr(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    const char *paths[2] = {NULL, NULL};
    xv_opt_list text_list = {0};
    bool json = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--left", .kind = XV_OPT_STRING, .dest = &paths[0], .value = "A", .help = "the left image",
         .required = true},
        {.name = "--right", .kind = XV_OPT_STRING, .dest = &paths[1], .value = "B", .help = "the right image",
         .required = true},
        {.name = "--text", .kind = XV_OPT_STRINGS, .dest = &text_list, .value = "T",
         .help = "a statement about the pair (at least one)"},
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "nlvr",
        .usage = "xvlm nlvr --model M --left A --right B --text T [--text T2 ...] [--json]",
        .about = "Decides whether each statement holds for the pair of images, as NLVR.py\n"
                 "evaluates: both images through the vision encoder, the text through the paired\n"
                 "fusion layers (even ones reading the left image, odd ones the right), cls_head\n"
                 "on [CLS]; true when the logit of class 1 is larger. Texts get pre_caption (30\n"
                 "words), no token cut. Needs an NLVR2 model (cls_head).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error (unreadable image, empty text, not an NLVR2 model), 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char **texts = text_list.items;
    const int nt = text_list.n;
    if (nt == 0) return xv_cli_usage_error("nlvr", "give at least one --text");
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("nlvr", &mo, &m, &ctx)) {
        free(texts);
        return 1;
    }
    xvlm_text_params tp = xvlm_text_params_default();
    tp.max_tokens = 0;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_nlvr_pair *pairs = calloc((size_t)nt, sizeof *pairs);
    float *logits = calloc((size_t)nt * 2, sizeof *logits), *prob = calloc((size_t)nt, sizeof *prob);
    const bool out_of_memory = !(pairs && logits && prob);
    xvlm_status st = out_of_memory ? XVLM_ERR_NOMEM : XVLM_OK;
    if (st == XVLM_OK) st = xvlm_encode_image_files(ctx, paths, 2, NULL, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, texts, nt, &tp, &tx);
    for (int i = 0; i < nt && st == XVLM_OK; i++) pairs[i] = (xvlm_nlvr_pair){.left = 0, .right = 1, .text = i};
    if (st == XVLM_OK) st = xvlm_nlvr(ctx, im, tx, pairs, nt, logits, prob);
    if (st == XVLM_OK && json) {
        printf("{\"left\": ");
        xv_cli_json_string(stdout, paths[0]);
        printf(", \"right\": ");
        xv_cli_json_string(stdout, paths[1]);
        printf(", \"results\": [");
        for (int i = 0; i < nt; i++) {
            printf("%s{\"text\": ", i ? ", " : "");
            xv_cli_json_string(stdout, texts[i]);
            printf(", \"clean\": ");
            xv_cli_json_string(stdout, xvlm_texts_text(tx, i));
            printf(", \"answer\": %s, \"prob_true\": %.9g, \"logits\": [%.9g, %.9g]}",
                   logits[2 * i + 1] > logits[2 * i] ? "true" : "false", prob[i], logits[2 * i], logits[2 * i + 1]);
        }
        printf("]}\n");
    } else if (st == XVLM_OK) {
        printf("left %s, right %s\n%6s %9s  statement\n", paths[0], paths[1], "answer", "prob_true");
        for (int i = 0; i < nt; i++)
            printf("%6s %9.4f  %s\n", logits[2 * i + 1] > logits[2 * i] ? "true" : "false", prob[i], texts[i]);
    } else {
        fprintf(stderr, "xvlm nlvr: %s\n", out_of_memory ? "out of memory" : xvlm_last_error());
    }
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    free(pairs), free(logits), free(prob), free(texts);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XVLM_OK ? 0 : 1;
}
