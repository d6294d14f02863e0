#include "model/model_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/convert_torch.h"

static xv_status cache_root(char *out, size_t n) {
    const char *d = getenv("XV_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int w;
    if (d && *d) w = snprintf(out, n, "%s", d);
    else if (x && *x) w = snprintf(out, n, "%s/xvlm", x);
    else if (h && *h) w = snprintf(out, n, "%s/.cache/xvlm", h);
    else w = snprintf(out, n, "/tmp/xvlm-cache");
    if (w < 0 || (size_t)w >= n) return xv_error(XV_ERR_INVALID_ARG, "cache folder path too long");
    return XV_OK;
}

/* FNV-1a over the absolute path, size and mtime: a changed file gets a new entry. */
static uint64_t source_key(const char *abs, const struct stat *st) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = abs; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    uint64_t v[2] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 8; b++) h = (h ^ ((v[i] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

xv_status xv_model_resolve(const char *arg, char *dir, size_t n) {
    struct stat st;
    if (!arg || !*arg) return xv_error(XV_ERR_INVALID_ARG, "no model given");
    if (stat(arg, &st) != 0) return xv_error(XV_ERR_IO, "%s: cannot open model: %s", arg, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (snprintf(dir, n, "%s", arg) >= (int)n) return xv_error(XV_ERR_INVALID_ARG, "model path too long");
        return XV_OK;
    }
    if (!S_ISREG(st.st_mode))
        return xv_error(XV_ERR_INVALID_ARG, "%s: not a model folder or a checkpoint file", arg);
    char abs[4096], root[3072];
    if (!realpath(arg, abs)) return xv_error(XV_ERR_IO, "%s: %s", arg, strerror(errno));
    XV_TRY(cache_root(root, sizeof root));
    int w = snprintf(dir, n, "%s/%016llx", root, (unsigned long long)source_key(abs, &st));
    if (w < 0 || (size_t)w >= n) return xv_error(XV_ERR_INVALID_ARG, "cache folder path too long");
    char cfg[4200], weights[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
    struct stat cs;
    if (stat(cfg, &cs) == 0 && stat(weights, &cs) == 0) return XV_OK; /* converted before */
    XV_TRY(xv_fs_mkdir_p(dir));
    fprintf(stderr, "xvlm: converting %s once into %s (run `xvlm convert` yourself to choose the folder)\n", arg,
            dir);
    xv_infer_opts opts;
    memset(&opts, 0, sizeof opts);
    /* weights first, config last: the config's presence marks a finished conversion */
    xv_status s = xv_convert_torch(arg, weights, cfg, &opts, NULL);
    if (s != XV_OK) return xv_error_wrap(s, "converting %s", arg);
    return XV_OK;
}

xv_status xv_model_open(const char *arg, bool copy, xv_model **out) {
    char dir[4096];
    XV_TRY(xv_model_resolve(arg, dir, sizeof dir));
    return xv_model_load_dir(dir, copy, out);
}
