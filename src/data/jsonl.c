#include "data/jsonl.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/rng.h"

void xv_data_warn(int *budget, const char *fmt, ...) {
    if (budget && *budget == 0) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One fprintf per warning: stdio locks the stream, so lines from several
     * worker threads do not interleave. */
    if (budget && *budget == 1)
        fprintf(stderr, "xvlm data: %s\nxvlm data: (further warnings of this reader are not shown; see the counters)\n",
                msg);
    else
        fprintf(stderr, "xvlm data: %s\n", msg);
    if (budget && *budget > 0) (*budget)--;
}

/* ------------------------------------------------------------------ record */

/* Rewrite each "\u0000" escape (a backslash that is not itself escaped,
 * then u0000) to "\u0001"; returns how many. Outside strings such text is
 * not valid JSON anyway, so the rewrite cannot make a bad line good. */
static int rewrite_nul_escapes(char *s, size_t n) {
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') continue;
        size_t run = 0;
        while (i < n && s[i] == '\\') run++, i++;
        if (run % 2 == 1 && i + 5 <= n && s[i] == 'u' && !memcmp(s + i + 1, "0000", 4)) {
            s[i + 4] = '1';
            count++;
        }
    }
    return count;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' && s[i] != '\v' && s[i] != '\f') return false;
    return true;
}

const char *xv_json_parse_record(char *line, size_t len, cJSON **out, int *nul_escapes) {
    *out = NULL;
    *nul_escapes = 0;
    if (memchr(line, '\0', len)) return "a raw NUL byte in the line";
    *nul_escapes = rewrite_nul_escapes(line, len);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, false);
    /* cJSON answers NULL both for bad JSON and when memory ran out: a second
     * try tells a passing shortage from a bad line, so a good record is not
     * skipped as malformed. */
    if (!o) o = cJSON_ParseWithLengthOpts(line, len, &end, false);
    const char *why = NULL;
    if (!o) why = "malformed JSON";
    else if (!cJSON_IsObject(o)) why = "not a JSON object";
    else if (!end || end < line || end > line + len || !blank(end, (size_t)(line + len - end)))
        why = "bytes after the JSON object (one object per line)";
    if (why) {
        cJSON_Delete(o);
        return why;
    }
    *out = o;
    return NULL;
}

bool xv_json_has_nul(const char *s, int nul_escapes) { return nul_escapes > 0 && s && strchr(s, '\x01'); }

/* 1-based line of byte `at` of s. */
static long line_of(const char *s, const char *at) {
    long line = 1;
    for (const char *p = s; p < at; p++) line += *p == '\n';
    return line;
}

xv_status xv_json_read_list(const char *path, int64_t max_bytes, cJSON **out) {
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    XV_TRY(xv_fs_read_file(path, max_bytes, &buf, &len));
    char *text = (char *)buf;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        xv_status st = xv_error(XV_ERR_FORMAT, "%s:%ld: a raw NUL byte", path, line_of(text, nul));
        free(buf);
        return st;
    }
    rewrite_nul_escapes(text, len);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    xv_status st = XV_OK;
    if (!root) st = xv_error(XV_ERR_FORMAT, "%s:%ld: not valid JSON", path, end ? line_of(text, end) : 1L);
    else if (!cJSON_IsArray(root)) st = xv_error(XV_ERR_FORMAT, "%s: expected a JSON list of entries", path);
    else if (!end || end < text || end > text + len || !blank(end, (size_t)(text + len - end))) {
        const char *extra = end && end >= text && end <= text + len ? end : text;
        while (extra < text + len && blank(extra, 1)) extra++; /* name the line of the first extra byte */
        st = xv_error(XV_ERR_FORMAT, "%s:%ld: bytes after the JSON list (one list per file)", path,
                      line_of(text, extra));
    }
    free(buf);
    if (st != XV_OK) {
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return XV_OK;
}

bool xv_json_bad_name(const char *name) { return strchr(name, '\x01') != NULL; }

/* ---------------------------------------------------------------- file list */

void xv_file_list_free(xv_file_list *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    *l = (xv_file_list){0};
}

static xv_status list_push(xv_file_list *l, int *cap, char *path) {
    if (!path) return xv_error(XV_ERR_NOMEM, "file list: no memory");
    if (l->n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **p = realloc(l->paths, (size_t)nc * sizeof *p);
        if (!p) {
            free(path);
            return xv_error(XV_ERR_NOMEM, "file list: no memory for %d paths", nc);
        }
        l->paths = p;
        *cap = nc;
    }
    l->paths[l->n++] = path;
    return XV_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The official filter drops every path containing "_SUCCESS" (Hadoop markers). */
static int is_data_name(const char *name) { return name[0] != '.' && strstr(name, "_SUCCESS") == NULL; }

static xv_status expand_dir(const char *dir, xv_file_list *l, int *cap) {
    DIR *d = opendir(dir);
    if (!d) return xv_error(XV_ERR_IO, "%s: cannot list directory: %s", dir, strerror(errno));
    int first = l->n;
    xv_status s = XV_OK;
    struct dirent *e;
    while (s == XV_OK && (e = readdir(d)) != NULL) {
        if (!is_data_name(e->d_name)) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            s = xv_error(XV_ERR_NOMEM, "file list: no memory");
            break;
        }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(p); /* sub-directories and dangling links are not data files */
            continue;
        }
        s = list_push(l, cap, p);
    }
    closedir(d);
    if (s != XV_OK) return s;
    if (l->n == first) return xv_error(XV_ERR_MISSING, "%s: directory holds no data files", dir);
    qsort(l->paths + first, (size_t)(l->n - first), sizeof *l->paths, cmp_str);
    return XV_OK;
}

xv_status xv_file_list_expand(const char *const *entries, int n_entries, xv_file_list *out) {
    *out = (xv_file_list){0};
    int cap = 0;
    for (int i = 0; i < n_entries; i++) {
        const char *e = entries[i];
        struct stat st;
        xv_status s;
        if (!e || stat(e, &st) != 0)
            s = xv_error(XV_ERR_MISSING, "data entry %d (%s): no such file or directory", i, e ? e : "(null)");
        else if (S_ISDIR(st.st_mode))
            s = expand_dir(e, out, &cap);
        else if (!S_ISREG(st.st_mode))
            s = xv_error(XV_ERR_INVALID_ARG, "data entry %d (%s): not a file or directory", i, e);
        else if (strstr(e, "_SUCCESS"))
            s = XV_OK; /* a marker, as the official filter drops it */
        else
            s = list_push(out, &cap, strdup(e));
        if (s != XV_OK) {
            xv_file_list_free(out);
            return s;
        }
    }
    if (out->n == 0) return xv_error(XV_ERR_MISSING, "data: the %d entries hold no data files", n_entries);
    return XV_OK;
}

/* ------------------------------------------------------------------- shards */

void xv_jsonl_shard_free(xv_jsonl_shard *s) {
    free(s->files);
    *s = (xv_jsonl_shard){0};
}

/* One level of the official split_shard, or the line-level fallback. */
static void shard_level(xv_jsonl_shard *s, int idx, int count) {
    if (count == 1) return;
    if (s->n_files >= count) {
        int64_t n = s->n_files;
        int begin = (int)(n * idx / count), end = (int)(n * (idx + 1) / count);
        memmove(s->files, s->files + begin, (size_t)(end - begin) * sizeof *s->files);
        s->n_files = end - begin;
    } else {
        /* Lines ≡ offset (mod stride) of this level, then every count-th of those. */
        s->line_offset += s->line_stride * idx;
        s->line_stride *= count;
    }
}

xv_status xv_jsonl_shard_make(int n_files, int rank, int world, int worker, int workers, xv_jsonl_shard *out) {
    *out = (xv_jsonl_shard){0};
    if (n_files <= 0 || world <= 0 || workers <= 0 || rank < 0 || rank >= world || worker < 0 || worker >= workers)
        return xv_error(XV_ERR_INVALID_ARG, "shard: %d files, rank %d of %d, worker %d of %d", n_files, rank, world,
                        worker, workers);
    out->files = malloc((size_t)n_files * sizeof *out->files);
    if (!out->files) return xv_error(XV_ERR_NOMEM, "shard: no memory for %d files", n_files);
    for (int i = 0; i < n_files; i++) out->files[i] = i;
    out->n_files = n_files;
    out->line_stride = 1;
    out->line_offset = 0;
    shard_level(out, rank, world);
    shard_level(out, worker, workers);
    return XV_OK;
}

/* ------------------------------------------------------------------ reading */

enum { READ_CHUNK = 1 << 16 };

struct xv_jsonl_reader {
    const xv_file_list *files;
    xv_jsonl_shard shard;
    xv_jsonl_opts opts;
    char *label;
    int32_t *order; /* this epoch's file order (indices into files) */
    int64_t order_epoch;
    xv_jsonl_pos pos;
    FILE *f; /* open file of pos.file, positioned at pos.offset (+ buffered bytes) */
    char *rbuf;
    size_t rlen, rpos;
    char *line;
    size_t line_len, line_cap;
    xv_jsonl_counts counts;
    bool fresh_pass; /* this pass started at its beginning */
    int64_t records_in_pass;
};

xv_status xv_jsonl_open(const xv_file_list *files, const xv_jsonl_shard *shard, const xv_jsonl_opts *opts,
                        xv_jsonl_reader **out) {
    *out = NULL;
    if (!files || !shard || !opts || shard->n_files <= 0 || shard->line_stride <= 0)
        return xv_error(XV_ERR_INVALID_ARG, "jsonl: empty shard");
    for (int i = 0; i < shard->n_files; i++)
        if (shard->files[i] < 0 || shard->files[i] >= files->n)
            return xv_error(XV_ERR_INVALID_ARG, "jsonl: shard file %d out of range", shard->files[i]);
    xv_jsonl_reader *r = calloc(1, sizeof *r);
    if (!r) return xv_error(XV_ERR_NOMEM, "jsonl: no memory");
    r->files = files;
    r->opts = *opts;
    if (!r->opts.max_line_bytes) r->opts.max_line_bytes = XV_JSONL_DEFAULT_MAX_LINE;
    r->label = strdup(opts->label ? opts->label : "jsonl");
    r->shard = *shard;
    r->shard.files = malloc((size_t)shard->n_files * sizeof *shard->files);
    r->order = malloc((size_t)shard->n_files * sizeof *r->order);
    r->rbuf = malloc(READ_CHUNK);
    if (!r->label || !r->shard.files || !r->order || !r->rbuf) {
        xv_jsonl_close(r);
        return xv_error(XV_ERR_NOMEM, "jsonl: no memory");
    }
    memcpy(r->shard.files, shard->files, (size_t)shard->n_files * sizeof *shard->files);
    r->order_epoch = -1;
    r->fresh_pass = true;
    *out = r;
    return XV_OK;
}

void xv_jsonl_close(xv_jsonl_reader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    free(r->shard.files);
    free(r->order);
    free(r->rbuf);
    free(r->line);
    free(r->label);
    free(r);
}

/* The file order of epoch e: a function of (shuffle_key, e) only. */
static void make_order(xv_jsonl_reader *r, int64_t epoch) {
    if (r->order_epoch == epoch) return;
    memcpy(r->order, r->shard.files, (size_t)r->shard.n_files * sizeof *r->order);
    if (r->opts.shuffle_files) {
        xv_rng root = {r->opts.shuffle_key, 0};
        xv_rng g = xv_rng_split(&root, (uint64_t)epoch);
        xv_rng_shuffle_i32(&g, r->order, r->shard.n_files);
    }
    r->order_epoch = epoch;
}

static const char *path_at(xv_jsonl_reader *r, int64_t epoch, int64_t file) {
    make_order(r, epoch);
    return r->files->paths[r->order[file]];
}

static const char *current_path(xv_jsonl_reader *r) { return path_at(r, r->pos.epoch, r->pos.file); }

static void close_file(xv_jsonl_reader *r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
    r->rlen = r->rpos = 0;
}

static void next_file(xv_jsonl_reader *r) {
    close_file(r);
    r->pos.file++;
    r->pos.offset = 0;
    r->pos.line = 0;
}

/* Read one line into r->line (when `store`; at most max_line_bytes, beyond
 * which *too_long is set and the rest is only scanned). 1: a line, 0: end of
 * file, -1: read error. */
static int read_line(xv_jsonl_reader *r, bool store, bool *too_long) {
    r->line_len = 0;
    *too_long = false;
    bool any = false;
    for (;;) {
        if (r->rpos == r->rlen) {
            r->rlen = fread(r->rbuf, 1, READ_CHUNK, r->f);
            r->rpos = 0;
            if (r->rlen == 0) return ferror(r->f) ? -1 : any ? 1 : 0;
        }
        const char *start = r->rbuf + r->rpos;
        size_t avail = r->rlen - r->rpos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        any = true;
        if (store && !*too_long) {
            if (r->line_len + take > r->opts.max_line_bytes) {
                *too_long = true;
            } else {
                if (r->line_len + take + 1 > r->line_cap) {
                    size_t nc = r->line_cap ? r->line_cap : 4096;
                    while (nc < r->line_len + take + 1) nc *= 2;
                    char *p = realloc(r->line, nc);
                    if (!p) return -2;
                    r->line = p;
                    r->line_cap = nc;
                }
                memcpy(r->line + r->line_len, start, take);
                r->line_len += take;
            }
        }
        size_t used = take + (nl ? 1 : 0);
        r->rpos += used;
        r->pos.offset += (int64_t)used;
        if (nl) return 1;
    }
}

/* A data file, opened without blocking on a FIFO (core/fs.h); NULL with the
 * error message set and errno kept when it cannot be. */
static FILE *open_data(const char *path) {
    int fd;
    if (xv_fs_open_regular(path, &fd) != XV_OK) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) close(fd);
    return f;
}

/* Open the file at pos.file and place it at pos.offset; false (warned and
 * counted) when that fails. */
static bool open_current(xv_jsonl_reader *r) {
    const char *path = current_path(r);
    r->f = open_data(path);
    const char *why = r->f ? NULL : xv_error_message();
    if (r->f && r->pos.offset > 0 && fseeko(r->f, (off_t)r->pos.offset, SEEK_SET) != 0) {
        why = strerror(errno);
        fclose(r->f);
        r->f = NULL;
    }
    if (!r->f) {
        xv_data_warn(r->opts.warn_budget, "%s: %s: skipped: cannot read the file: %s", r->label, path, why);
        r->counts.unreadable_files++;
        return false;
    }
    r->rlen = r->rpos = 0;
    return true;
}

xv_status xv_jsonl_next(xv_jsonl_reader *r, cJSON **obj, xv_jsonl_where *where) {
    *obj = NULL;
    for (;;) {
        if (r->pos.done) return XV_OK;
        if (!r->f) {
            if (r->pos.file >= r->shard.n_files) { /* end of a pass */
                if (r->fresh_pass && r->records_in_pass == 0)
                    return xv_error(XV_ERR_MISSING, "%s: a whole pass over the shard's %d file(s) (%s%s) found no JSON object",
                                    r->label, r->shard.n_files, path_at(r, r->pos.epoch, 0),
                                    r->shard.n_files > 1 ? ", ..." : "");
                if (!r->opts.repeat) {
                    r->pos.done = 1;
                    return XV_OK;
                }
                r->pos = (xv_jsonl_pos){.epoch = r->pos.epoch + 1};
                r->fresh_pass = true;
                r->records_in_pass = 0;
                continue;
            }
            if (!open_current(r)) {
                next_file(r);
                continue;
            }
        }
        int64_t line_no = r->pos.line;
        bool mine = line_no % r->shard.line_stride == r->shard.line_offset;
        bool too_long;
        int rc = read_line(r, mine, &too_long);
        if (rc == -2) return xv_error(XV_ERR_NOMEM, "%s: %s:%lld: no memory for the line", r->label,
                                      current_path(r), (long long)line_no + 1);
        if (rc == 0) {
            next_file(r);
            continue;
        }
        if (rc < 0) {
            xv_data_warn(r->opts.warn_budget, "%s: %s:%lld: read error; rest of the file skipped", r->label,
                         current_path(r), (long long)line_no + 1);
            r->counts.unreadable_files++;
            next_file(r);
            continue;
        }
        r->pos.line++;
        if (!mine) continue;
        if (r->line_len > 0 && r->line[r->line_len - 1] == '\r') r->line_len--;
        if (!too_long && blank(r->line, r->line_len)) continue;
        r->counts.lines++;
        const char *path = current_path(r);
        if (too_long) {
            xv_data_warn(r->opts.warn_budget, "%s: %s:%lld: skipped: line longer than %zu bytes", r->label, path,
                         (long long)line_no + 1, r->opts.max_line_bytes);
            r->counts.malformed++;
            continue;
        }
        cJSON *o;
        int nul_escapes;
        const char *why = xv_json_parse_record(r->line, r->line_len, &o, &nul_escapes);
        if (why) {
            xv_data_warn(r->opts.warn_budget, "%s: %s:%lld: skipped: %s", r->label, path, (long long)line_no + 1, why);
            r->counts.malformed++;
            continue;
        }
        r->counts.records++;
        r->records_in_pass++;
        if (where) *where = (xv_jsonl_where){.path = path, .line = line_no + 1, .epoch = r->pos.epoch,
                                            .nul_escapes = nul_escapes};
        *obj = o;
        return XV_OK;
    }
}

xv_jsonl_pos xv_jsonl_tell(const xv_jsonl_reader *r) { return r->pos; }

xv_status xv_jsonl_seek(xv_jsonl_reader *r, const xv_jsonl_pos *p) {
    if (p->done != 0 && p->done != 1)
        return xv_error(XV_ERR_INVALID_ARG, "%s: position: done flag %lld", r->label, (long long)p->done);
    if (p->epoch < 0 || p->file < 0 || p->file > r->shard.n_files || p->offset < 0 || p->line < 0 ||
        (p->file == r->shard.n_files && (p->offset || p->line)))
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s: position (epoch %lld, file %lld, offset %lld, line %lld) outside the %d-file shard", r->label,
                        (long long)p->epoch, (long long)p->file, (long long)p->offset, (long long)p->line,
                        r->shard.n_files);
    if (!p->done && p->file < r->shard.n_files && p->offset > 0) {
        const char *path = path_at(r, p->epoch, p->file);
        FILE *f = open_data(path);
        if (f) {
            /* The byte before a line start is the previous line's '\n'. */
            struct stat st;
            int c = EOF;
            bool size_ok = fstat(fileno(f), &st) == 0 && p->offset <= (int64_t)st.st_size;
            bool at_end = size_ok && p->offset == (int64_t)st.st_size; /* after a last line without '\n' */
            if (size_ok && fseeko(f, (off_t)(p->offset - 1), SEEK_SET) == 0) c = fgetc(f);
            fclose(f);
            if (c != '\n' && !at_end)
                return xv_error(XV_ERR_FORMAT,
                                "%s: %s: saved offset %lld is not the start of a line (the file changed?)", r->label,
                                path, (long long)p->offset);
        } /* an unreadable file is warned about and skipped when reached */
    }
    close_file(r);
    r->pos = *p;
    r->fresh_pass = p->file == 0 && p->offset == 0 && p->line == 0;
    r->records_in_pass = 0;
    return XV_OK;
}

xv_jsonl_counts xv_jsonl_get_counts(const xv_jsonl_reader *r) { return r->counts; }
void xv_jsonl_set_counts(xv_jsonl_reader *r, const xv_jsonl_counts *c) { r->counts = *c; }
