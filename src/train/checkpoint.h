/* Training checkpoints: everything a run needs to resume bitwise identically,
 * in one safetensors file.
 *
 * Contents (tensor names):
 *   <official parameter name>          F32  the parameters (unique tensors; tied names once)
 *   optim.m.<name>, optim.v.<name>     F32  AdamW exp_avg / exp_avg_sq
 *   optim.step.<name>                  I64  AdamW per-parameter step count
 *   train.step, train.epoch            I64  trainer counters
 *   train.sched.pos/.total/.warmup     I64  LR schedule position and shape
 *   train.counter.<name>               I64  caller counters (data-loader positions, ...)
 *   train.rng.<name>                   I64[2] Philox stream (key, counter), bit patterns
 * Metadata: format "xvlm-train-checkpoint", format_version, config (the run's
 * configuration text), optimiser hyper-parameters (for reading), and checksum:
 * a 64-bit hash over every tensor's name, dtype, shape and bytes, so a file
 * whose data was damaged is refused rather than silently resumed.
 *
 * Files are written atomically by the safetensors writer (temp file, fsync,
 * rename): an interrupted save leaves the previous checkpoints untouched.
 * Loading validates everything before changing anything. */
#ifndef XV_TRAIN_CHECKPOINT_H
#define XV_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/params.h"
#include "core/rng.h"
#include "train/adamw.h"
#include "train/schedule.h"

typedef struct {
    const char *name;
    int64_t *value;
} xv_ckpt_counter;

typedef struct {
    const char *name;
    xv_rng *rng;
} xv_ckpt_rng;

/* Where a trainer keeps its state: save reads through these pointers, load
 * writes through them. Only params, step and epoch are required. */
typedef struct {
    xv_params *params;
    xv_adamw *opt;
    xv_lr_schedule *sched;
    int64_t *step;  /* global step; also names the file */
    int64_t *epoch;
    const xv_ckpt_counter *counters;
    int n_counters;
    const xv_ckpt_rng *rngs;
    int n_rngs;
    const char *config; /* saved as metadata (may be NULL) */
} xv_train_state;

/* Write the state to exactly `path`. */
xv_status xv_ckpt_write(const char *path, const xv_train_state *st);

/* Write `<dir>/checkpoint_<step, 9 digits>.safetensors`, then delete the
 * lowest-step older checkpoints of that directory so at most keep_last remain
 * (keep_last <= 0 keeps all). The path written goes to path_out (may be NULL). */
xv_status xv_ckpt_save(const char *dir, int keep_last, const xv_train_state *st, char *path_out,
                       size_t path_cap);

/* Restore every part of `st` from `path`. Everything is validated first (format,
 * checksum, every expected tensor present with its shape, no unknown parameter),
 * so a refused file leaves `st` unchanged. *config_out (if not NULL) receives a
 * malloc'd copy of the saved config, or NULL when none was saved. */
xv_status xv_ckpt_load(const char *path, const xv_train_state *st, char **config_out);

/* Whether `path` is a whole, undamaged checkpoint of this format (header,
 * format version, checksum over every tensor), without loading it into a state. */
xv_status xv_ckpt_verify(const char *path);

/* Which checkpoint a run writing into `dir` starts from. resume NULL: a
 * fresh run, refused when dir holds checkpoints of an earlier run (keep-last
 * would delete the new, lower-step files first); "": the newest one (none: a
 * fresh run, noted to `notes`, which may be NULL); otherwise that file.
 * path_out gets the file to load, or "" for a fresh start. */
xv_status xv_ckpt_resume_path(const char *dir, const char *resume, FILE *notes, char *path_out, size_t cap);

/* After resuming the checkpoint of `step`: refuse a dir that holds a later
 * one (the run would leave newer files of another future next to its own). */
xv_status xv_ckpt_check_newest(const char *dir, int64_t step);

/* Delete the temporary files a run killed while writing a checkpoint of
 * `dir` left behind (each is noted to `notes`, which may be NULL). */
void xv_ckpt_remove_stale(const char *dir, FILE *notes);

/* The highest-step checkpoint in `dir` (XV_ERR_MISSING when there is none). */
xv_status xv_ckpt_latest(const char *dir, char *path_out, size_t path_cap);

#endif
