/* Streaming JSON-lines reading of the official pretraining files, sharded by
 * rank and worker as the official dataset/dist_dataset.py does, with a
 * position that can be saved and restored.
 *
 * Files: each entry of the config's train_file list is a file or a directory;
 * a directory stands for the regular files in it, sorted by name (the official
 * code takes the HDFS listing, which is sorted), skipping hidden files and any
 * name containing "_SUCCESS" (as the official code does).
 *
 * Sharding (split_shard): shard i of n over a list of N items is the
 * contiguous range [N·i/n, N·(i+1)/n). Ranks split the file list, then each
 * rank's workers split the rank's files. Where there are fewer files than
 * shards, the official code raises (N < n) or, with a single file, hands the
 * whole file to every rank (duplicating the data); here that level falls back
 * to lines instead: shard i keeps the lines whose 0-based number within their
 * file is ≡ i (mod n). Every line is read by exactly one (rank, worker).
 * The official loader also lets each worker shuffle the rank's file list with
 * its own random state before splitting it, so its workers' files overlap;
 * here the split comes first and only each worker's own files are shuffled.
 *
 * Reading: lines end at '\n' (a trailing '\r' is dropped; the last line needs
 * no '\n'); whitespace-only lines are not records and are skipped silently.
 * Every other line of the shard must be one JSON object and nothing else
 * (xv_json_parse_record): anything else (not JSON, not an object, bytes after
 * the object, a raw NUL, longer than the line cap) is skipped with a warning on
 * stderr naming file:line, and counted. A file that cannot be opened is
 * skipped with a warning and counted. With `repeat` the shard is read again
 * and again (epochs); with `shuffle_files` each epoch visits the worker's
 * files in an order drawn from (shuffle_key, epoch) alone, so a position
 * needs no saved permutation. A fresh full pass that yields no JSON object is
 * an error rather than an endless loop. */
#ifndef XV_DATA_JSONL_H
#define XV_DATA_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"

/* ---- warnings with a budget (bad data must be reported, not flood a log) ---- */
/* Print "xvlm data: <message>" on stderr while *budget > 0 (and decrement it),
 * or always when *budget < 0; when the budget runs out, say so once. */
void xv_data_warn(int *budget, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- one record ---- */
/* Parse one line as exactly one JSON object: only whitespace may follow it
 * (two objects on a line, junk or a raw NUL byte after it are refused), and
 * a raw NUL byte anywhere is refused. cJSON ends its strings at a NUL, so a
 * "\u0000" escape is rewritten in place (`line` is modified) to "\u0001"
 * before parsing: both are control characters that pre_caption keeps and the
 * BERT tokenizer drops (_clean_text), so texts come out as the official
 * pipeline makes them, and *nul_escapes counts the rewrites so that a caller
 * refuses a path holding one (xv_json_has_nul) instead of cutting it short.
 * Returns NULL with *out set, or the reason the line is refused (a static
 * string) with *out NULL. */
const char *xv_json_parse_record(char *line, size_t len, cJSON **out, int *nul_escapes);
/* Whether `s`, a string of a record that had `nul_escapes` rewrites, held a
 * "\u0000" (now the character U+0001). */
bool xv_json_has_nul(const char *s, int nul_escapes);

/* ---- a whole JSON file holding one list (the fine-tuning and evaluation sets) ---- */
/* Read the regular file `path` (at most max_bytes) as exactly one JSON list:
 * a raw NUL byte, or anything but whitespace after the list, is refused with
 * the file and line named. "\u0000" escapes become U+0001 as in
 * xv_json_parse_record (texts tokenize as officially; xv_json_bad_name then
 * refuses a file name holding one instead of cutting it short). */
xv_status xv_json_read_list(const char *path, int64_t max_bytes, cJSON **out);
/* Whether a file name taken from JSON holds U+0001 (a "\u0000" escape, or the
 * character itself): no dataset names such a file, and the name would
 * otherwise reach the system cut short. */
bool xv_json_bad_name(const char *name);

/* ---- the file list ---- */
typedef struct {
    char **paths;
    int n;
} xv_file_list;

/* Expand entries (files or directories) in order. A missing entry, a
 * directory without data files, or an empty result is an error. */
xv_status xv_file_list_expand(const char *const *entries, int n_entries, xv_file_list *out);
void xv_file_list_free(xv_file_list *l);

/* ---- shards ---- */
typedef struct {
    int32_t *files; /* indices into the file list, ascending */
    int n_files;
    int64_t line_stride, line_offset; /* keep lines with number % stride == offset */
} xv_jsonl_shard;

/* The shard of (rank of world, worker of workers) over n_files files. */
xv_status xv_jsonl_shard_make(int n_files, int rank, int world, int worker, int workers, xv_jsonl_shard *out);
void xv_jsonl_shard_free(xv_jsonl_shard *s);

/* ---- reading ---- */
typedef struct {
    bool shuffle_files;   /* official: true for pretraining */
    bool repeat;          /* official: true (an endless stream of epochs) */
    uint64_t shuffle_key; /* seeds each epoch's file order */
    size_t max_line_bytes; /* longer lines are skipped (0 = XV_JSONL_DEFAULT_MAX_LINE) */
    const char *label;    /* prefixes warnings ("images, worker 0") */
    int *warn_budget;     /* see xv_data_warn; NULL = unlimited */
} xv_jsonl_opts;

/* Base64 images make long lines (hundreds of KiB); 64 MiB bounds a hostile one. */
#define XV_JSONL_DEFAULT_MAX_LINE ((size_t)64 << 20)

/* Where the reader is: the next line it will read. */
typedef struct {
    int64_t epoch;  /* passes over the shard completed */
    int64_t file;   /* index into this epoch's file order */
    int64_t offset; /* byte offset of the next line in that file */
    int64_t line;   /* its 0-based line number in the file */
    int64_t done;   /* 1: the stream has ended (repeat off) */
} xv_jsonl_pos;

typedef struct {
    int64_t lines;            /* non-blank lines of this shard read */
    int64_t records;          /* of them, JSON objects returned */
    int64_t malformed;        /* of them, skipped (not JSON / not an object / too long) */
    int64_t unreadable_files; /* file visits skipped because the file could not be read */
} xv_jsonl_counts;

/* Where a returned record came from (for warnings). `path` stays valid until
 * the reader is freed. */
typedef struct {
    const char *path;
    int64_t line; /* 1-based, as editors count */
    int64_t epoch;
    int nul_escapes; /* "\u0000" escapes rewritten in the line (see xv_json_parse_record) */
} xv_jsonl_where;

typedef struct xv_jsonl_reader xv_jsonl_reader;

/* The reader keeps pointers to `files` (which must outlive it) and copies the shard. */
xv_status xv_jsonl_open(const xv_file_list *files, const xv_jsonl_shard *shard, const xv_jsonl_opts *opts,
                        xv_jsonl_reader **out);
void xv_jsonl_close(xv_jsonl_reader *r);

/* The next JSON object of the shard (caller frees it with cJSON_Delete), or
 * *obj = NULL once the stream has ended (never with repeat). */
xv_status xv_jsonl_next(xv_jsonl_reader *r, cJSON **obj, xv_jsonl_where *where);

xv_jsonl_pos xv_jsonl_tell(const xv_jsonl_reader *r);
/* Continue from a position of xv_jsonl_tell on the same files and shard. A
 * position that cannot be (file index out of range, offset past the end, or
 * not at the start of a line: the file changed) is refused. */
xv_status xv_jsonl_seek(xv_jsonl_reader *r, const xv_jsonl_pos *pos);

xv_jsonl_counts xv_jsonl_get_counts(const xv_jsonl_reader *r);
void xv_jsonl_set_counts(xv_jsonl_reader *r, const xv_jsonl_counts *c);

#endif
