/* Files and time: the one place that writes files atomically, creates folders,
 * reads whole files, joins paths and reads the clocks. Every writer in the
 * project goes through xv_fs_atomic_* so one durability rule holds everywhere:
 * write `path.tmp` in the target's folder, fsync it, rename it over `path`,
 * fsync the folder. A reader never sees a half-written file; a crash leaves
 * either the old file or the new one (and at worst a stale `path.tmp`). */
#ifndef XV_CORE_FS_H
#define XV_CORE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

/* Whether a commit waits for the disk. fsync costs 5-15 ms a file on this
 * machine's ext4, 20-40x the write itself: fine for a checkpoint, a config or
 * a log, too much for the thousands of images a synthetic world holds. */
typedef enum {
    XV_FS_DURABLE, /* fsync the file and its folder: a crash keeps the old or the new file */
    XV_FS_NO_FSYNC /* rename only, for bulk outputs that can be made again: a crash may
                      lose them but never leaves a torn file under the target's name */
} xv_fs_sync;

/* An atomic write in progress: write to `f`, then commit or abort. */
typedef struct {
    FILE *f;    /* the temporary file, open for writing */
    char *path; /* the target */
    char *tmp;  /* path + ".tmp", in the same folder, so rename stays atomic */
    xv_fs_sync sync;
} xv_fs_atomic;

/* Open `path.tmp` for writing. Refuses a target that exists and is not a
 * regular file (a folder, FIFO, device node or socket): nothing is created
 * and the error names the path. On failure `w` holds nothing to release. */
xv_status xv_fs_atomic_open(const char *path, xv_fs_sync sync, xv_fs_atomic *w);
/* Flush, fsync, rename over the target, fsync the folder (no fsync with
 * XV_FS_NO_FSYNC). Any earlier write
 * error on w->f fails the commit. Always releases `w`; on failure the temp
 * file is removed and the target is left as it was. */
xv_status xv_fs_atomic_commit(xv_fs_atomic *w);
/* Drop the temp file and release `w`; the target is left as it was. Safe on a
 * zeroed or already released `w`. */
void xv_fs_atomic_abort(xv_fs_atomic *w);
/* open + write `len` bytes + commit. */
xv_status xv_fs_write_file(const char *path, const void *data, size_t len, xv_fs_sync sync);

/* mkdir -p (mode 0755): every missing parent, then the folder itself. An
 * existing folder is fine; an existing non-folder is an error naming it. */
xv_status xv_fs_mkdir_p(const char *path);

/* Undoing a mkdir -p when the step it was made for fails, so a failed command
 * leaves no empty folder behind: xv_fs_first_missing(path) before the mkdir
 * (the outermost folder of `path`, itself or a parent, that does not exist
 * yet; malloc'd; NULL when `path` exists or out of memory), then on failure
 * xv_fs_rmdir_up(path, that): rmdir `path` and each parent up to and
 * including it, stopping at the first that is not empty. A NULL `top` does
 * nothing (the folder was there before). */
char *xv_fs_first_missing(const char *path);
void xv_fs_rmdir_up(const char *path, const char *top);

/* Read a whole regular file into a malloc'd buffer, with one extra '\0' after
 * the last byte (so text can be used as a C string; `*len` excludes it).
 * Files over `max_bytes` are refused with an error naming the file. Empty
 * files are read (len 0); callers that need content check `*len`. */
xv_status xv_fs_read_file(const char *path, int64_t max_bytes, uint8_t **data, size_t *len);

/* Open an existing file for reading, only if it is a regular file. The open
 * never blocks (O_NONBLOCK, then fstat): a FIFO, device, socket or folder is
 * refused with an error naming the path and what it is. *fd is then in
 * blocking mode, or -1 on failure (XV_ERR_IO, strerror's reason in the
 * message). */
xv_status xv_fs_open_regular(const char *path, int *fd);

/* Where the files a dataset names may live (image paths in JSON records,
 * lines of an image list). With `root` NULL or "" a name is taken as written
 * (relative to the working directory). With a root, a relative name is
 * joined to it and, unless `allow_outside_root`, the result must resolve
 * (after "..", "." and symbolic links) to a path inside the root: an
 * absolute name or one that climbs out is refused. */
typedef struct {
    const char *root;
    bool allow_outside_root;
} xv_fs_root;

/* What xv_fs_resolve found wrong with a name (XV_FS_NAME_OK when nothing). */
typedef enum {
    XV_FS_NAME_OK = 0,
    XV_FS_NAME_ABSENT,       /* no such file (or the root itself is missing) */
    XV_FS_NAME_OUTSIDE_ROOT, /* resolves outside the root */
    XV_FS_NAME_UNREADABLE,   /* a path component cannot be searched */
    XV_FS_NAME_NOMEM         /* out of memory */
} xv_fs_name_verdict;

/* The path to open for `name` under `policy`, malloc'd into *path (the
 * resolved real path when the root is enforced, so a later open sees what
 * was checked). On refusal *path is NULL, the error message says why and
 * names `name`, and the verdict tells the caller what to count. */
xv_fs_name_verdict xv_fs_resolve(const xv_fs_root *policy, const char *name, char **path);

/* `dir/name`, malloc'd (NULL when out of memory). One slash between the two
 * however `dir` ends; `name` alone when `dir` is NULL or empty or `name` is
 * absolute. */
char *xv_fs_join(const char *dir, const char *name);

/* Seconds on the monotonic clock (for durations; never goes back). */
double xv_monotonic_seconds(void);
/* CPU seconds used by this process, all threads together. */
double xv_cpu_seconds(void);

#endif
