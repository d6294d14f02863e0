/* Seeded, counter-based random numbers (Philox4x32-10).
 *
 * Every random draw in xvlm (init, dropout, drop-path, masking, negatives,
 * augmentation, data order) goes through this, so a run is reproducible from
 * its seed. Being counter-based, value i of a stream does not depend on the
 * order in which threads ask for it: a parallel kernel reserves a block of
 * counters with xv_rng_reserve() and evaluates xv_rng_uniform_at(base + i). */
#ifndef XV_CORE_RNG_H
#define XV_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t key;     /* the seed */
    uint64_t counter; /* next unused counter */
} xv_rng;

void xv_rng_seed(xv_rng *r, uint64_t seed);
/* A statistically independent child stream (e.g. per worker or per rank). */
xv_rng xv_rng_split(const xv_rng *r, uint64_t stream_id);

/* Raw block function: 128 random bits for (key, counter). */
void xv_philox(uint64_t key, uint64_t counter, uint32_t out[4]);

uint32_t xv_rng_u32(xv_rng *r);
uint64_t xv_rng_u64(xv_rng *r);
/* Uniform in [0, 1) with 24 (float) / 53 (double) random bits. */
float xv_rng_uniform(xv_rng *r);
double xv_rng_uniform_double(xv_rng *r);
/* Standard normal (Box-Muller, one value per counter). */
float xv_rng_normal(xv_rng *r);
/* Unbiased integer in [0, n); n > 0. */
uint64_t xv_rng_below(xv_rng *r, uint64_t n);
/* Fisher-Yates shuffle of n int32 values. */
void xv_rng_shuffle_i32(xv_rng *r, int32_t *v, int64_t n);

/* Reserve n counters; returns the first. */
uint64_t xv_rng_reserve(xv_rng *r, uint64_t n);
/* Uniform [0,1) float at an absolute counter of stream `key`. */
float xv_rng_uniform_at(uint64_t key, uint64_t counter);

#endif
