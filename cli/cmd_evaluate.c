/* `xvlm evaluate`: zero-shot retrieval (Retrieval.py scoring) and box
 * grounding (Grounding_bbox.py scoring) of a model on a test split. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "eval_print.h"
#include "model_opts.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: xvlm evaluate retrieval --model M --data TEST.json --image-root DIR [--k-test 128]\n"
            "                               [--json OUT.json] [--examples OUT.png] [--n-examples 6]\n"
            "       xvlm evaluate grounding --model M --data TEST.json --image-root DIR [--train TRAIN.json]\n"
            "                               [--json OUT.json] [--examples OUT.png] [--n-examples 16]\n"
            "       xvlm evaluate table DIR [DIR ...]\n"
            "\n"
            "retrieval: a re_eval_dataset file ([{image, caption: [..]}]). Every image and text is\n"
            "encoded once; ITC similarities rank the gallery; for each image (text) the k-test texts\n"
            "(images) of highest similarity are re-scored with the ITM class-1 logit, the rest keep\n"
            "-100 (Retrieval.py). Prints R@1/5/10 both ways and r_mean, by ITC alone, by ITC + ITM,\n"
            "and by chance. Texts: pre_caption (30 words), at most 40 tokens.\n"
            "\n"
            "grounding: a RefCOCO+ file with inline boxes ([{image, text, bbox: [x,y,w,h]}]). The box\n"
            "head on the fusion [CLS] of each expression with its whole image, scaled to the original\n"
            "image; correct when IoU >= 0.5 (inclusive pixels, as the official computeIoU). With\n"
            "--train (the same format with width/height) the mean training box is scored too.\n"
            "\n"
            "table: the results of runs side by side; each DIR holds the retrieval.json and/or\n"
            "grounding.json written by --json (named so, as scripts/demo.sh does).\n"
            "\n" XV_CLI_MODEL_HELP
            "  --data FILE       the test split\n"
            "  --image-root DIR  prefix of relative image paths\n"
            "  --k-test K        retrieval: pairs re-ranked per query (default 128)\n"
            "  --train FILE      grounding: training split for the mean-box baseline\n"
            "  --json OUT        write the results (grounding: with every prediction) as JSON\n"
            "  --examples PNG    draw examples: retrieval rows (query, top 5 images) or a grid of\n"
            "                    predicted and true boxes\n"
            "  --n-examples N    how many (retrieval: 6 queries; grounding: 16 expressions)\n"
            "\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage.\n");
}

typedef struct {
    const char *task, *data, *image_root, *train, *json, *examples;
    int k_test, n_examples;
    xv_cli_model_opts mo;
} eval_args;

static int parse(int argc, char **argv, eval_args *a) {
    memset(a, 0, sizeof *a);
    xv_cli_model_opts_init(&a->mo);
    a->k_test = 128;
    a->n_examples = -1;
    if (argc < 2 || (strcmp(argv[1], "retrieval") && strcmp(argv[1], "grounding"))) {
        fprintf(stderr, "xvlm evaluate: first name the task: retrieval, grounding or table\n\n");
        return 0;
    }
    a->task = argv[1];
    for (int i = 2; i < argc; i++) {
        int r = xv_cli_model_option("evaluate", argc, argv, &i, &a->mo);
        if (r < 0) return 0;
        if (r) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "xvlm evaluate: unknown or incomplete option '%s'\n\n", o);
            return 0;
        }
        i++;
        if (!strcmp(o, "--data")) a->data = v;
        else if (!strcmp(o, "--image-root")) a->image_root = v;
        else if (!strcmp(o, "--train")) a->train = v;
        else if (!strcmp(o, "--json")) a->json = v;
        else if (!strcmp(o, "--examples")) a->examples = v;
        else if (!strcmp(o, "--k-test")) {
            if (!xv_cli_int("evaluate", o, v, 1, 1 << 20, &a->k_test)) return 0;
        } else if (!strcmp(o, "--n-examples")) {
            if (!xv_cli_int("evaluate", o, v, 1, 256, &a->n_examples)) return 0;
        } else {
            fprintf(stderr, "xvlm evaluate: unknown option '%s'\n\n", o);
            return 0;
        }
    }
    if (!a->mo.model || !a->data) {
        fprintf(stderr, "xvlm evaluate %s: --model and --data are required\n\n", a->task);
        return 0;
    }
    if (a->train && strcmp(a->task, "grounding")) {
        fprintf(stderr, "xvlm evaluate: --train applies to grounding only\n\n");
        return 0;
    }
    return 1;
}

/* Prints the error of a failed step; returns the exit code. */
static int failed(const char *what) {
    fprintf(stderr, "xvlm evaluate: %s: %s\n", what, xv_error_message());
    return 1;
}

static int run_retrieval(const eval_args *a, xvlm_ctx *ctx) {
    xv_retrieval_set set;
    if (xv_retrieval_set_read(a->data, a->image_root, &set) != XV_OK) return failed("reading the test split");
    xv_eval_retrieval_opts o = xv_eval_retrieval_opts_default();
    o.k_test = a->k_test;
    o.progress = xv_eval_progress_stderr;
    o.user = "evaluate";
    xv_eval_retrieval_result r;
    int rc = 0;
    if (xv_eval_retrieval(ctx, &set, &o, &r) != XV_OK) {
        rc = failed("retrieval");
    } else {
        xv_print_retrieval_table(stdout, &r);
        if (a->json && xv_write_retrieval_json(a->json, a->mo.model, &r) != XV_OK) rc = failed("--json");
        if (a->examples && xv_draw_retrieval_examples(a->examples, &set, &r, a->n_examples > 0 ? a->n_examples : 6))
            rc = failed("--examples");
        xv_eval_retrieval_result_free(&r);
    }
    xv_retrieval_set_free(&set);
    return rc;
}

static int run_grounding(const eval_args *a, xvlm_ctx *ctx) {
    xv_grounding_set set, train;
    double mean_box[4];
    if (a->train) {
        if (xv_grounding_set_read(a->train, a->image_root, &train) != XV_OK) return failed("reading --train");
        xv_status st = xv_grounding_mean_box(&train, a->train, mean_box);
        xv_grounding_set_free(&train);
        if (st != XV_OK) return failed("the mean training box");
    }
    if (xv_grounding_set_read(a->data, a->image_root, &set) != XV_OK) return failed("reading the test split");
    xv_eval_grounding_opts o = xv_eval_grounding_opts_default();
    o.progress = xv_eval_progress_stderr;
    o.user = "evaluate";
    xv_eval_grounding_result r;
    int rc = 0;
    if (xv_eval_grounding(ctx, &set, a->train ? mean_box : NULL, &o, &r) != XV_OK) {
        rc = failed("grounding");
    } else {
        xv_print_grounding_table(stdout, &r);
        if (a->json && xv_write_grounding_json(a->json, a->mo.model, &set, &r) != XV_OK) rc = failed("--json");
        if (a->examples && xv_draw_grounding_examples(a->examples, &set, &r, a->n_examples > 0 ? a->n_examples : 16))
            rc = failed("--examples");
        xv_eval_grounding_result_free(&r);
    }
    xv_grounding_set_free(&set);
    return rc;
}

int xv_cmd_evaluate(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "table")) {
        if (argc < 3) {
            fprintf(stderr, "xvlm evaluate table: name at least one run folder\n\n");
            help(stderr);
            return 2;
        }
        return xv_eval_table(argc - 2, argv + 2);
    }
    eval_args a;
    if (!parse(argc, argv, &a)) {
        help(stderr);
        return 2;
    }
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("evaluate", &a.mo, &m, &ctx)) return 1;
    int rc = !strcmp(a.task, "retrieval") ? run_retrieval(&a, ctx) : run_grounding(&a, ctx);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return rc;
}
