/* Internal to the pretraining loader: config checks and the configuration
 * fingerprint kept in saved positions. */
#ifndef XV_DATA_PRETRAIN_LOADER_INTERNAL_H
#define XV_DATA_PRETRAIN_LOADER_INTERNAL_H

#include <stdint.h>

#include "data/jsonl.h"
#include "data/pretrain_data.h"

#define XV_PRETRAIN_MAX_WORKERS 64

xv_status xv_pretrain_config_check(const xv_pretrain_config *c, int rank, int world);

/* A 64-bit hash of everything that shapes the stream: the data file names
 * (not their directory), the keys, the text, image and batching settings.
 * num_workers, rank, world and seed are checked separately. */
uint64_t xv_pretrain_config_hash(const xv_pretrain_config *c, const xv_file_list *files);

#endif
