/* Content hash used by training checkpoints. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/checksum.h"
#include "testutil.h"

int main(void) {
    enum { N = (3 << 20) + 12345 }; /* several 1 MiB chunks and a tail */
    unsigned char *buf = malloc(N + 1);
    for (size_t i = 0; i < N + 1; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    omp_set_num_threads(1);
    uint64_t h1 = xv_hash64(buf, N, 7);
    omp_set_num_threads(2);
    uint64_t h2 = xv_hash64(buf, N, 7);
    CHECK(h1 == h2, "thread count changed the hash");
    CHECK(xv_hash64(buf, N, 8) != h1, "seed matters");
    CHECK(xv_hash64(buf, N - 1, 7) != h1, "length matters");
    /* Unaligned input hashes like the same bytes aligned. */
    memmove(buf + 1, buf, N);
    CHECK(xv_hash64(buf + 1, N, 7) == h1, "unaligned start");
    memmove(buf, buf + 1, N);
    /* Any single flipped bit changes the hash (sampled positions, every bit). */
    int missed = 0;
    for (size_t pos = 0; pos < N; pos += N / 7) /* 8 positions, one in the tail chunk */
        for (int bit = 0; bit < 8; bit++) {
            buf[pos] ^= (unsigned char)(1u << bit);
            missed += xv_hash64(buf, N, 7) == h1;
            buf[pos] ^= (unsigned char)(1u << bit);
        }
    CHECK(missed == 0, "%d bit flips not detected", missed);
    /* Small inputs: every length 0..64 distinct, one flipped bit detected. */
    uint64_t seen[65];
    int dup = 0;
    for (int n = 0; n <= 64; n++) {
        seen[n] = xv_hash64(buf, (size_t)n, 1);
        for (int k = 0; k < n; k++) dup += seen[k] == seen[n];
    }
    CHECK(dup == 0, "%d duplicate short-input hashes", dup);
    buf[5] ^= 1;
    CHECK(xv_hash64(buf, 9, 1) != seen[9], "tail byte flip");
    free(buf);
    return xv_test_finish("checksum");
}
