/* `xvlm pretrain`: the X-VLM pretraining loop of the official Pretrain.py
 * (train/pretrain_run.h does the work). */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dist/dist.h"
#include "options.h"
#include "train/pretrain_run.h"
#include "train/stop_signal.h"
#include "xvlm.h"

int xv_cmd_pretrain(int argc, char **argv) {
    xv_pretrain_run_opts o = xv_pretrain_run_opts_default();
    int threads = 0;
    bool quiet = false;
    const xv_opt opts[] = {
        {.name = "--config", .kind = XV_OPT_STRING, .dest = &o.config_path, .value = "FILE.yaml", .required = true,
         .help = "an official pretraining YAML (Pretrain_XVLM_base_4m.yaml keys); the\n"
                 "model from vision_config + text_config, or model_config: (a project\n"
                 "config.json path, or its content inline); vocab: or text_encoder:\n"
                 "gives vocab.txt; image_root: prefixes relative image paths"},
        {.name = "--output-dir", .short_name = 'o', .kind = XV_OPT_STRING, .dest = &o.output_dir, .value = "DIR",
         .help = "where checkpoints/, log.jsonl, loss_curves.png and model/ go"},
        {.name = "--resume", .kind = XV_OPT_OPTIONAL, .dest = &o.resume, .value = "CKPT",
         .help = "continue exactly from CKPT, or from the newest checkpoint in\n"
                 "DIR/checkpoints (a fresh start if there is none)"},
        XV_OPT_SEED(&o.seed, "every random stream: init, data order, augmentation,\n"
                             "masking, dropout, negatives, region coin"),
        XV_OPT_THREADS(&threads),
        {.name = "--max-steps", .kind = XV_OPT_I64, .dest = &o.max_steps, .value = "N", .lo = 0,
         .hi = 1125899906842624.0, .unset = "epochs x steps per epoch of the config",
         .help = "stop after N image-text steps in all; the schedule keeps the\nconfig's length. 0: write the initialised model to DIR/model\nand stop (a start for `xvlm finetune objects`)"},
        {.name = "--init", .kind = XV_OPT_STRING, .dest = &o.init_dir, .value = "DIR",
         .help = "start from DIR/weights.safetensors (a whole pretraining model, as\n"
                 "`xvlm convert` or a previous run's model/ writes it) instead of\n"
                 "random weights"},
        {.name = "--quiet", .short_name = 'q', .kind = XV_OPT_FLAG, .dest = &quiet, .help = "no progress line"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "pretrain",
        .usage = "xvlm pretrain --config FILE.yaml [--output-dir DIR] [--resume [CKPT]] [--seed S]\n"
                 "                     [--threads N] [--max-steps N] [--init WEIGHTS_DIR] [--quiet]",
        .about = "Pretrains X-VLM as the official Pretrain.py does: for every image-text batch, with\n"
                 "probability regions.iter_perc first a region update (ITC + ITM + MLM + box L1 + GIoU,\n"
                 "no scheduler step), then the image-text update (ITC + ITM + MLM); AdamW with the\n"
                 "official parameter groups, linear warmup/decay, gradient clipping, dropout on.\n"
                 "A run is bitwise reproducible for the same seed, thread count and loader workers.\n",
        .opts = opts,
        .footer = "Writes DIR/checkpoints/checkpoint_<step>.safetensors every ckpt_frequent_step steps and\n"
                  "at the end (atomic, last 3 kept), DIR/log.jsonl (one JSON object per update: losses,\n"
                  "lr, grad norm, samples/s, skipped-data counters), DIR/loss_curves.png and the final\n"
                  "model as DIR/model/{config.json,weights.safetensors}. SIGINT/SIGTERM stop after the\n"
                  "current step with a checkpoint (or, when waiting for data, at once, keeping the last\n"
                  "checkpoint). Exit status: 0 ok, 1 runtime error, 2 usage, 130 / 143 stopped by\n"
                  "SIGINT / SIGTERM (--resume continues).\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    o.progress = !quiet;
    o.notes = stderr;
    xvlm_set_threads(threads);
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
    if (xv_dist_rank() == 0)
        fprintf(stderr, "%s at step %lld of %lld (%lld updates, %lld skipped) in %.1f s; outputs in %s\n",
                res.interrupted ? "interrupted" : "done", (long long)res.steps_done, (long long)res.total_steps,
                (long long)res.updates, (long long)res.skipped_updates, res.seconds, o.output_dir);
    xv_cli_ranks_stop_together = res.interrupted != 0; /* every rank stopped after the same step */
    if (!res.interrupted) return 0;
    if (xv_dist_rank() == 0 && res.checkpoint_step >= 0)
        fprintf(stderr,
                "xvlm pretrain: interrupted by %s; the checkpoint of step %lld in %s/checkpoints is complete: run the "
                "same command with --resume to continue exactly\n",
                xv_stop_signal_name(res.interrupted), (long long)res.checkpoint_step, o.output_dir);
    else if (xv_dist_rank() == 0)
        fprintf(stderr, "xvlm pretrain: interrupted by %s before the first checkpoint: nothing to resume from\n",
                xv_stop_signal_name(res.interrupted));
    return xv_stop_exit_status(res.interrupted);
}
