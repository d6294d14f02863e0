/* The X-VLM pretraining loop (the official Pretrain.py train(), §5.5 of
 * docs/architecture.md).
 *
 * One trainer step = one image-text batch:
 *   1. with probability iter_perc (a coin from the "coin" stream) a region
 *      update first: zero grads; itc + itm + mlm + bbox + giou on a region
 *      batch; backward; clip; AdamW step; NO scheduler step;
 *   2. the image-text update: zero grads; itc + itm + mlm; backward; clip;
 *      AdamW step; scheduler step.
 * Both run in training mode (dropout, drop-path), with the learning rate
 * λ(t) of the schedule position t (so a region update reuses the rate of the
 * image-text update that follows it, and the very first update has lr 0).
 *
 * A non-finite loss or gradient norm skips that update (no AdamW step; what
 * apex's dynamic loss scaling does on overflow) and is counted; the scheduler
 * still steps after the image-text update, as it does under apex.
 *
 * Randomness: every draw comes from a named Philox stream derived from the
 * seed: "coin" (iter_perc), "negatives" (ITM hard negatives), "dropout" (the
 * graph's stream: dropout and drop-path); masking, augmentation and data
 * order belong to the batch sources, whose positions are named int64 values.
 * All of it, with parameters, AdamW state, schedule and counters, is in the
 * train checkpoint (checkpoint.h), so a resumed run continues bitwise as the
 * uninterrupted one would have, for the same thread count.
 *
 * Activations live in one graph whose arena is reset between updates (no
 * allocation churn once the first steps have sized it).
 *
 * Under mpirun (src/dist/, docs/distributed.md) every rank runs a trainer on
 * its own batches: rank 0's weights are broadcast by xv_trainer_new, the
 * gradients are averaged over the ranks after each backward (DDP), a skip on
 * one rank is a skip on all, the coin is shared and the other streams are
 * seeded with seed + rank. Steps, saves and loads are collectives: every rank
 * calls them in the same order; rank 0 alone writes the file, which holds
 * every rank's source positions and streams under "rank<r>." names. */
#ifndef XV_TRAIN_TRAINER_H
#define XV_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "data/pretrain_batch.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/param_groups.h"
#include "train/schedule.h"

/* Where batches come from (the pretraining loader, or a test's generator).
 * Only `next` is required: it hands out a batch whose arrays the source owns
 * until its next call (the model's forward validates it). The position is a
 * vector of named int64 values saved in checkpoints; counters (bad data
 * skipped, ...) go to the log. */
typedef struct {
    void *ctx;
    xv_status (*next)(void *ctx, xv_pretrain_batch *out);
    int (*state_len)(void *ctx);
    const char *(*state_name)(void *ctx, int i);
    xv_status (*state_save)(void *ctx, int64_t *values, int n);
    xv_status (*state_restore)(void *ctx, const int64_t *values, int n);
    int (*n_counters)(void *ctx);
    const char *(*counter_name)(void *ctx, int i);
    int64_t (*counter_value)(void *ctx, int i);
} xv_batch_source;

typedef struct {
    uint64_t seed;
    double iter_perc;      /* regions.iter_perc (0.5); 0 = no region updates */
    double clip_norm;      /* accelerator CLIP_GRAD_NORM (1.0); <= 0 = no clipping */
    xv_adamw_config optim; /* optimizer{lr, weight_decay, lr_mult} */
    int64_t total_steps;   /* schedule N = epochs · steps_per_epoch */
    double warmup;         /* schedular.num_warmup_steps */
    bool warmup_is_fraction;
    int64_t steps_per_epoch; /* ceil(train_dataset_size / batch); epoch = step / this */
    bool calc_image_bbox_loss; /* official key: whole-image texts count in the box loss (default false) */
    bool bbox_loss; /* false: region updates without the box losses (the paper's "w/o bbox loss"
                       ablation; not an official key); default true */
} xv_trainer_config;

/* Pretraining defaults (Pretrain_XVLM_base_4m.yaml) with total_steps and
 * steps_per_epoch unset (0: the caller must set them). */
xv_trainer_config xv_trainer_config_default(void);

/* What one update did, for logs and tests. */
typedef struct {
    bool region;      /* region update (else image-text) */
    int64_t step;     /* the image-text step it belongs to (0-based) */
    int64_t epoch;
    double loss_itc, loss_itm, loss_mlm, loss_bbox, loss_giou, loss_total; /* bbox/giou: region only */
    double lr, lr_large;  /* rates of groups 0 and 2 used by this update */
    double grad_norm;     /* before clipping (NaN when the loss was not finite) */
    bool skipped;         /* non-finite loss or norm: no AdamW step */
    int n_texts, n_images;
    double seconds;       /* wall time of the update incl. fetching its batch */
    double cpu_seconds;   /* the process's CPU time over the same span (all threads) */
    /* The parts of that span: forward (losses) and backward (to every parameter
     * gradient), wall and CPU; the rest is the batch, clip and AdamW. */
    double forward_seconds, forward_cpu_seconds, backward_seconds, backward_cpu_seconds;
} xv_update_record;

typedef struct xv_trainer xv_trainer;

/* A trainer for `model` (owned by the caller, parameters owned, not mapped),
 * fed by `images` and, when iter_perc > 0, `regions` (the sources must
 * outlive the trainer). config_text (may be NULL) is stored in checkpoints. */
xv_status xv_trainer_new(xv_model *model, const xv_trainer_config *cfg, const xv_batch_source *images,
                         const xv_batch_source *regions, const char *config_text, xv_trainer **out);
void xv_trainer_free(xv_trainer *t);

/* One step (an optional region update, then the image-text update). rec[0..*n)
 * receive the updates done, in order. Fails on a source or model error (bad
 * shapes, out of memory); a non-finite loss is not a failure. */
xv_status xv_trainer_step(xv_trainer *t, xv_update_record rec[2], int *n);

/* Image-text steps completed (the scheduler's steps) and derived epoch. */
int64_t xv_trainer_steps_done(const xv_trainer *t);
/* Updates skipped for a non-finite loss or gradient norm, since the start of
 * the run (resumes included). */
int64_t xv_trainer_skipped(const xv_trainer *t);
/* Bytes of activation memory the arena has held at most. */
size_t xv_trainer_arena_peak(const xv_trainer *t);
/* Bytes of activation gradients held at most (they live outside the arena). */
size_t xv_trainer_grads_peak(const xv_trainer *t);

/* Checkpoints: everything above plus the sources' positions. save writes
 * <dir>/checkpoint_<step>.safetensors keeping the newest keep_last. */
xv_status xv_trainer_save(xv_trainer *t, const char *dir, int keep_last, char *path_out, size_t cap);
xv_status xv_trainer_write(xv_trainer *t, const char *path);
/* Restore from a checkpoint written by a trainer with the same model, config
 * and sources. The checkpoint reader validates the whole file before changing
 * anything; the sources then check their own positions, and if one refuses
 * it the error is returned and the trainer must not be stepped further. */
xv_status xv_trainer_load(xv_trainer *t, const char *path);

#endif
