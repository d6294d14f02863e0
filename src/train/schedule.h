/* The official linear warmup / linear decay schedule (scheduler.py, a LambdaLR).
 *
 *   λ(t) = t / max(1, W)                     for t < W
 *   λ(t) = max(0, (N − t) / max(1, N − W))  otherwise
 *
 * t is the scheduler position: 0 when created, +1 per scheduler step. The
 * pretraining loop steps it after every image-text update (never after a region
 * update), so update number t (from 0) uses λ(t) and the first update has lr 0. */
#ifndef XV_TRAIN_SCHEDULE_H
#define XV_TRAIN_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "io/yaml_tree.h"

typedef struct {
    int64_t total_steps;  /* N */
    int64_t warmup_steps; /* W */
    int64_t pos;          /* t */
} xv_lr_schedule;

/* N = epochs · ceil(dataset_size / (batch · world)), as Pretrain.py computes it. */
xv_status xv_schedule_total_steps(int64_t epochs, int64_t dataset_size, int64_t batch, int64_t world,
                                  int64_t *total_out);

/* warmup: the config's num_warmup_steps. A YAML float (warmup_is_fraction) is a
 * fraction in [0, 1) of N, truncated like Python's int(); an integer is a step count. */
xv_status xv_schedule_init(xv_lr_schedule *s, int64_t total_steps, double warmup, bool warmup_is_fraction);

/* The `num_warmup_steps` key of a config's `schedular` mapping (may be NULL;
 * absent: *warmup and *is_fraction unchanged): an integer >= 0 is a step
 * count, a float in [0, 1) a fraction of N (scheduler.py asserts the same). */
xv_status xv_schedule_read_warmup(const xv_yaml_node *schedular, double *warmup, bool *is_fraction);

/* λ at position t (pure). */
double xv_schedule_lambda(const xv_lr_schedule *s, int64_t t);
/* λ at the current position: the factor of the next update. */
double xv_schedule_factor(const xv_lr_schedule *s);
/* scheduler.step(). */
void xv_schedule_step(xv_lr_schedule *s);

#endif
