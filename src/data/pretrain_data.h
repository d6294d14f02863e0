/* Pretraining batches as the official Pretrain.py data pipeline makes them
 * (dataset/pretrain_dataset.py, dataset/__init__.py), from the official JSON
 * lines formats, with prefetching worker threads and a resumable position.
 *
 * Two kinds of loader (one each per trainer, like the official general_loader
 * and region_loader):
 *
 * IMAGE-TEXT records: {"<image_key>": path or base64, "<caption_key>": str or
 * [str, ...]}. Caption: a uniform choice from a list; pre_caption(max_words),
 * or with `tokenized` split on single spaces (no cleaning). Image: decoded as
 * RGB, then RandomResizedCrop(R, scale (0.2,1), bicubic) → flip 0.5 →
 * RandAugment(2, 7, 10 ops) → normalise. Text: [CLS] + tokens[:max_tokens-1],
 * no [SEP], padded with 0 to max_tokens; MLM masking as masking.h. A batch is
 * batch_size samples.
 *
 * REGION records: {"<image_key>": ..., "caption"?: str|[str], "elems": [{"bb":
 * [x,y,w,h] pixels, "caption": str|[str], "attributes"?: str|[str]}, ...]}.
 * Per record (docs/architecture.md §6.5): one usable elem is chosen
 * uniformly and a random crop containing it is drawn, flipped with p 0.5
 * (unless careful_hflip and a caption mentions left/right), resized to R
 * (bicubic), RandAugment with the 5 colour ops, normalised. Texts, at most
 * max_regions: the image caption first (all-ones image_atts, target
 * (0.5,0.5,1,1), is_image 1), then the elems in random order whose part
 * inside the crop exceeds min_perc_in_image of their area (text = attribute +
 * " " + caption; box mapped into the R x R image; target (cx,cy,w,h)/R;
 * image_atts from the box with patch_size (§2.11); is_image 0). A batch holds
 * max_images records; its texts are flattened (idx_to_group_img = the image of
 * each text) and exactly batch_size are kept: a random subset in random order
 * when there are more, otherwise all of them followed by a random sample of
 * them without repetition, or, when fewer than half are there, the list
 * repeated (the official collate_fn's two padding rules).
 *
 * Bad data is skipped, warned about on stderr (file:line and the reason) and
 * counted, never fatal and never included; a batch is filled from the next
 * good records. Skipped: malformed lines (jsonl.h); a missing image key or
 * file; an image that does not decode (truncated JPEGs included, which the
 * official loader would accept padded with gray); a missing or empty caption
 * (empty after cleaning or without any token; the official code raises on
 * those too); for regions an elem whose `bb` is not 4 finite numbers, is
 * degenerate (w or h <= 0 after truncation to int) or lies wholly outside the
 * image; an elem with a bad caption or attribute; and a record left with no
 * elem usable as the crop anchor (fully inside the image) or with no text.
 * Differences from the official loader, which drops the whole record when the
 * one elem it draws is bad: here bad elems are removed first and the anchor is
 * drawn among the good ones; an elem only partly inside the image is still a
 * text (clipped to the crop, as the official code clips it) but never the
 * anchor.
 *
 * Workers: num_workers threads, each with its own shard of the files
 * (jsonl.h), its own xv_rng stream (from seed, kind, rank, worker) and its own
 * bounded queue of `prefetch` ready batches. Batches are handed out in a fixed
 * round-robin order (worker 0, 1, ..., as PyTorch's DataLoader does; a worker
 * whose stream ended is passed over). Output is therefore bitwise
 * deterministic for a given (files, config, seed, rank, world, num_workers),
 * whatever the timing. Each batch is made by one worker alone.
 *
 * Resume: the state (xv_pretrain_state_*) records, for each worker, its reader
 * position, random stream and counters as they were right after the last
 * batch the caller consumed from it, and which worker is next. Restoring it
 * into a loader opened with the same files, config, seed, rank, world and
 * num_workers makes the following batches bitwise identical to those the
 * original loader would have returned next (batches prefetched but never
 * consumed are made again), and the counters continue from the saved values.
 * Warnings about bad data in the re-made batches are printed again. */
#ifndef XV_DATA_PRETRAIN_DATA_H
#define XV_DATA_PRETRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "data/masking.h"
#include "data/pretrain_batch.h"

typedef enum { XV_PRETRAIN_IMAGES = 0, XV_PRETRAIN_REGIONS = 1 } xv_pretrain_kind;

/* The settings of one loader, as the official config names them (strings are
 * copied at open). */
typedef struct {
    xv_pretrain_kind kind;
    /* data: train_file (images) or train_file_regions (regions) */
    const char *const *files; /* files or directories (all files in them, sorted) */
    int n_files;
    const char *image_root; /* put in front of relative image paths; NULL or "" = as written. A
                               path must then resolve inside it (core/fs.h's xv_fs_resolve) */
    bool allow_outside_root; /* accept image paths that resolve outside image_root */
    const char *image_key;  /* "binary" (4M config) */
    const char *caption_key; /* "caption" */
    bool is_image_rpath;    /* image_key holds a path (true) or base64 bytes (false) */
    bool tokenized;         /* captions are pre-tokenized: split on ' ', no pre_caption */
    const char *vocab_path; /* the text encoder's vocab.txt */
    /* image */
    int image_res;  /* 224 */
    int patch_size; /* final stride for image_atts: 32 for Swin-B */
    /* text */
    int max_words, max_tokens; /* 40, 40 */
    xv_masking_config masking; /* mask_prob, max_masks, skipgram_*, whole_word (masking.h's defaults);
                                  the loader sets mask_id, vocab_size and is_continuation from vocab_path */
    /* batching */
    int batch_size;           /* images: samples per batch; regions: texts per batch (128) */
    int max_images;           /* regions: records per batch (48) */
    int max_regions;          /* regions: texts per record (5) */
    double min_perc_in_image; /* regions: 0.5 */
    bool careful_hflip;       /* regions: false */
    double crop_scale_min;    /* images: RandomResizedCrop area range, officially (0.2, 1); a
                                 world whose captions list every object wants a higher floor */
    double crop_scale_max;
    int num_workers;          /* worker threads (official: 4) */
    int prefetch;             /* ready batches queued per worker (PyTorch's prefetch_factor, 2) */
    bool shuffle_files;       /* per-epoch file order (official: true) */
    bool repeat;              /* endless epochs (official: true) */
    /* robustness */
    size_t max_line_bytes; /* 0 = XV_JSONL_DEFAULT_MAX_LINE */
    int max_warnings;      /* per worker; < 0 = unlimited */
    /* Polled while xv_pretrain_next waits for a batch (every 20 ms): nonzero
     * makes it return XV_ERR_INTERRUPTED at once, whatever the workers are
     * doing (a slow or stalled read). NULL: wait for the batch. */
    int (*interrupted)(void);
} xv_pretrain_config;

/* The official 4M values (configs/Pretrain_XVLM_base_4m.yaml) for `kind`,
 * with base64 images, 4 workers, xv_masking_default(); files, vocab_path and
 * image_root unset. */
xv_pretrain_config xv_pretrain_config_default(xv_pretrain_kind kind);

/* Counts over the batches consumed so far (a batch's records, including the
 * skipped ones read while making it, count once it is handed out). */
typedef struct {
    int64_t lines;            /* non-blank lines read from this rank's shards */
    int64_t samples;          /* records that became samples (images) */
    int64_t texts;            /* texts made (regions: before the subset / padding) */
    int64_t bad_json;         /* lines skipped: not JSON, not an object, too long */
    int64_t unreadable_files; /* data files that could not be read */
    int64_t missing_image;    /* records skipped: no image key, or the file does not exist */
    int64_t corrupt_image;    /* records skipped: bad base64 or undecodable image */
    int64_t bad_caption;      /* captions / region texts dropped (missing, wrong type, empty) */
    int64_t bad_box;          /* region elems dropped: malformed, degenerate, outside the image */
    int64_t no_region;        /* region records skipped: no usable anchor elem, or no text left */
    int64_t padded_texts;     /* regions: texts repeated to fill a batch */
    int64_t dropped_texts;    /* regions: texts left out of a full batch */
    int64_t unreadable_image; /* records skipped: the image cannot be opened (permission, not a
                                 regular file such as a FIFO, ...) */
    int64_t outside_root;     /* records skipped: the image path resolves outside image_root */
} xv_pretrain_counters;
#define XV_PRETRAIN_N_COUNTERS 14

typedef struct xv_pretrain_loader xv_pretrain_loader;

/* Validate the config, list and shard the files, load the vocabulary, and
 * start the workers. `seed` is the run's seed (the official code seeds each
 * rank with seed + rank; here the rank picks the stream). */
xv_status xv_pretrain_open(const xv_pretrain_config *cfg, int rank, int world, uint64_t seed,
                           xv_pretrain_loader **out);

/* The next batch, in the fixed order (data/pretrain_batch.h; region fields
 * NULL for image-text batches). Its memory belongs to the loader and stays
 * valid until the next xv_pretrain_next or xv_pretrain_close. Without
 * `repeat`, a batch with n_images == 0 means the data is exhausted (the last
 * real batch may be short: fewer samples, or for regions fewer images, still
 * batch_size texts). A worker's fatal error (out of memory, a shard without
 * any usable record) is returned here with its message. */
xv_status xv_pretrain_next(xv_pretrain_loader *l, xv_pretrain_batch *batch);

/* Batches handed out so far (the last one returned is number this - 1 of the
 * stream, 0-based; it continues across a restored state), and the worker that
 * made the last one (-1 before the first or once the data is exhausted). */
int64_t xv_pretrain_batches_consumed(const xv_pretrain_loader *l);
int xv_pretrain_last_worker(const xv_pretrain_loader *l);

xv_pretrain_counters xv_pretrain_get_counters(const xv_pretrain_loader *l);
/* Name of each counter field, in struct order ("lines", "samples", ...). */
const char *xv_pretrain_counter_name(int i);

/* The position as a fixed-length vector of int64 (for the trainer's checkpoint:
 * one counter per value, named by xv_pretrain_state_name, e.g. "w0.offset"). */
int xv_pretrain_state_len(const xv_pretrain_loader *l);
const char *xv_pretrain_state_name(const xv_pretrain_loader *l, int i);
xv_status xv_pretrain_state_save(const xv_pretrain_loader *l, int64_t *values, int n);
/* Stops the workers, drops their queued batches (and the batch last returned,
 * which becomes invalid), restarts them from the state. Refuses a state of
 * another length, format version, kind, rank, world, worker count, seed or
 * configuration, or whose file offsets are not line starts (the data changed);
 * after a refusal the loader goes on with the stream it was producing. */
xv_status xv_pretrain_state_restore(xv_pretrain_loader *l, const int64_t *values, int n);

/* Stops and joins the workers and frees everything (NULL is fine). */
void xv_pretrain_close(xv_pretrain_loader *l);

#endif
