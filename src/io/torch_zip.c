/* PyTorch zip checkpoints through libzip: see torch_zip.h. */
#include "io/torch_zip.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "core/error.h"

#define MAX_PREFIX 200
#define DEFLATE_MAX_RATIO 1032 /* deflate cannot expand one input bit beyond this */

struct xv_tzip {
    zip_t *zip;
    char *label;
    char prefix[MAX_PREFIX + 1];
    xv_tzip_limits lim;
};

xv_tzip_limits xv_tzip_default_limits(void) {
    xv_tzip_limits l = {
        .max_entry = (uint64_t)16 << 30,
        .max_total = (uint64_t)64 << 30,
        .max_pickle = (uint64_t)256 << 20,
        .max_ratio = DEFLATE_MAX_RATIO,
        .max_entries = 1u << 20,
    };
    return l;
}

/* A clear message for a file libzip could not open, from its first bytes. */
static xv_status open_error(const char *label, int zerr, const uint8_t *head, size_t nhead, uint64_t fsize) {
    if (zerr == ZIP_ER_NOZIP || zerr == ZIP_ER_INCONS) {
        bool zip_magic = nhead >= 4 && !memcmp(head, "PK\x03\x04", 4);
        bool legacy_pickle = nhead >= 2 && head[0] == 0x80 && head[1] <= 5; /* magic number pickle first */
        bool legacy_tar = nhead >= 262 && !memcmp(head + 257, "ustar", 5);
        if (zerr == ZIP_ER_INCONS)
            return xv_error(XV_ERR_FORMAT,
                            "%s: inconsistent zip archive (local headers and central directory disagree or "
                            "entries overlap): damaged or hostile file",
                            label);
        if (zip_magic)
            return xv_error(XV_ERR_FORMAT,
                            "%s: truncated or damaged zip archive (%" PRIu64 " bytes, no end-of-central-directory "
                            "record): was the download or copy complete?",
                            label, fsize);
        if (legacy_pickle || legacy_tar)
            return xv_error(XV_ERR_UNSUPPORTED,
                            "%s: legacy PyTorch format (torch < 1.6, %s): not supported; re-save it with a newer "
                            "torch: torch.save(torch.load(old), new)",
                            label, legacy_tar ? "tar" : "pickle stream");
        return xv_error(XV_ERR_FORMAT, "%s: not a PyTorch checkpoint (not a zip archive)", label);
    }
    zip_error_t e;
    zip_error_init_with_code(&e, zerr);
    xv_status st = xv_error(zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ ? XV_ERR_IO : XV_ERR_FORMAT,
                            "%s: cannot open zip archive: %s", label, zip_error_strerror(&e));
    zip_error_fini(&e);
    return st;
}

/* Every entry's declared sizes against the file and the caps; the folder name. */
static xv_status validate(xv_tzip *z, uint64_t fsize) {
    zip_int64_t n = zip_get_num_entries(z->zip, 0);
    if (n <= 0) return xv_error(XV_ERR_FORMAT, "%s: empty zip archive", z->label);
    if ((uint64_t)n > z->lim.max_entries)
        return xv_error(XV_ERR_FORMAT, "%s: %" PRId64 " zip entries exceed the limit %" PRIu64, z->label, (int64_t)n,
                        z->lim.max_entries);
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t s;
        if (zip_stat_index(z->zip, (zip_uint64_t)i, 0, &s) != 0)
            return xv_error(XV_ERR_FORMAT, "%s: zip entry %" PRId64 ": %s", z->label, (int64_t)i, zip_strerror(z->zip));
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD |
                                  ZIP_STAT_ENCRYPTION_METHOD;
        if ((s.valid & need) != need)
            return xv_error(XV_ERR_FORMAT, "%s: zip entry %" PRId64 " lacks size information", z->label, (int64_t)i);
        const char *name = s.name;
        if (s.encryption_method != ZIP_EM_NONE)
            return xv_error(XV_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted", z->label, name);
        if (s.comp_method != ZIP_CM_STORE && s.comp_method != ZIP_CM_DEFLATE)
            return xv_error(XV_ERR_UNSUPPORTED, "%s: entry '%s' uses zip compression method %d (only stored or deflate)",
                            z->label, name, (int)s.comp_method);
        if (s.comp_size > fsize)
            return xv_error(XV_ERR_FORMAT, "%s: entry '%s' declares %" PRIu64 " compressed bytes but the file has only %" PRIu64,
                            z->label, name, (uint64_t)s.comp_size, fsize);
        if (s.comp_method == ZIP_CM_STORE && s.size != s.comp_size)
            return xv_error(XV_ERR_FORMAT, "%s: stored entry '%s' declares %" PRIu64 " bytes but holds %" PRIu64,
                            z->label, name, (uint64_t)s.size, (uint64_t)s.comp_size);
        if (s.comp_method == ZIP_CM_DEFLATE && s.size / z->lim.max_ratio > s.comp_size)
            return xv_error(XV_ERR_FORMAT,
                            "%s: entry '%s' declares %" PRIu64 " bytes from %" PRIu64 " compressed (more than %" PRIu64
                            "x): zip bomb refused",
                            z->label, name, (uint64_t)s.size, (uint64_t)s.comp_size, z->lim.max_ratio);
        if (s.size > z->lim.max_entry)
            return xv_error(XV_ERR_FORMAT, "%s: entry '%s' declares %" PRIu64 " bytes, over the %" PRIu64 "-byte limit",
                            z->label, name, (uint64_t)s.size, z->lim.max_entry);
        total += s.size; /* cannot wrap: each term <= max_entry, n <= max_entries */
        if (total > z->lim.max_total)
            return xv_error(XV_ERR_FORMAT, "%s: entries declare more than %" PRIu64 " bytes in total", z->label,
                            z->lim.max_total);
        if (i == 0) {
            const char *slash = strchr(name, '/');
            size_t np = slash ? (size_t)(slash - name) : 0;
            if (!slash || np == 0 || np > MAX_PREFIX)
                return xv_error(XV_ERR_FORMAT, "%s: not a PyTorch checkpoint: first entry '%s' is not inside a folder",
                                z->label, name);
            memcpy(z->prefix, name, np);
            z->prefix[np] = '\0';
        }
    }
    return XV_OK;
}

static xv_status entry_index(xv_tzip *z, const char *rel, zip_uint64_t *idx, uint64_t *size) {
    char name[MAX_PREFIX + 128];
    if ((size_t)snprintf(name, sizeof name, "%s/%s", z->prefix, rel) >= sizeof name)
        return xv_error(XV_ERR_INVALID_ARG, "%s: entry name too long", z->label);
    zip_int64_t i = zip_name_locate(z->zip, name, 0);
    if (i < 0) return xv_error(XV_ERR_MISSING, "%s: the archive has no entry '%s'", z->label, name);
    zip_stat_t s;
    if (zip_stat_index(z->zip, (zip_uint64_t)i, 0, &s) != 0)
        return xv_error(XV_ERR_FORMAT, "%s: %s: %s", z->label, name, zip_strerror(z->zip));
    *idx = (zip_uint64_t)i;
    *size = s.size;
    return XV_OK;
}

/* Exactly `n` bytes of entry `idx`, then end of data and a correct CRC. */
static xv_status read_entry(xv_tzip *z, zip_uint64_t idx, const char *what, void *dst, uint64_t n) {
    zip_file_t *f = zip_fopen_index(z->zip, idx, 0);
    if (!f) return xv_error(XV_ERR_FORMAT, "%s: cannot open entry %s: %s", z->label, what, zip_strerror(z->zip));
    uint64_t got = 0;
    xv_status st = XV_OK;
    while (got < n) {
        zip_int64_t r = zip_fread(f, (uint8_t *)dst + got, n - got);
        if (r < 0) {
            st = xv_error(XV_ERR_FORMAT, "%s: reading entry %s: %s", z->label, what, zip_file_strerror(f));
            break;
        }
        if (r == 0) {
            st = xv_error(XV_ERR_FORMAT, "%s: entry %s ends after %" PRIu64 " of its %" PRIu64 " declared bytes",
                          z->label, what, got, n);
            break;
        }
        got += (uint64_t)r;
    }
    if (st == XV_OK) {
        uint8_t extra;
        zip_int64_t r = zip_fread(f, &extra, 1);
        if (r != 0)
            st = xv_error(XV_ERR_FORMAT, "%s: entry %s %s", z->label, what,
                          r > 0 ? "holds more data than it declares" : zip_file_strerror(f));
    }
    if (zip_fclose(f) != 0 && st == XV_OK)
        st = xv_error(XV_ERR_FORMAT, "%s: entry %s: checksum or size mismatch", z->label, what);
    return st;
}

static xv_status finish_open(xv_tzip *z, uint64_t fsize, xv_tzip **out) {
    xv_status st = validate(z, fsize);
    zip_uint64_t idx;
    uint64_t size;
    if (st == XV_OK) {
        st = entry_index(z, "data.pkl", &idx, &size);
        if (st == XV_ERR_MISSING)
            st = xv_error(XV_ERR_FORMAT, "%s: not a PyTorch checkpoint: no %s/data.pkl", z->label, z->prefix);
    }
    /* Older writers have no byteorder entry: they were little-endian. */
    if (st == XV_OK && entry_index(z, "byteorder", &idx, &size) == XV_OK) {
        char order[16] = {0};
        if (size >= sizeof order)
            st = xv_error(XV_ERR_FORMAT, "%s: byteorder entry of %" PRIu64 " bytes", z->label, size);
        else st = read_entry(z, idx, "byteorder", order, size);
        if (st == XV_OK && strcmp(order, "little") != 0)
            st = xv_error(XV_ERR_UNSUPPORTED, "%s: storages are stored '%s'-endian; only little-endian is supported",
                          z->label, order);
    }
    if (st != XV_OK) {
        xv_tzip_close(z);
        return st;
    }
    xv_error_clear(); /* the absent byteorder entry is not an error */
    *out = z;
    return XV_OK;
}

static xv_tzip *new_handle(const char *label, const xv_tzip_limits *limits) {
    xv_tzip *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->label = strdup(label ? label : "checkpoint");
    if (!z->label) {
        free(z);
        return NULL;
    }
    z->lim = limits ? *limits : xv_tzip_default_limits();
    if (z->lim.max_ratio == 0) z->lim.max_ratio = 1;
    return z;
}

xv_status xv_tzip_open(const char *path, const xv_tzip_limits *limits, xv_tzip **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return xv_error(XV_ERR_IO, "%s: cannot open: no such file or not readable", path);
    if (!S_ISREG(sb.st_mode)) return xv_error(XV_ERR_IO, "%s: not a regular file", path);
    xv_tzip *z = new_handle(path, limits);
    if (!z) return xv_error(XV_ERR_NOMEM, "%s: out of memory", path);
    int zerr = 0;
    z->zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!z->zip) {
        uint8_t head[512];
        size_t nhead = 0;
        FILE *f = fopen(path, "rb");
        if (f) {
            nhead = fread(head, 1, sizeof head, f);
            fclose(f);
        }
        xv_tzip_close(z);
        return open_error(path, zerr, head, nhead, (uint64_t)sb.st_size);
    }
    return finish_open(z, (uint64_t)sb.st_size, out);
}

xv_status xv_tzip_open_memory(const void *buf, size_t len, const char *label, const xv_tzip_limits *limits,
                              xv_tzip **out) {
    *out = NULL;
    xv_tzip *z = new_handle(label, limits);
    if (!z) return xv_error(XV_ERR_NOMEM, "out of memory");
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(len ? buf : "", len, 0, &ze);
    if (src) {
        z->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
        if (!z->zip) zip_source_free(src);
    }
    if (!z->zip) {
        int zerr = zip_error_code_zip(&ze);
        zip_error_fini(&ze);
        xv_status st = open_error(z->label, zerr, buf, len, len);
        xv_tzip_close(z);
        return st;
    }
    zip_error_fini(&ze);
    return finish_open(z, len, out);
}

void xv_tzip_close(xv_tzip *z) {
    if (!z) return;
    if (z->zip) zip_discard(z->zip);
    free(z->label);
    free(z);
}

xv_status xv_tzip_read_pickle(xv_tzip *z, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    zip_uint64_t idx;
    uint64_t size;
    XV_TRY(entry_index(z, "data.pkl", &idx, &size));
    if (size > z->lim.max_pickle)
        return xv_error(XV_ERR_FORMAT, "%s: data.pkl of %" PRIu64 " bytes exceeds the %" PRIu64 "-byte limit", z->label,
                        size, z->lim.max_pickle);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return xv_error(XV_ERR_NOMEM, "%s: out of memory for data.pkl", z->label);
    xv_status st = read_entry(z, idx, "data.pkl", buf, size);
    if (st != XV_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = (size_t)size;
    return XV_OK;
}

xv_status xv_tzip_storage_size(xv_tzip *z, const char *key, uint64_t *nbytes) {
    char rel[128];
    if ((size_t)snprintf(rel, sizeof rel, "data/%s", key) >= sizeof rel)
        return xv_error(XV_ERR_INVALID_ARG, "%s: storage key too long", z->label);
    zip_uint64_t idx;
    xv_status st = entry_index(z, rel, &idx, nbytes);
    if (st == XV_ERR_MISSING)
        return xv_error(XV_ERR_MISSING, "%s: the pickle refers to storage '%s' but the archive has no entry %s/%s",
                        z->label, key, z->prefix, rel);
    return st;
}

xv_status xv_tzip_read_storage(xv_tzip *z, const char *key, void *dst, uint64_t nbytes) {
    char rel[128];
    if ((size_t)snprintf(rel, sizeof rel, "data/%s", key) >= sizeof rel)
        return xv_error(XV_ERR_INVALID_ARG, "%s: storage key too long", z->label);
    zip_uint64_t idx;
    uint64_t size;
    XV_TRY(entry_index(z, rel, &idx, &size));
    if (size != nbytes)
        return xv_error(XV_ERR_INVALID_ARG, "%s: storage '%s' has %" PRIu64 " bytes, caller expected %" PRIu64, z->label,
                        key, size, nbytes);
    return read_entry(z, idx, rel, dst, nbytes);
}
