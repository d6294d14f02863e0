/* `xvlm caption`: describe images with a captioning model, generating as the
 * official Captioning.py evaluation does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model_opts.h"

int xv_cmd_caption(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    xv_opt_list images = {0};
    xvlm_caption_params cp = xvlm_caption_params_default();
    bool json = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--image", .kind = XV_OPT_STRINGS, .dest = &images, .value = "I",
         .help = "an image to caption (repeatable)"},
        {.name = "--beam", .kind = XV_OPT_INT, .dest = &cp.num_beams, .value = "K", .lo = 1, .hi = 64,
         .help = "beam width (default 3, Captioning.yaml; 1 = transformers' greedy search)"},
        {.name = "--max-len", .kind = XV_OPT_INT, .dest = &cp.max_length, .value = "N", .lo = 1, .hi = 4096,
         .help = "most ids per caption, the prompt's included (default 20)"},
        {.name = "--min-len", .kind = XV_OPT_INT, .dest = &cp.min_length, .value = "N", .lo = 0, .hi = 4096,
         .help = "ids before [SEP] may end a caption, the prompt's included (default 5)"},
        {.name = "--greedy", .kind = XV_OPT_FLAG, .dest = &cp.greedy,
         .help = "the official greedy loop instead (the SCST baseline: no min length)"},
        {.name = "--prompt", .kind = XV_OPT_STRING, .dest = &cp.prompt, .value = "P",
         .help = "text the caption starts from, cut from the output (default \"a picture of \")"},
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "caption",
        .usage = "xvlm caption --model M --image I [--image I2 ...] [--beam 3] [--max-len 20] [--min-len 5]\n"
                 "                    [--greedy] [--json]",
        .about = "Captions images with an X-VLM captioning model (models/model_captioning.py): beam\n"
                 "search as transformers 4.12.5 runs it (length penalty 1), starting from the\n"
                 "prompt, whose characters are then cut from the decoded text as Captioning.py\n"
                 "cuts them. Images get the official test transform.\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error (unreadable image, --max-len not above the\n"
                  "prompt, ...), 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const int n = images.n;
    if (n == 0) return xv_cli_usage_error("caption", "give at least one --image");
    xvlm_set_threads(mo.threads);
    xvlm_captioner *c = NULL;
    char **captions = calloc((size_t)n, sizeof *captions);
    float *scores = calloc((size_t)n, sizeof *scores);
    xvlm_status st = captions && scores ? XVLM_OK : XVLM_ERR_NOMEM;
    xvlm_model_params params = xv_cli_model_params(&mo);
    if (st == XVLM_OK) st = xvlm_captioner_load(mo.model, &params, &c);
    if (st == XVLM_OK) st = xvlm_caption_image_files(c, images.items, n, &cp, captions, scores);
    if (st == XVLM_OK && json) {
        printf("{\"results\": [");
        for (int i = 0; i < n; i++) {
            printf("%s{\"image\": ", i ? ", " : "");
            xv_cli_json_string(stdout, images.items[i]);
            printf(", \"caption\": ");
            xv_cli_json_string(stdout, captions[i]);
            if (isnan(scores[i])) printf("}");
            else printf(", \"score\": %.9g}", scores[i]);
        }
        printf("]}\n");
    } else if (st == XVLM_OK) {
        for (int i = 0; i < n; i++) printf("%s\t%s\n", images.items[i], captions[i]);
    } else {
        fprintf(stderr, "xvlm caption: %s\n", st == XVLM_ERR_NOMEM && !c ? "out of memory" : xvlm_last_error());
    }
    for (int i = 0; captions && i < n; i++) free(captions[i]);
    free(captions);
    free(scores);
    free(images.items);
    xvlm_captioner_free(c);
    return st == XVLM_OK ? 0 : 1;
}
