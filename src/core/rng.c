#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void xv_philox(uint64_t key, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0x5851F42Du, c3 = 0x14057B7Eu;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void xv_rng_seed(xv_rng *r, uint64_t seed) {
    r->key = seed;
    r->counter = 0;
}

xv_rng xv_rng_split(const xv_rng *r, uint64_t stream_id) {
    uint32_t o[4];
    /* Derive a new key from (parent key, stream id) with the block function itself. */
    xv_philox(r->key ^ 0xA5A5A5A5DEADBEEFull, stream_id, o);
    xv_rng c = {((uint64_t)o[0] << 32) | o[1], 0};
    return c;
}

uint64_t xv_rng_reserve(xv_rng *r, uint64_t n) {
    uint64_t base = r->counter;
    r->counter += n;
    return base;
}

uint32_t xv_rng_u32(xv_rng *r) {
    uint32_t o[4];
    xv_philox(r->key, r->counter++, o);
    return o[0];
}

uint64_t xv_rng_u64(xv_rng *r) {
    uint32_t o[4];
    xv_philox(r->key, r->counter++, o);
    return ((uint64_t)o[0] << 32) | o[1];
}

float xv_rng_uniform_at(uint64_t key, uint64_t counter) {
    uint32_t o[4];
    xv_philox(key, counter, o);
    return (float)(o[0] >> 8) * (1.0f / 16777216.0f);
}

float xv_rng_uniform(xv_rng *r) { return xv_rng_uniform_at(r->key, r->counter++); }

double xv_rng_uniform_double(xv_rng *r) {
    return (double)(xv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float xv_rng_normal(xv_rng *r) {
    uint32_t o[4];
    xv_philox(r->key, r->counter++, o);
    double u1 = ((double)o[0] + 1.0) / 4294967297.0; /* (0,1): log is finite */
    double u2 = (double)o[1] / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t xv_rng_below(xv_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* Rejection sampling removes the modulo bias. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = xv_rng_u64(r);
        if (x < lim) return x % n;
    }
}

void xv_rng_shuffle_i32(xv_rng *r, int32_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)xv_rng_below(r, (uint64_t)i + 1);
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
