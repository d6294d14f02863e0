/* The per-rank part of a training checkpoint under mpirun
 * (docs/distributed.md): each rank's own counters (loader positions, loss
 * sums) and random streams (augmentation, negatives, dropout) differ, while
 * rank 0 alone writes the file. The checkpoint then holds every rank's values
 * under "rank<r>.<name>", gathered before a save; after a load each rank takes
 * its own back. In a world of one the names and values are the rank's own,
 * without a prefix, so one-process checkpoints read as before. */
#ifndef XV_TRAIN_RANK_STATE_H
#define XV_TRAIN_RANK_STATE_H

#include "train/checkpoint.h"

typedef struct {
    int n_counters, n_rngs;   /* per rank */
    xv_ckpt_counter *mine;    /* this rank's live values ([n_counters]) */
    xv_ckpt_rng *mine_rngs;   /* [n_rngs] */
    /* what the checkpoint reads and writes: world·n_counters, world·n_rngs
     * entries (the live ones themselves in a world of one) */
    xv_ckpt_counter *counters;
    xv_ckpt_rng *rngs;
    int64_t *all_values; /* [world·n_counters]; NULL in a world of one */
    xv_rng *all_rngs;    /* [world·n_rngs] */
    char **names;        /* the prefixed names (owned) */
} xv_rank_state;

/* Over `mine` (names and pointers of this rank's counters) and `mine_rngs`;
 * both arrays are copied, the names and pointers they hold must outlive s. */
xv_status xv_rank_state_init(xv_rank_state *s, const xv_ckpt_counter *mine, int n_counters,
                             const xv_ckpt_rng *mine_rngs, int n_rngs);
/* Before a save: every rank's live values into the checkpoint's view (a
 * collective; nothing in a world of one). */
xv_status xv_rank_state_gather(xv_rank_state *s);
/* After a load: this rank's values from the checkpoint's view back into the
 * live ones (nothing in a world of one). */
void xv_rank_state_pick(xv_rank_state *s);
void xv_rank_state_free(xv_rank_state *s);

#endif
