/* `xvlm evaluate`: zero-shot retrieval (Retrieval.py scoring) and box
 * grounding (Grounding_bbox.py scoring) of a model on a test split, or with
 * --config a task's evaluation as the official script's --evaluate runs it
 * (train/finetune.h). */
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "dist/dist.h"
#include "eval_print.h"
#include "model_opts.h"
#include "tasks/eval_weak_grounding.h"
#include "train/finetune_task.h"

typedef struct {
    const char *task, *data, *train, *out, *examples, *refcoco_data, *config, *output_dir, *dets;
    xv_fs_root images; /* --image-root, --allow-outside-root */
    int k_test, n_examples, layer;
    bool json;
    xv_cli_model_opts mo;
    xv_eval_progress_fn progress; /* rank 0's progress lines and notes (NULL on the other ranks) */
    FILE *notes;
} eval_args;

/* Prints the error of a failed step; returns the exit code. */
static int failed(const char *what) {
    fprintf(stderr, "xvlm evaluate: %s: %s\n", what, xv_error_message());
    return 1;
}

static int run_retrieval(const eval_args *a, xvlm_ctx *ctx) {
    xv_retrieval_set set;
    if (xv_retrieval_set_read(a->data, &a->images, &set) != XV_OK) return failed("reading the test split");
    xv_eval_retrieval_opts o = xv_eval_retrieval_opts_default();
    o.k_test = a->k_test;
    o.progress = a->progress;
    o.user = "evaluate";
    xv_eval_retrieval_result r;
    int rc = 0;
    if (xv_eval_retrieval(ctx, &set, &o, &r) != XV_OK) {
        rc = failed("retrieval");
    } else {
        xv_print_retrieval_table(stdout, &r);
        if (a->out && xv_write_retrieval_json(a->out, a->mo.model, &r) != XV_OK) rc = failed("--out");
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
        if (xv_grounding_set_read(a->train, &a->images, &train) != XV_OK) return failed("reading --train");
        xv_status st = xv_grounding_mean_box(&train, a->train, mean_box);
        xv_grounding_set_free(&train);
        if (st != XV_OK) return failed("the mean training box");
    }
    /* REFER(refcoco_data, 'refcoco+', 'unc') as Grounding_bbox.py: boxes and splits by ref_id */
    xv_refer refer = {0};
    if (a->refcoco_data && xv_refer_load(a->refcoco_data, "refcoco+", "unc", &refer) != XV_OK)
        return failed("--refcoco-data");
    xv_status read = xv_grounding_set_read_files(&a->data, 1, &a->images, a->refcoco_data ? &refer : NULL, &set);
    xv_refer_free(&refer);
    if (read != XV_OK) return failed("reading the test split");
    xv_eval_grounding_opts o = xv_eval_grounding_opts_default();
    o.progress = a->progress;
    o.user = "evaluate";
    xv_eval_grounding_result r;
    int rc = 0;
    if (xv_eval_grounding(ctx, &set, a->train ? mean_box : NULL, &o, &r) != XV_OK) {
        rc = failed("grounding");
    } else {
        xv_print_grounding_table(stdout, &set, &r);
        if (a->out && xv_write_grounding_json(a->out, a->mo.model, &set, &r) != XV_OK) rc = failed("--out");
        if (a->examples && xv_draw_grounding_examples(a->examples, &set, &r, a->n_examples > 0 ? a->n_examples : 16))
            rc = failed("--examples");
        xv_eval_grounding_result_free(&r);
    }
    xv_grounding_set_free(&set);
    return rc;
}

/* --config: everything from the task YAML, the flags override. Prints the
 * task's table and the official dict (only the dict with --json). */
static int run_config(const eval_args *a) {
    xv_finetune_eval_opts o = {.config_path = a->config, .model = a->mo.model, .vocab = a->mo.params.vocab_path,
                               .output_dir = a->output_dir, .test_file = a->data, .image_root = a->images.root,
                               .allow_outside_root = a->images.allow_outside_root,
                               .refcoco_data = a->refcoco_data, .k_test = a->k_test, .notes = a->notes,
                               .infer = {.image_res = a->mo.params.image_res, .text_heads = a->mo.params.text_heads}};
    xvlm_set_threads(a->mo.threads);
    xv_finetune_scores s;
    if (xv_finetune_evaluate(a->task, &o, &s) != XV_OK) return failed("--config");
    if (!a->json) xv_finetune_task_find(a->task)->print_scores(&s, stdout);
    printf("%s\n", s.official);
    if (a->out) {
        const size_t n = strlen(s.official);
        char *line = malloc(n + 1);
        if (line) memcpy(line, s.official, n), line[n] = '\n';
        xv_status st = line ? xv_fs_write_file(a->out, line, n + 1, XV_FS_DURABLE) : XV_ERR_NOMEM;
        free(line);
        if (st != XV_OK) return failed("--out");
    }
    return 0;
}

/* `xvlm evaluate table DIR...` */
static int table(int argc, char **argv) {
    xv_opt_list dirs = {0};
    const xv_opt opts[] = {XV_OPT_END};
    const xv_cli_spec spec = {
        .cmd = "evaluate",
        .usage = "xvlm evaluate table DIR [DIR ...]",
        .about = "The results of runs side by side; each DIR holds the retrieval.json and/or\n"
                 "grounding.json written by --out (named so, as scripts/demo.sh does).\n",
        .opts = opts,
        .positional = &dirs,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc - 1, argv + 1, &rc)) return rc;
    if (dirs.n == 0) return xv_cli_usage_error("evaluate", "table: name at least one run folder");
    rc = xv_eval_table(dirs.n, (char **)dirs.items);
    xv_opt_list_free(&dirs);
    return rc;
}

/* Grounding.py's evaluation: Grad-CAM maps choose among detector proposals. */
static int run_weak_grounding(const eval_args *a, xvlm_ctx *ctx, int layer) {
    xv_refer refer = {0};
    xv_dets dets = {0};
    xv_grounding_set set;
    if (a->refcoco_data && xv_refer_load(a->refcoco_data, "refcoco+", "unc", &refer) != XV_OK)
        return failed("--refcoco-data");
    if (xv_dets_read(a->dets, &dets) != XV_OK) {
        xv_refer_free(&refer);
        return failed("--dets");
    }
    int rc = 0;
    if (xv_grounding_set_read_files(&a->data, 1, &a->images, a->refcoco_data ? &refer : NULL, &set) != XV_OK) {
        rc = failed("reading the test split");
    } else {
        xv_weak_grounding_result r;
        if (xv_eval_weak_grounding(ctx, &set, a->refcoco_data ? &refer : NULL, &dets, layer, &r) != XV_OK) {
            rc = failed("weak grounding");
        } else {
            int64_t chosen_true = 0;
            for (int64_t i = 0; i < set.n; i++) chosen_true += r.correct[i];
            printf("weak grounding (Grad-CAM layer %d over %s): %lld expressions, %lld correct (IoU >= 0.5)\n", layer,
                   a->dets, (long long)set.n, (long long)chosen_true);
            static const char *const names[XV_N_SPLITS] = {"val_d", "testA_d", "testB_d"};
            for (int s = 0; s < XV_N_SPLITS; s++)
                if (r.accuracy[s] == r.accuracy[s])
                    printf("  %-8s %.4f   (a random proposal: %.4f)\n", a->refcoco_data || s ? names[s] : "all",
                           r.accuracy[s], r.random_accuracy[s]);
            int64_t peaks = 0;
            double share = 0;
            for (int64_t i = 0; i < set.n; i++) peaks += r.peak_in_box[i], share += r.box_share[i];
            printf("Grad-CAM peak inside the true box: %lld of %lld (%.1f %%); a peak drawn uniformly over the image: "
                   "%.1f %% (the boxes' mean share of the image)\n", (long long)peaks, (long long)set.n,
                   set.n ? 100.0 * (double)peaks / (double)set.n : 0.0, set.n ? 100.0 * share / (double)set.n : 0.0);
            xv_weak_grounding_result_free(&r);
        }
        xv_grounding_set_free(&set);
    }
    xv_dets_free(&dets);
    xv_refer_free(&refer);
    return rc;
}

int xv_cmd_evaluate(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "table")) return table(argc, argv);
    eval_args a = {.layer = -1, .mo = xv_cli_model_opts_default()};
    xv_opt_list task = {0};
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&a.mo),
        {.name = "--config", .kind = XV_OPT_STRING, .dest = &a.config, .value = "YAML",
         .help = "the official task YAML (Retrieval_coco.yaml, Grounding_bbox.yaml,\n"
                 "VQA.yaml, Captioning.yaml, NLVR.yaml):\n"
                 "test_file, val_file, image_root, refcoco_data, k_test, image_res,\n"
                 "max_words, max_tokens from it (relative paths from the working\n"
                 "directory); the flags below override"},
        {.name = "--output-dir", .kind = XV_OPT_STRING, .dest = &a.output_dir, .value = "DIR",
         .help = "with --config: where result/ files go (grounding:\n"
                 "result/grounding_bbox_eval.json with each ref_id's box; vqa:\n"
                 "result/vqa_eval.json [{question_id, answer}]; captioning:\n"
                 "result/test_eval.json [{image_id, caption}])",
         .unset = "none written"},
        {.name = "--data", .kind = XV_OPT_STRING, .dest = &a.data, .value = "FILE",
         .help = "the test split (with --config: instead of test_file)"},
        XV_OPT_IMAGE_ROOT(&a.images, "prefix of relative image paths (with --config: instead of\n"
                                     "image_root); an image that resolves outside it is refused"),
        {.name = "--k-test", .kind = XV_OPT_INT, .dest = &a.k_test, .value = "K", .lo = 1, .hi = 1 << 20,
         .help = "retrieval: pairs re-ranked per query; vqa: candidate answers ranked",
         .unset = "the YAML's, else 128"},
        {.name = "--train", .kind = XV_OPT_STRING, .dest = &a.train, .value = "FILE",
         .help = "grounding: training split for the mean-box baseline"},
        {.name = "--refcoco-data", .kind = XV_OPT_STRING, .dest = &a.refcoco_data, .value = "DIR",
         .help = "grounding: the REFER root (the YAML's refcoco_data):\n"
                 "DIR/refcoco+/refs(unc).p and instances.json give each {image, text,\n"
                 "ref_id} its box and split; scores val_d, testA_d, testB_d"},
        {.name = "--dets", .kind = XV_OPT_STRING, .dest = &a.dets, .value = "FILE",
         .help = "weak-grounding: detector proposals, the official det_file\n"
                 "{\"<image id>\": [[x, y, w, h, ...], ...]} (xvlm synth writes dets.json)"},
        {.name = "--layer", .kind = XV_OPT_INT, .dest = &a.layer, .value = "L", .lo = -1, .hi = 1000,
         .help = "weak-grounding: the fusion layer Grad-CAM reads (Grounding.yaml block_num)",
         .unset = "fusion_layer + 3, or the last layer"},
        XV_OPT_OUT(&a.out, "OUT.json",
                   "write the results (grounding: with every prediction) as JSON;\n"
                   "with --config the official dict",
                   false),
        XV_OPT_JSON(&a.json),
        {.name = "--examples", .kind = XV_OPT_STRING, .dest = &a.examples, .value = "PNG",
         .help = "draw examples: retrieval rows (query, top 5 images) or a grid of\n"
                 "predicted and true boxes"},
        {.name = "--n-examples", .kind = XV_OPT_INT, .dest = &a.n_examples, .value = "N", .lo = 1, .hi = 256,
         .help = "how many examples", .unset = "retrieval 6 queries, grounding 16 expressions"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "evaluate",
        .usage = "xvlm evaluate TASK --config TASK.yaml --model M [--output-dir DIR] [--json]\n"
                 "                               [--data TEST.json] [--image-root DIR] [--k-test K]\n"
                 "                               [--refcoco-data DIR] [--out OUT.json]\n"
                 "       xvlm evaluate retrieval --model M --data TEST.json --image-root DIR [--k-test 128]\n"
                 "                               [--out OUT.json] [--examples OUT.png] [--n-examples 6]\n"
                 "       xvlm evaluate grounding --model M --data TEST.json --image-root DIR [--train TRAIN.json]\n"
                 "                               [--refcoco-data DIR]\n"
                 "                               [--out OUT.json] [--examples OUT.png] [--n-examples 16]\n"
                 "       xvlm evaluate weak-grounding --model M --data TEST.json --image-root DIR --dets DETS.json\n"
                 "                               [--refcoco-data DIR] [--layer L]\n"
                 "       xvlm evaluate table DIR [DIR ...]",
        .about = "--config: the task's evaluation as Retrieval.py / Grounding_bbox.py --evaluate, the same as\n"
                 "fine-tuning runs after each epoch: retrieval itm_eval of val_file (when given) and\n"
                 "test_file (val_txt_r1 ... test_r_mean); grounding grounding_eval_bbox of test_file by\n"
                 "REFER split (val_d, testA_d, testB_d); vqa the answers of test_file ranked as VQA.py\n"
                 "(acc: VQA accuracy of answer lists, calculate_acc's exact match of strings, and\n"
                 "answer_prior_acc: the most frequent training answer of each question type);\n"
                 "captioning beam search on test_file (BLEU-1..4, ROUGE-L, CIDEr-D as the coco-caption\n"
                 "toolkit, against each entry's caption list); captioning_scst the same. The model at the\n"
                 "YAML's image_res (vqa, captioning: a fine-tuned model of the task). Prints the table,\n"
                 "then the official dict as one JSON line.\n"
                 "\n"
                 "retrieval: a re_eval_dataset file ([{image, caption: [..]}]). Every image and text is\n"
                 "encoded once; ITC similarities rank the gallery; for each image (text) the k-test texts\n"
                 "(images) of highest similarity are re-scored with the ITM class-1 logit, the rest keep\n"
                 "-100 (Retrieval.py). Prints R@1/5/10 both ways and r_mean, by ITC alone, by ITC + ITM,\n"
                 "and by chance. Texts: pre_caption (30 words), at most 40 tokens.\n"
                 "\n"
                 "grounding: a RefCOCO+ file with inline boxes ([{image, text, bbox: [x,y,w,h]}]), or with\n"
                 "ref_id and --refcoco-data (the official refcoco+_val.json / _test.json). The box\n"
                 "head on the fusion [CLS] of each expression with its whole image, scaled to the original\n"
                 "image; correct when IoU >= 0.5 (inclusive pixels, as the official computeIoU). With\n"
                 "--train (the same format with width/height) the mean training box is scored too.\n"
                 "\n"
                 "table: the results of runs side by side; each DIR holds the retrieval.json and/or\n"
                 "grounding.json written by --out (named so, as scripts/demo.sh does).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error, 2 usage.\n",
        .positional = &task,
        .max_positional = 1,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    a.progress = xv_eval_progress_stderr, a.notes = stderr;
    if (xv_dist_rank() != 0) {
        /* Under mpirun every rank evaluates its share (retrieval splits its
         * ITM re-rank; the other tasks deal out their samples as
         * DistributedSampler) and gets every result; rank 0 alone prints and
         * writes. Errors still reach stderr. */
        a.progress = NULL, a.notes = NULL, a.out = a.examples = NULL;
        if (!freopen("/dev/null", "w", stdout)) return 1;
    }
    a.task = task.n ? task.items[0] : "";
    xv_opt_list_free(&task);
    if (!*a.task) return xv_cli_usage_error("evaluate", "first name the task: %s, or table", xv_finetune_task_names());
    const bool weak = !strcmp(a.task, "weak-grounding");
    if (weak != (a.dets != NULL)) return xv_cli_usage_error("evaluate", "weak-grounding and --dets go together");
    if (a.train && strcmp(a.task, "grounding")) return xv_cli_usage_error("evaluate", "--train applies to grounding only");
    if (a.refcoco_data && strcmp(a.task, "grounding") && !weak)
        return xv_cli_usage_error("evaluate", "--refcoco-data applies to grounding and weak-grounding only");
    if (a.config) {
        if (!xv_finetune_task_find(a.task))
            return xv_cli_usage_error("evaluate", "unknown task '%s' (%s)", a.task, xv_finetune_task_names());
        if (a.train || a.examples) return xv_cli_usage_error("evaluate", "--train and --examples go without --config");
        return run_config(&a);
    }
    if (strcmp(a.task, "retrieval") && strcmp(a.task, "grounding") && !weak)
        return xv_cli_usage_error("evaluate",
                                  "unknown task '%s': retrieval, grounding, weak-grounding or table (with --config: %s)",
                                  a.task, xv_finetune_task_names());
    if (!a.data) return xv_cli_usage_error("evaluate", "name the test split: --data FILE, or the task YAML: --config");
    if (a.output_dir || a.json) return xv_cli_usage_error("evaluate", "--output-dir and --json go with --config");
    if (!a.k_test) a.k_test = 128;
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("evaluate", &a.mo, &m, &ctx)) return 1;
    if (weak) rc = run_weak_grounding(&a, ctx, a.layer >= 0 ? a.layer : xvlm_gradcam_default_layer(m));
    else rc = !strcmp(a.task, "retrieval") ? run_retrieval(&a, ctx) : run_grounding(&a, ctx);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return rc;
}
