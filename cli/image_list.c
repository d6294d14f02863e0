#include "image_list.h"

#include <dirent.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fs.h"

void xv_cli_image_list_free(xv_cli_image_list *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    *l = (xv_cli_image_list){0};
}

static xv_status push(xv_cli_image_list *l, char *owned) {
    if (!owned) return xv_error(XV_ERR_NOMEM, "out of memory");
    if (l->n == l->cap) {
        int64_t nc = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->paths, sizeof *p * (size_t)nc);
        if (!p) {
            free(owned);
            return xv_error(XV_ERR_NOMEM, "out of memory");
        }
        l->paths = p;
        l->cap = nc;
    }
    l->paths[l->n++] = owned;
    return XV_OK;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static xv_status walk(const char *dir, xv_cli_image_list *l, int depth) {
    if (depth > 64) return xv_error(XV_ERR_INVALID_ARG, "%s: folders nested too deeply", dir);
    DIR *d = opendir(dir);
    if (!d) return xv_error(XV_ERR_IO, "%s: cannot list the folder", dir);
    xv_status st = XV_OK;
    struct dirent *e;
    while (st == XV_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files */
        char *p = xv_fs_join(dir, e->d_name);
        if (!p) {
            st = xv_error(XV_ERR_NOMEM, "out of memory");
            break;
        }
        struct stat s;
        if (stat(p, &s) == 0 && S_ISDIR(s.st_mode)) {
            st = walk(p, l, depth + 1);
            free(p);
        } else if (is_image_name(e->d_name)) {
            st = push(l, p);
        } else {
            free(p);
        }
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

xv_status xv_cli_read_lines(const char *path, xv_cli_image_list *out) {
    *out = (xv_cli_image_list){0};
    FILE *f = fopen(path, "rb");
    if (!f) return xv_error(XV_ERR_MISSING, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    xv_status st = XV_OK;
    while (st == XV_OK && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        st = push(out, strdup(line));
    }
    free(line);
    fclose(f);
    if (st != XV_OK) xv_cli_image_list_free(out);
    return st;
}

/* A list file is text: an image (or any file with NUL bytes in its first
 * 4 KiB) given where a list is expected is refused before anything is done. */
static xv_status check_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return xv_error(XV_ERR_MISSING, "%s: cannot open", path);
    unsigned char head[4096];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    bool jpeg = n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff;
    bool png = n >= 8 && !memcmp(head, "\x89PNG\r\n\x1a\n", 8);
    if (jpeg || png)
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s is a %s image, not a folder or a list of images; give its folder, or a text file with "
                        "one image path per line",
                        path, jpeg ? "JPEG" : "PNG");
    if (memchr(head, 0, n))
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s is a binary file, not a folder or a list of images (a text file with one image path "
                        "per line)",
                        path);
    return XV_OK;
}

/* Adds the image `name` names under the policy's root: its real path when
 * it resolves inside the root (the index stores absolute paths), the joined
 * name when it is missing (reading it reports that); a name that resolves
 * outside is skipped with a warning naming where it came from (`where`). */
static xv_status push_checked(xv_cli_image_list *l, const xv_fs_root *policy, const char *cmd, const char *where,
                              const char *name) {
    char *real = NULL;
    xv_fs_name_verdict v = xv_fs_resolve(policy, name, &real);
    if (v == XV_FS_NAME_NOMEM) return XV_ERR_NOMEM;
    if (v == XV_FS_NAME_OUTSIDE_ROOT) {
        fprintf(stderr, "xvlm %s: warning: %s: %s; skipped\n", cmd, where, xv_error_message());
        xv_error_clear();
        return XV_OK;
    }
    xv_error_clear();
    return push(l, real ? real : xv_fs_join(policy->root, name));
}

/* The lines of a list file, numbered for the warnings. A line holding a NUL
 * byte is skipped with a warning: cut at the NUL it would name another file. */
static xv_status read_list(const char *src, const xv_fs_root *policy, const char *cmd, xv_cli_image_list *out) {
    XV_TRY(check_text(src));
    FILE *f = fopen(src, "rb");
    if (!f) return xv_error(XV_ERR_MISSING, "%s: cannot open", src);
    char *copy = strdup(src);
    const char *base = policy && policy->root ? policy->root : copy ? dirname(copy) : ".";
    char *line = NULL, where[4096];
    size_t cap = 0;
    ssize_t len;
    xv_status st = XV_OK;
    for (long long no = 1; st == XV_OK && (len = getline(&line, &cap, f)) >= 0; no++) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        snprintf(where, sizeof where, "%s:%lld", src, no);
        if (memchr(line, '\0', (size_t)len)) {
            fprintf(stderr, "xvlm %s: warning: %s: the path holds a NUL byte; skipped\n", cmd, where);
            continue;
        }
        if (policy && policy->root) st = push_checked(out, policy, cmd, where, line);
        else st = push(out, line[0] == '/' ? strdup(line) : xv_fs_join(base, line));
    }
    free(line);
    free(copy);
    fclose(f);
    return st;
}

xv_status xv_cli_image_list_read(const char *src, const xv_fs_root *policy, const char *cmd,
                                 xv_cli_image_list *out) {
    *out = (xv_cli_image_list){0};
    struct stat s;
    if (stat(src, &s) != 0) return xv_error(XV_ERR_MISSING, "%s: no such folder or list file", src);
    xv_status st;
    if (S_ISDIR(s.st_mode)) {
        xv_cli_image_list found = {0};
        st = walk(src, &found, 0);
        if (st == XV_OK) qsort(found.paths, (size_t)found.n, sizeof *found.paths, cmp_str);
        if (st != XV_OK || !policy || !policy->root) {
            *out = found; /* no root: every image found, as before */
            found = (xv_cli_image_list){0};
        }
        for (int64_t i = 0; st == XV_OK && i < found.n; i++) {
            /* absolute, so that the root is not put in front of it once more */
            char *abs = realpath(found.paths[i], NULL);
            st = abs ? push_checked(out, policy, cmd, found.paths[i], abs) : push(out, strdup(found.paths[i]));
            free(abs);
        }
        xv_cli_image_list_free(&found);
    } else {
        st = read_list(src, policy, cmd, out);
    }
    if (st != XV_OK) xv_cli_image_list_free(out);
    return st;
}
