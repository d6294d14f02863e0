/* `xvlm convert`: official PyTorch checkpoint -> safetensors + config.json. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "core/error.h"
#include "io/convert_torch.h"
#include "io/torch_ckpt.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: xvlm convert IN.th OUT [--image-res N] [--window W] [--text-heads H]\n"
            "       xvlm convert --list IN.th\n\n"
            "Converts an official X-VLM PyTorch checkpoint (torch.save of {'model': state_dict,\n"
            "'config': ...} or a bare state_dict, torch >= 1.6) without Python. Nothing in the\n"
            "file is executed: only tensors and plain values are read.\n\n"
            "  OUT            a directory (created if needed) that receives weights.safetensors\n"
            "                 and config.json, or a file name ending in .safetensors (the config\n"
            "                 then lives in its metadata only)\n"
            "  --image-res N  target image resolution (default: the checkpoint's own)\n"
            "  --window W     target Swin window (default: 7/12/15 for 224/384/480); relative-\n"
            "                 position tables are interpolated as the official loader does\n"
            "  --text-heads H BERT attention heads (default: hidden size / 64)\n"
            "  --list         print every tensor: name, dtype, shape\n\n"
            "Official key names and both text layouts are kept; the buffers\n"
            "relative_position_index, attn_mask and position_ids are dropped.\n");
}

static int parse_int(const char *opt, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < 1 || v > 100000) {
        fprintf(stderr, "xvlm convert: %s needs a positive integer\n", opt);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int list(const char *path) {
    xv_tc_file *f;
    if (xv_tc_open(path, &f) != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        return 1;
    }
    size_t bytes = 0;
    for (int i = 0; i < xv_tc_count(f); i++) {
        const xv_tc_tensor *t = xv_tc_at(f, i);
        printf("%s\t%s\t[", t->name, xv_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]%s%s\n", t->contiguous ? "" : "\tnon-contiguous", xv_convert_drops(t->name) ? "\tdropped by convert" : "");
        bytes += t->nbytes;
    }
    const cJSON *cfg = xv_tc_config(f);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(cfg, "image_res");
    printf("%d tensors, %zu bytes; checkpoint config: %s", xv_tc_count(f), bytes, cfg ? "yes" : "none");
    if (cJSON_IsNumber(res)) printf(" (image_res %d)", res->valueint);
    printf("\n");
    xv_tc_close(f);
    return 0;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

int xv_cmd_convert(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    xv_infer_opts o = {0};
    const char *pos[2] = {NULL, NULL};
    int npos = 0, listing = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--list")) listing = 1;
        else if (!strcmp(a, "--image-res")) {
            if (!parse_int(a, i + 1 < argc ? argv[++i] : NULL, &o.image_res)) return 2;
        } else if (!strcmp(a, "--window")) {
            if (!parse_int(a, i + 1 < argc ? argv[++i] : NULL, &o.window)) return 2;
        } else if (!strcmp(a, "--text-heads")) {
            if (!parse_int(a, i + 1 < argc ? argv[++i] : NULL, &o.text_heads)) return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xvlm convert: unknown option %s\n\n", a);
            usage(stderr);
            return 2;
        } else if (npos < 2) pos[npos++] = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (listing) {
        if (npos != 1) {
            usage(stderr);
            return 2;
        }
        return list(pos[0]);
    }
    if (npos != 2) {
        usage(stderr);
        return 2;
    }
    const char *out = pos[1];
    char weights[PATH_MAX], config[PATH_MAX];
    const char *config_path = NULL;
    if (ends_with(out, ".safetensors")) {
        snprintf(weights, sizeof weights, "%s", out);
    } else {
        if (mkdir(out, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "xvlm convert: cannot create directory %s: %s\n", out, strerror(errno));
            return 1;
        }
        if ((size_t)snprintf(weights, sizeof weights, "%s/weights.safetensors", out) >= sizeof weights ||
            (size_t)snprintf(config, sizeof config, "%s/config.json", out) >= sizeof config) {
            fprintf(stderr, "xvlm convert: output path too long\n");
            return 2;
        }
        config_path = config;
    }
    xv_convert_stats st;
    if (xv_convert_torch(pos[0], weights, config_path, &o, &st) != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        return 1;
    }
    printf("%s: %d tensors (%zu bytes), %d buffers dropped, %d relative-position tables interpolated\n", weights,
           st.written, st.bytes, st.dropped, st.interpolated);
    if (config_path) printf("%s\n", config_path);
    return 0;
}
