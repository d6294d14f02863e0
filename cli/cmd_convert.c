/* `xvlm convert`: official PyTorch checkpoint -> safetensors + config.json. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "options.h"
#include "core/error.h"
#include "io/convert_torch.h"
#include "io/torch_ckpt.h"

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
    xv_infer_opts o = {0};
    bool listing = false;
    xv_opt_list pos = {0};
    const xv_opt opts[] = {
        XV_OPT_IMAGE_RES(&o.image_res),
        {.name = "--window", .kind = XV_OPT_INT, .dest = &o.window, .value = "W", .lo = 1, .hi = 1024,
         .unset = "7/12/15 for 224/384/480",
         .help = "target Swin window; relative-position tables are interpolated as\nthe official loader does"},
        XV_OPT_TEXT_HEADS(&o.text_heads),
        {.name = "--list", .kind = XV_OPT_FLAG, .dest = &listing, .help = "print every tensor: name, dtype, shape"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "convert",
        .usage = "xvlm convert IN.th OUT [--image-res N] [--window W] [--text-heads H]\n"
                 "       xvlm convert --list IN.th",
        .about = "Converts an official X-VLM PyTorch checkpoint (torch.save of {'model': state_dict,\n"
                 "'config': ...} or a bare state_dict, torch >= 1.6) without Python. Nothing in the\n"
                 "file is executed: only tensors and plain values are read. OUT is a directory\n"
                 "(created if needed) that receives weights.safetensors and config.json, or a file\n"
                 "name ending in .safetensors (the config then lives in its metadata only).\n",
        .opts = opts,
        .footer = "Official key names and both text layouts are kept; the buffers\n"
                  "relative_position_index, attn_mask and position_ids are dropped.\n",
        .positional = &pos,
        .max_positional = 2,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char *in = pos.n > 0 ? pos.items[0] : NULL, *out = pos.n > 1 ? pos.items[1] : NULL;
    const int npos = pos.n;
    xv_opt_list_free(&pos);
    if (listing) {
        if (npos != 1) return xv_cli_usage_error("convert", "--list takes one checkpoint (and no OUT)");
        return list(in);
    }
    if (npos != 2) return xv_cli_usage_error("convert", "give the checkpoint IN.th and the output OUT");
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
    if (xv_convert_torch(in, weights, config_path, &o, &st) != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        return 1;
    }
    printf("%s: %d tensors (%zu bytes), %d buffers dropped, %d relative-position tables interpolated\n", weights,
           st.written, st.bytes, st.dropped, st.interpolated);
    if (config_path) printf("%s\n", config_path);
    return 0;
}
