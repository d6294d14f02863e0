/* The pretraining data loader (data/pretrain_data.h) as a trainer batch
 * source: settings from the run config, batches handed over without copying,
 * its resumable position and its bad-data counters exposed by name. */
#ifndef XV_TRAIN_LOADER_SOURCE_H
#define XV_TRAIN_LOADER_SOURCE_H

#include "train/pretrain_run_config.h"
#include "train/trainer.h"

/* Open the image-text (regions = false) or region loader of a run; workers
 * start at once. *out is usable until xv_loader_source_close. */
xv_status xv_loader_source_open(const xv_pretrain_run_config *rc, bool regions, uint64_t seed,
                                xv_batch_source *out);
void xv_loader_source_close(xv_batch_source *s);

#endif
