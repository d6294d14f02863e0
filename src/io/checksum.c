#include "io/checksum.h"

#include <stdlib.h>
#include <string.h>

#define HASH_CHUNK ((size_t)1 << 20)
#define PRIME1 0x9E3779B185EBCA87ull
#define PRIME2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Murmur3's finaliser: every input bit reaches every output bit. */
static inline uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t lane(uint64_t acc, uint64_t w) { return rotl(acc + w * PRIME2, 31) * PRIME1; }

static inline uint64_t load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8); /* the data may be unaligned */
    return w;
}

/* Four independent lanes over 32-byte blocks, then the tail byte by byte. */
static uint64_t hash_chunk(const unsigned char *p, size_t n, uint64_t seed) {
    uint64_t a = seed + PRIME1, b = seed ^ PRIME2, c = seed, d = seed - PRIME1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = lane(a, load64(p + i));
        b = lane(b, load64(p + i + 8));
        c = lane(c, load64(p + i + 16));
        d = lane(d, load64(p + i + 24));
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + (uint64_t)n;
    for (; i < n; i++) h = (h ^ p[i]) * PRIME1;
    return mix(h);
}

uint64_t xv_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    if (n <= HASH_CHUNK) return hash_chunk(p, n, seed);
    size_t nchunks = (n + HASH_CHUNK - 1) / HASH_CHUNK;
    enum { ROUND = 64 };
    uint64_t part[ROUND];
    uint64_t h = mix(seed ^ (uint64_t)n);
    for (size_t c0 = 0; c0 < nchunks; c0 += ROUND) {
        int nc = (int)(nchunks - c0 < ROUND ? nchunks - c0 : ROUND);
#pragma omp parallel for schedule(static)
        for (int c = 0; c < nc; c++) {
            size_t lo = (c0 + (size_t)c) * HASH_CHUNK, len = n - lo < HASH_CHUNK ? n - lo : HASH_CHUNK;
            part[c] = hash_chunk(p + lo, len, seed + c0 + (size_t)c);
        }
        for (int c = 0; c < nc; c++) h = mix(h ^ part[c]) * PRIME1;
    }
    return h;
}
