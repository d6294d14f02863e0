/* A whole pretraining run, as `xvlm pretrain` does it: config, model (from
 * scratch or --init weights), data loaders, the trainer loop, checkpoints,
 * logs, the final model and the loss-curve plot.
 *
 * Output directory:
 *   checkpoints/checkpoint_<step>.safetensors  train state every
 *       ckpt_frequent_step steps, every ckpt_frequent epochs and at the end
 *       (atomic, newest `keep_last` kept)
 *   log.jsonl          one JSON object per update (train_log.h)
 *   loss_curves.png    one panel per loss, smoothed (written at the end)
 *   model/config.json + model/weights.safetensors  the final model, in the
 *       layout `xvlm forward` and the task commands load
 *
 * Resume continues exactly: the same parameters, optimiser state, schedule,
 * random streams and data positions as the uninterrupted run at that step,
 * so N steps straight and N/2 + resume + N/2 end bitwise equal (same thread
 * count and loader workers). SIGINT / SIGTERM stop after the current step
 * with a checkpoint. Under mpirun every rank runs this on its own shard and
 * rank 0 alone prints, logs and writes (docs/distributed.md). */
#ifndef XV_TRAIN_PRETRAIN_RUN_H
#define XV_TRAIN_PRETRAIN_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

typedef struct {
    const char *config_path; /* the pretraining YAML */
    const char *output_dir;
    /* NULL: a fresh run (an existing log is replaced); "": the newest
     * checkpoint of output_dir/checkpoints, or a fresh run when there is none;
     * otherwise that checkpoint file. */
    const char *resume;
    uint64_t seed;         /* 42, as Pretrain.py's --seed */
    int64_t max_steps;     /* stop once this many image-text steps are done (< 0: the schedule's total;
                              0: only write the initialised model) */
    const char *init_dir;  /* config.json + weights.safetensors to start from (NULL: from scratch) */
    int keep_last;         /* checkpoints kept (3) */
    bool progress;         /* progress line on stderr */
    int plot_smooth;       /* moving-average window of the plot (25) */
    FILE *notes;           /* notes about the config (ignored keys) and the run; NULL: none */
} xv_pretrain_run_opts;

xv_pretrain_run_opts xv_pretrain_run_opts_default(void);

typedef struct {
    int64_t start_step, steps_done, total_steps;
    int64_t updates, skipped_updates;
    double seconds;
    int interrupted;            /* the signal that stopped the run (SIGINT / SIGTERM), 0 when none */
    int64_t checkpoint_step;    /* the step of the newest complete checkpoint of the folder, -1 if none */
} xv_pretrain_run_result;

xv_status xv_pretrain_run(const xv_pretrain_run_opts *o, xv_pretrain_run_result *result);

#endif
