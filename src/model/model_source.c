#include "model/model_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/convert_torch.h"
#include "model/model_folder.h"

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

/* FNV-1a over the absolute path, size, mtime and conversion options: a
 * changed file, or the same file converted differently, gets a new entry. */
static uint64_t source_key(const char *abs, const struct stat *st, const xv_infer_opts *o) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = abs; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    uint64_t v[5] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec,
                     (uint64_t)o->image_res, (uint64_t)o->window, (uint64_t)o->text_heads};
    for (int i = 0; i < 5; i++)
        for (int b = 0; b < 8; b++) h = (h ^ ((v[i] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

xv_status xv_model_resolve(const char *arg, const xv_infer_opts *opts, char *dir, size_t n) {
    const xv_infer_opts none = {0};
    if (!opts) opts = &none;
    struct stat st;
    if (!arg || !*arg) return xv_error(XV_ERR_INVALID_ARG, "no model given");
    if (stat(arg, &st) != 0)
        return xv_error(XV_ERR_MISSING, "%s: no such model folder or checkpoint file (%s)", arg, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (snprintf(dir, n, "%s", arg) >= (int)n) return xv_error(XV_ERR_INVALID_ARG, "model path too long");
        return XV_OK;
    }
    if (!S_ISREG(st.st_mode))
        return xv_error(XV_ERR_INVALID_ARG, "%s: not a model folder or a checkpoint file", arg);
    char abs[4096], root[3072];
    if (!realpath(arg, abs)) return xv_error(XV_ERR_IO, "%s: %s", arg, strerror(errno));
    XV_TRY(cache_root(root, sizeof root));
    int w = snprintf(dir, n, "%s/%016llx", root, (unsigned long long)source_key(abs, &st, opts));
    if (w < 0 || (size_t)w >= n) return xv_error(XV_ERR_INVALID_ARG, "cache folder path too long");
    char cfg[4200], weights[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
    struct stat cs;
    if (stat(cfg, &cs) == 0 && stat(weights, &cs) == 0) return XV_OK; /* converted before */
    char *made = xv_fs_first_missing(dir); /* the cache root too, on a first use */
    xv_status s = xv_fs_mkdir_p(dir);
    if (s != XV_OK) {
        xv_fs_rmdir_up(dir, made);
        free(made);
        return s;
    }
    fprintf(stderr, "xvlm: converting %s once into %s (run `xvlm convert` yourself to choose the folder)\n", arg,
            dir);
    /* weights first, config last: the config's presence marks a finished conversion */
    s = xv_convert_torch(arg, weights, cfg, opts, NULL, NULL);
    if (s != XV_OK) {
        /* Leave no half-made entry behind, nor the folders made for it. */
        unlink(weights);
        unlink(cfg);
        xv_fs_rmdir_up(dir, made);
    }
    free(made);
    if (s != XV_OK)
        return xv_error_wrap(s,
                             "%s: cannot convert the checkpoint (if its configuration cannot be inferred, give the "
                             "image resolution and BERT heads: --image-res / --text-heads, xvlm_model_params.image_res "
                             "/ .text_heads; or run `xvlm convert` and edit the config.json it writes)",
                             arg);
    return XV_OK;
}

static bool is_folder(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

xv_status xv_model_locate(const char *arg, const xv_infer_opts *opts, xv_model_config *cfg, char *weights, size_t n) {
    if (arg && xv_model_is_single_file(arg)) {
        if (snprintf(weights, n, "%s", arg) >= (int)n) return xv_error(XV_ERR_INVALID_ARG, "model path too long");
        return xv_model_single_config(arg, cfg);
    }
    char dir[4096];
    XV_TRY(xv_model_resolve(arg, opts, dir, sizeof dir));
    return xv_model_dir_config(dir, cfg, weights, n);
}

xv_status xv_config_rescale(xv_model_config *mc, int image_res) {
    const int from = mc->vision.image_res, to = image_res, w = mc->vision.window;
    if (!to || to == from) return XV_OK;
    if ((int64_t)w * to % from)
        return xv_error(XV_ERR_INVALID_ARG,
                        "image_res %d: the model's window %d at %d px does not scale to a whole window at %d px", to, w,
                        from, to);
    if (mc->vision.ape)
        return xv_error(XV_ERR_INVALID_ARG,
                        "image_res %d differs from the model's %d, and its absolute position embedding (vision ape) "
                        "is made for %d px",
                        to, from, from);
    mc->vision.image_res = to;
    mc->vision.window = (int)((int64_t)w * to / from);
    xv_status st = xv_config_validate(mc);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "image_res %d", to);
}

xv_status xv_model_open(const char *arg, const xv_infer_opts *opts, bool copy, xv_model **out) {
    *out = NULL;
    xv_model_config cfg;
    char weights[4200];
    XV_TRY(xv_model_locate(arg, opts, &cfg, weights, sizeof weights));
    xv_status st = xv_model_load(&cfg, weights, copy, out);
    if (st != XV_OK && !is_folder(arg) && !xv_model_is_single_file(arg))
        xv_error_wrap(st, "%s: converted, but the inferred configuration does not load (give --image-res / "
                          "--text-heads, or run `xvlm convert` and edit config.json)", arg);
    return st;
}
