/* `xvlm pretrain`: the X-VLM pretraining loop of the official Pretrain.py
 * (train/pretrain_run.h does the work). */
#include <cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "train/pretrain_run.h"
#include "xvlm.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: xvlm pretrain --config FILE.yaml [--output-dir DIR] [--resume [CKPT]] [--seed S]\n"
            "                     [--threads N] [--max-steps N] [--init WEIGHTS_DIR] [--quiet]\n"
            "\n"
            "Pretrains X-VLM as the official Pretrain.py does: for every image-text batch, with\n"
            "probability regions.iter_perc first a region update (ITC + ITM + MLM + box L1 + GIoU,\n"
            "no scheduler step), then the image-text update (ITC + ITM + MLM); AdamW with the\n"
            "official parameter groups, linear warmup/decay, gradient clipping, dropout on.\n"
            "\n"
            "  --config FILE     an official pretraining YAML (Pretrain_XVLM_base_4m.yaml keys); the\n"
            "                    model from vision_config + text_config, or model_config: (a project\n"
            "                    config.json path, or its content inline); vocab: or text_encoder:\n"
            "                    gives vocab.txt; image_root: prefixes relative image paths\n"
            "  --output-dir DIR  where checkpoints/, log.jsonl, loss_curves.png and model/ go\n"
            "                    (default output/pretrain)\n"
            "  --resume [CKPT]   continue exactly from CKPT, or from the newest checkpoint in\n"
            "                    DIR/checkpoints (a fresh start if there is none)\n"
            "  --seed S          seed of every random stream: init, data order, augmentation,\n"
            "                    masking, dropout, negatives, region coin (default 42)\n"
            "  --threads N       threads (default: all cores); a run is bitwise reproducible for\n"
            "                    the same seed, thread count and loader workers\n"
            "  --max-steps N     stop after N image-text steps in all (default: epochs x steps per\n"
            "                    epoch of the config); the schedule keeps the config's length\n"
            "  --init DIR        start from DIR/weights.safetensors (a whole pretraining model, as\n"
            "                    `xvlm convert` or a previous run's model/ writes it) instead of\n"
            "                    random weights\n"
            "  --quiet           no progress line\n"
            "\n"
            "Writes DIR/checkpoints/checkpoint_<step>.safetensors every ckpt_frequent_step steps and\n"
            "at the end (atomic, last 3 kept), DIR/log.jsonl (one JSON object per update: losses,\n"
            "lr, grad norm, samples/s, skipped-data counters), DIR/loss_curves.png and the final\n"
            "model as DIR/model/{config.json,weights.safetensors}. SIGINT/SIGTERM stop after the\n"
            "current step with a checkpoint. Exit status: 0 ok, 1 runtime error or interrupted,\n"
            "2 usage.\n");
}

static int parse_i64(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int xv_cmd_pretrain(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    xv_pretrain_run_opts o = xv_pretrain_run_opts_default();
    o.notes = stderr;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x = 0;
        int ok = 1;
        if (!strcmp(a, "--resume")) { /* optional value */
            o.resume = v && strncmp(v, "--", 2) ? v : "";
            if (o.resume[0]) i++;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            o.progress = false;
            continue;
        }
        if (!strcmp(a, "--config")) ok = v != NULL, o.config_path = v;
        else if (!strcmp(a, "--output-dir")) ok = v != NULL, o.output_dir = v;
        else if (!strcmp(a, "--init")) ok = v != NULL, o.init_dir = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = v ? strtoull(v, &end, 10) : 0;
            ok = v && !errno && end != v && !*end && v[0] != '-';
            o.seed = s;
        } else if (!strcmp(a, "--threads")) ok = parse_i64(v, 1, 4096, &x), threads = (int)x;
        else if (!strcmp(a, "--max-steps")) ok = parse_i64(v, 1, (long long)1 << 50, &x), o.max_steps = x;
        else {
            fprintf(stderr, "xvlm pretrain: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "xvlm pretrain: bad or missing value for %s%s%s\n", a, v ? ": " : "", v ? v : "");
            return 2;
        }
        i++;
    }
    if (!o.config_path) {
        fprintf(stderr, "xvlm pretrain: --config FILE.yaml is required\n\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) xvlm_set_threads(threads);
    xv_pretrain_run_result res;
    const xv_status st = xv_pretrain_run(&o, &res);
    /* The loss-curve plot loaded cairo's and fontconfig's font caches; release
     * them so leak checkers see a clean exit (nothing draws after this). */
    cairo_debug_reset_static_data();
    FcFini();
    if (st != XV_OK) {
        fprintf(stderr, "xvlm pretrain: %s\n", xv_error_message());
        return 1;
    }
    fprintf(stderr, "%s at step %lld of %lld (%lld updates, %lld skipped) in %.1f s; outputs in %s\n",
            res.interrupted ? "interrupted" : "done", (long long)res.steps_done, (long long)res.total_steps,
            (long long)res.updates, (long long)res.skipped_updates, res.seconds, o.output_dir);
    return res.interrupted ? 1 : 0;
}
