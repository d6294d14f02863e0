/* Files and time (see fs.h). */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device node";
    if (S_ISSOCK(m)) return "a socket";
    return "something else";
}

/* An existing target must be a regular file: renaming over anything else
 * would swap a folder, pipe or device for our bytes. Symbolic links are
 * followed, as open() would. */
static xv_status check_target(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return xv_error(XV_ERR_IO, "%s: is %s, not a regular file; refusing to replace it", path, kind_of(st.st_mode));
    return XV_OK;
}

static void release(xv_fs_atomic *w) {
    free(w->path);
    free(w->tmp);
    w->f = NULL;
    w->path = w->tmp = NULL;
}

/* Opens the temp file without blocking on a FIFO left at its name and
 * without following a link planted there. */
static int open_tmp(const char *tmp) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) != 0) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

xv_status xv_fs_atomic_open(const char *path, xv_fs_sync sync, xv_fs_atomic *w) {
    w->f = NULL;
    w->sync = sync;
    w->path = w->tmp = NULL;
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "atomic write: empty output path");
    XV_TRY(check_target(path));
    size_t n = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(n + 5);
    if (!w->path || !w->tmp) {
        release(w);
        return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(w->tmp, path, n);
    memcpy(w->tmp + n, ".tmp", 5);
    int fd = open_tmp(w->tmp);
    if (fd >= 0) w->f = fdopen(fd, "wb");
    if (!w->f) {
        xv_status st = xv_error(XV_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(w->tmp);
        }
        release(w);
        return st;
    }
    return XV_OK;
}

void xv_fs_atomic_abort(xv_fs_atomic *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        unlink(w->tmp);
    }
    release(w);
}

/* fsync the folder holding `path`, so the rename itself survives a crash. */
static xv_status sync_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    xv_status st = XV_OK;
    if (fd < 0 || fsync(fd) != 0)
        st = xv_error(XV_ERR_IO, "%s: written, but syncing its folder %s failed: %s", path, dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

xv_status xv_fs_atomic_commit(xv_fs_atomic *w) {
    if (!w || !w->f) return xv_error(XV_ERR_INVALID_ARG, "atomic write: commit without an open file");
    bool ok = !ferror(w->f);
    int err = errno;
    if (ok && (fflush(w->f) != 0 || (w->sync == XV_FS_DURABLE && fsync(fileno(w->f)) != 0))) ok = false, err = errno;
    if (fclose(w->f) != 0 && ok) ok = false, err = errno;
    w->f = NULL;
    xv_status st = ok ? XV_OK : xv_error(XV_ERR_IO, "%s: write failed: %s", w->tmp, strerror(err ? err : EIO));
    if (st == XV_OK) st = check_target(w->path); /* it may have changed since open */
    if (st == XV_OK && rename(w->tmp, w->path) != 0)
        st = xv_error(XV_ERR_IO, "%s: cannot rename %s over it: %s", w->path, w->tmp, strerror(errno));
    if (st != XV_OK) unlink(w->tmp);
    else if (w->sync == XV_FS_DURABLE) st = sync_folder(w->path);
    release(w);
    return st;
}

xv_status xv_fs_write_file(const char *path, const void *data, size_t len, xv_fs_sync sync) {
    xv_fs_atomic w;
    XV_TRY(xv_fs_atomic_open(path, sync, &w));
    if (len && fwrite(data, 1, len, w.f) != len) {
        xv_status st = xv_error(XV_ERR_IO, "%s: write failed: %s", w.tmp, strerror(errno));
        xv_fs_atomic_abort(&w);
        return st;
    }
    return xv_fs_atomic_commit(&w);
}

static xv_status make_one(const char *dir) {
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) return XV_OK;
    return xv_error(XV_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
}

xv_status xv_fs_mkdir_p(const char *path) {
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "mkdir: empty folder path");
    char *buf = strdup(path);
    if (!buf) return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    xv_status st = XV_OK;
    for (char *p = buf + 1; *p && st == XV_OK; p++) { /* every parent, then the folder itself */
        if (*p != '/' || p[-1] == '/') continue;
        *p = '\0';
        st = make_one(buf);
        *p = '/';
    }
    if (st == XV_OK) st = make_one(buf);
    free(buf);
    struct stat sb;
    if (st == XV_OK && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        st = xv_error(XV_ERR_IO, "%s: not a folder", path);
    return st;
}

char *xv_fs_first_missing(const char *path) {
    if (!path || !*path) return NULL;
    char *buf = strdup(path);
    if (!buf) return NULL;
    struct stat sb;
    for (char *p = buf + 1;; p++) { /* every parent, then the folder itself */
        if (*p && (*p != '/' || p[-1] == '/')) continue;
        const char c = *p;
        *p = '\0';
        if (stat(buf, &sb) != 0) return buf; /* buf now ends at the first missing one */
        if (!c) break;
        *p = c;
    }
    free(buf);
    return NULL;
}

void xv_fs_rmdir_up(const char *path, const char *top) {
    if (!path || !top) return;
    char *buf = strdup(path);
    size_t n = buf ? strlen(buf) : 0;
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    while (buf && rmdir(buf) == 0 && strcmp(buf, top) != 0) {
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) break;
        *slash = '\0';
    }
    free(buf);
}

xv_status xv_fs_open_regular(const char *path, int *fd_out) {
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return xv_error(XV_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    xv_status s = XV_OK;
    if (fstat(fd, &st) != 0)
        s = xv_error(XV_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = xv_error(XV_ERR_IO, "%s: is %s, not a regular file", path, kind_of(st.st_mode));
    else if (fcntl(fd, F_SETFL, 0) != 0) /* back to blocking reads */
        s = xv_error(XV_ERR_IO, "%s: cannot clear O_NONBLOCK: %s", path, strerror(errno));
    if (s != XV_OK) close(fd);
    else *fd_out = fd;
    return s;
}

/* The resolved root, or NULL (error set) when it does not exist. */
static char *real_root(const char *root, xv_fs_name_verdict *v) {
    char *r = realpath(root, NULL);
    if (!r) {
        *v = errno == ENOENT ? XV_FS_NAME_ABSENT : errno == ENOMEM ? XV_FS_NAME_NOMEM : XV_FS_NAME_UNREADABLE;
        xv_error(XV_ERR_IO, "image root %s: %s", root, strerror(errno));
    }
    return r;
}

/* Whether `path` is `dir` itself or lies below it (both resolved). */
static bool is_inside(const char *dir, const char *path) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return true;
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

xv_fs_name_verdict xv_fs_resolve(const xv_fs_root *policy, const char *name, char **path) {
    *path = NULL;
    const char *root = policy && policy->root && policy->root[0] ? policy->root : NULL;
    char *joined = xv_fs_join(root, name);
    if (!joined) return xv_error(XV_ERR_NOMEM, "%s: out of memory", name), XV_FS_NAME_NOMEM;
    if (!root || policy->allow_outside_root) {
        struct stat st;
        if (stat(joined, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
            xv_error(XV_ERR_MISSING, "%s: %s", joined, strerror(errno));
            free(joined);
            return XV_FS_NAME_ABSENT;
        }
        *path = joined;
        return XV_FS_NAME_OK;
    }
    xv_fs_name_verdict v = XV_FS_NAME_OK;
    char *rroot = real_root(root, &v);
    char *real = rroot ? realpath(joined, NULL) : NULL;
    if (rroot && !real) {
        int e = errno;
        v = e == ENOENT || e == ENOTDIR ? XV_FS_NAME_ABSENT : e == ENOMEM ? XV_FS_NAME_NOMEM : XV_FS_NAME_UNREADABLE;
        xv_error(v == XV_FS_NAME_ABSENT ? XV_ERR_MISSING : XV_ERR_IO, "%s: %s", joined, strerror(e));
    } else if (real && !is_inside(rroot, real)) {
        v = XV_FS_NAME_OUTSIDE_ROOT;
        xv_error(XV_ERR_INVALID_ARG,
                 "%s: resolves to %s, outside the image root %s (allow_outside_root: true / --allow-outside-root "
                 "permits it)",
                 name, real, root);
    }
    if (v == XV_FS_NAME_OK) *path = real;
    else free(real);
    free(rroot);
    free(joined);
    return v;
}

xv_status xv_fs_read_file(const char *path, int64_t max_bytes, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd;
    XV_TRY(xv_fs_open_regular(path, &fd));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        xv_status e = xv_error(XV_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return e;
    }
    if (st.st_size > max_bytes) {
        close(fd);
        return xv_error(XV_ERR_NOMEM, "%s: file of %lld bytes refused (limit %lld)", path, (long long)st.st_size,
                        (long long)max_bytes);
    }
    size_t want = (size_t)st.st_size;
    uint8_t *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return xv_error(XV_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, want);
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != want) {
        free(buf);
        return xv_error(XV_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, want);
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return XV_OK;
}

char *xv_fs_join(const char *dir, const char *name) {
    if (!name) name = "";
    if (!dir || !*dir || name[0] == '/') return strdup(name);
    size_t nd = strlen(dir), nn = strlen(name);
    while (nd > 1 && dir[nd - 1] == '/') nd--; /* "a/" and "a" give "a/name"; "/" stays "/" */
    bool slash = dir[nd - 1] != '/';
    char *s = malloc(nd + slash + nn + 1);
    if (!s) return NULL;
    memcpy(s, dir, nd);
    if (slash) s[nd] = '/';
    memcpy(s + nd + slash, name, nn + 1);
    return s;
}

static double seconds_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double xv_monotonic_seconds(void) { return seconds_of(CLOCK_MONOTONIC); }
double xv_cpu_seconds(void) { return seconds_of(CLOCK_PROCESS_CPUTIME_ID); }
