/* `xvlm vqa`: answer a question about an image with a VQA model, ranking a
 * candidate answer list as the official VQA.py evaluation does. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "model_opts.h"

/* --answers, else answer_list.json in the model folder. */
static const char *answers_path(const char *given, const char *model, char *buf, size_t n) {
    if (given) return given;
    struct stat st;
    snprintf(buf, n, "%s/answer_list.json", model);
    return stat(model, &st) == 0 && S_ISDIR(st.st_mode) && stat(buf, &st) == 0 ? buf : NULL;
}

int xv_cmd_vqa(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    const char *image = NULL, *question = NULL, *answers_arg = NULL;
    xvlm_vqa_params vp = xvlm_vqa_params_default();
    int top = 5;
    bool json = false;
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--image", .kind = XV_OPT_STRING, .dest = &image, .value = "I", .help = "the image", .required = true},
        {.name = "--question", .short_name = 'q', .kind = XV_OPT_STRING, .dest = &question, .value = "Q",
         .help = "the question", .required = true},
        {.name = "--answers", .kind = XV_OPT_STRING, .dest = &answers_arg, .value = "FILE",
         .help = "candidate answers: a JSON list of strings (the official answer_list.json;\n"
                 "default: answer_list.json in the model folder)"},
        {.name = "--k", .kind = XV_OPT_INT, .dest = &vp.k, .value = "K", .lo = 1, .hi = 1 << 20,
         .help = "candidates re-ranked by the answer decoder (default 128, VQA.yaml k_test)"},
        {.name = "--top", .kind = XV_OPT_INT, .dest = &top, .value = "N", .lo = 1, .hi = 1 << 20,
         .help = "answers printed (default 5)"},
        XV_OPT_JSON(&json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "vqa",
        .usage = "xvlm vqa --model M --image I --question Q [--answers answer_list.json] [--k 128] [--json]",
        .about = "Answers a question about an image with an X-VLM VQA model (models/model_vqa.py):\n"
                 "the answer decoder scores every candidate's first piece after [CLS], the best k\n"
                 "are re-ranked by their whole likelihood, and the probabilities are the softmax\n"
                 "over those k. The question gets pre_question (50 words), the image the official\n"
                 "test transform.\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error (unreadable image, empty question, bad answer\n"
                  "list, ...), 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    char buf[4200];
    const char *list_path = answers_path(answers_arg, mo.model, buf, sizeof buf);
    if (!list_path)
        return xv_cli_usage_error("vqa", "give the candidate answers with --answers FILE (no answer_list.json in the "
                                         "model folder)");
    xvlm_set_threads(mo.threads);
    char **answers = NULL;
    int n = 0, got = 0;
    xvlm_vqa *v = NULL;
    xvlm_answer *out = NULL;
    xvlm_status st = xvlm_answer_list_load(list_path, &answers, &n);
    xvlm_model_params params = xv_cli_model_params(&mo);
    if (st == XVLM_OK) st = xvlm_vqa_load(mo.model, &params, &v);
    if (st == XVLM_OK && !(out = calloc((size_t)n, sizeof *out))) st = XVLM_ERR_NOMEM;
    if (st == XVLM_OK) st = xvlm_vqa_answer(v, image, question, (const char *const *)answers, n, &vp, out, &got);
    if (st == XVLM_OK) {
        if (top < got) got = top;
        if (json) {
            printf("{\"image\": ");
            xv_cli_json_string(stdout, image);
            printf(", \"question\": ");
            xv_cli_json_string(stdout, question);
            printf(", \"answers\": [");
            for (int i = 0; i < got; i++) {
                printf("%s{\"answer\": ", i ? ", " : "");
                xv_cli_json_string(stdout, answers[out[i].index]);
                printf(", \"prob\": %.9g, \"index\": %d}", out[i].prob, out[i].index);
            }
            printf("]}\n");
        } else {
            printf("%8s  answer\n", "prob");
            for (int i = 0; i < got; i++) printf("%8.4f  %s\n", out[i].prob, answers[out[i].index]);
        }
    } else {
        fprintf(stderr, "xvlm vqa: %s\n", st == XVLM_ERR_NOMEM && !v ? "out of memory" : xvlm_last_error());
    }
    free(out);
    xvlm_vqa_free(v);
    xvlm_strings_free(answers, n);
    return st == XVLM_OK ? 0 : 1;
}
