/* A fast 64-bit content hash for detecting corrupt files (not cryptographic).
 * Large buffers are hashed in fixed 1 MiB chunks in parallel and the chunk
 * hashes combined in order, so the value depends only on the bytes. */
#ifndef XV_IO_CHECKSUM_H
#define XV_IO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

uint64_t xv_hash64(const void *data, size_t n, uint64_t seed);

#endif
