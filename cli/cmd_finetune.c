/* `xvlm finetune retrieval|grounding`: the official Retrieval.py and
 * Grounding_bbox.py fine-tuning (train/finetune.h does the work). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "train/finetune.h"
#include "xvlm.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: xvlm finetune retrieval|grounding --config FILE.yaml --init MODEL_DIR\n"
            "                     [--output-dir DIR] [--seed S] [--max-steps N] [--threads N]\n"
            "                     [--no-eval-before] [--quiet]\n"
            "\n"
            "retrieval: Retrieval.py: ITC (same image_id = positive) + ITM (negatives from other\n"
            "  images), RandomResizedCrop(0.5..1) + flip + RandAug, pre_caption 30 words; then the\n"
            "  Retrieval.py evaluation (ITC top k_test re-ranked by ITM) of test_file.\n"
            "grounding: Grounding_bbox.py: box crop + careful flip + colour RandAug, loss L1 + GIoU;\n"
            "  then accuracy at IoU >= 0.5 on test_file.\n"
            "Both: AdamW (optimizer.lr, weight_decay), linear schedule with warmup, no clipping.\n"
            "\n"
            "  --config FILE     Retrieval.yaml / Grounding_bbox.yaml keys: train_file, test_file,\n"
            "                    image_root (default: each JSON file's folder), image_res,\n"
            "                    batch_size_train | batch_size, k_test, max_words, max_tokens,\n"
            "                    optimizer{lr, weight_decay}, schedular{epochs, num_warmup_steps},\n"
            "                    careful_hflip; relative paths are from the YAML's folder. An\n"
            "                    image_res other than the model's scales the Swin window with it\n"
            "                    (224/7 -> 384/12) and interpolates the relative-position tables\n"
            "  --init DIR        the model folder to start from (config.json, weights.safetensors,\n"
            "                    vocab.txt)\n"
            "  --output-dir DIR  DIR/model/ (the fine-tuned model, same layout as the input) and\n"
            "                    DIR/result.json (default output/finetune)\n"
            "  --seed S          data order, augmentation, dropout, negatives (default 42)\n"
            "  --max-steps N     stop after N steps (the schedule keeps the config's length)\n"
            "  --no-eval-before  skip the evaluation of the initial model\n"
            "  --quiet           no progress lines\n");
}

int xv_cmd_finetune(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv) || argc < 2) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    xv_finetune_task task;
    if (!strcmp(argv[1], "retrieval")) task = XV_FINETUNE_RETRIEVAL;
    else if (!strcmp(argv[1], "grounding")) task = XV_FINETUNE_GROUNDING;
    else {
        fprintf(stderr, "xvlm finetune: unknown task '%s' (retrieval or grounding)\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    xv_finetune_opts o = xv_finetune_opts_default();
    o.notes = stderr;
    int threads = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--quiet")) {
            o.progress = false;
            continue;
        }
        if (!strcmp(a, "--no-eval-before")) {
            o.eval_before = false;
            continue;
        }
        char *end = NULL;
        errno = 0;
        if (!strcmp(a, "--config")) ok = v != NULL, o.config_path = v;
        else if (!strcmp(a, "--init")) ok = v != NULL, o.init_dir = v;
        else if (!strcmp(a, "--output-dir")) ok = v != NULL, o.output_dir = v;
        else if (!strcmp(a, "--seed")) {
            o.seed = v ? strtoull(v, &end, 10) : 0;
            ok = v && !errno && end != v && !*end && v[0] != '-';
        } else if (!strcmp(a, "--max-steps") || !strcmp(a, "--threads")) {
            long long x = v ? strtoll(v, &end, 10) : 0;
            ok = v && !errno && end != v && !*end && x >= 1 && x <= (1LL << 40);
            if (a[2] == 'm') o.max_steps = x;
            else threads = x > 4096 ? 4096 : (int)x;
        } else {
            fprintf(stderr, "xvlm finetune: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "xvlm finetune: bad or missing value for %s\n", a);
            return 2;
        }
        i++;
    }
    if (!o.config_path || !o.init_dir) {
        fprintf(stderr, "xvlm finetune: --config and --init are required\n\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) xvlm_set_threads(threads);
    if (!o.progress) o.notes = NULL;
    xv_finetune_result r;
    if (xv_finetune_run(task, &o, &r) != XV_OK) {
        fprintf(stderr, "xvlm finetune: %s\n", xv_error_message());
        return 1;
    }
    const char *metric = task == XV_FINETUNE_RETRIEVAL ? "r_mean" : "accuracy@IoU0.5";
    printf("%s: %lld steps in %.1f s, loss %.4f -> %.4f; %s %.2f -> %.2f; results in %s/result.json\n", argv[1],
           (long long)r.steps, r.seconds_train, r.first_loss, r.last_loss, metric, r.metric_before, r.metric_after,
           o.output_dir);
    return 0;
}
