/* The training log: one JSON object per update, one per line, flushed as it is
 * written (a killed run loses at most its last, partial line):
 *
 *   {"step": 12, "kind": "region" | "image", "epoch": 0,
 *    "loss_itc", "loss_itm", "loss_mlm", ["loss_bbox", "loss_giou",] "loss",
 *    "lr", "lr_large", "grad_norm", "skipped": false,
 *    "texts", "images", "seconds", "samples_per_s",
 *    "skipped_updates": 0, "data": {"images.bad_json": 0, ...}}
 *
 * Non-finite numbers are written as null. A resumed run reopens the log and
 * first drops every record of a step at or after the resume step (those steps
 * are run again), so the log always describes the run's parameters. */
#ifndef XV_TRAIN_TRAIN_LOG_H
#define XV_TRAIN_TRAIN_LOG_H

#include <stdio.h>

#include "train/trainer.h"

typedef struct xv_train_log xv_train_log;

/* Open `path` for appending; keep_before >= 0 first rewrites it keeping only
 * the complete records with step < keep_before (atomically); < 0 starts an
 * empty log. */
xv_status xv_train_log_open(const char *path, int64_t keep_before, xv_train_log **out);
/* One record; counters are the data sources' (names and values, n of them). */
xv_status xv_train_log_write(xv_train_log *l, const xv_update_record *r, int64_t skipped_updates,
                             const char *const *counter_names, const int64_t *counter_values, int n);
/* Another kind of record: `json` is one complete JSON object (no newline)
 * with a "step" key, so a resume keeps or drops it like the updates. */
xv_status xv_train_log_write_json(xv_train_log *l, const char *json);
void xv_train_log_close(xv_train_log *l);

/* The loss curves of a log as a PNG: one panel per loss the log has (itc,
 * itm, mlm from image-text updates; bbox, giou from region updates; the
 * total of image-text updates), smoothed over `smooth` points; records other
 * than updates are skipped. */
xv_status xv_train_log_plot(const char *log_path, const char *png_path, int smooth, const char *title);

/* ---- the progress line on stderr ----
 * step/total, each loss as a moving average over the last `window` updates of
 * its kind, lr, samples/s, elapsed and ETA. */
typedef struct xv_progress xv_progress;
xv_progress *xv_progress_new(int window, int64_t total_steps, int64_t start_step);
void xv_progress_add(xv_progress *p, const xv_update_record *r);
/* Print the line (with '\r' when `tty`, else '\n'). */
void xv_progress_print(xv_progress *p, FILE *f, int64_t steps_done, bool tty);
void xv_progress_free(xv_progress *p);

#endif
