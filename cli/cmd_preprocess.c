/* `xvlm preprocess`: images -> normalised [3,R,R] float32 tensors in one
 * safetensors file, exactly as the official test transform makes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "data/image.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "train/stop_signal.h"
#include "xvlm.h"

#define MAX_RES 4096

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int xv_cmd_preprocess(int argc, char **argv) {
    const char *out = NULL;
    int res = 0;
    xv_opt_list image_list = {0};
    const xv_opt opts[] = {
        {.name = "--image-res", .kind = XV_OPT_INT, .dest = &res, .value = "R", .lo = 1, .hi = MAX_RES,
         .help = "the side R of the resized images", .required = true},
        XV_OPT_OUT(&out, "FILE.safetensors", "the tensors", true),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "preprocess",
        .usage = "xvlm preprocess --image-res R IMAGE... --out FILE.safetensors",
        .about = "Decodes each JPEG/PNG like PIL's convert('RGB'), resizes it to R x R with PIL's\n"
                 "bicubic filter and normalises it with CLIP's mean/std (the official test\n"
                 "transform). Writes one float32 tensor [3,R,R] per image, named by the image's\n"
                 "file name without its directories (names must be unique).\n",
        .opts = opts,
        .footer = "SIGINT / SIGTERM stop it between images, writing nothing. Exit status: 0 ok,\n"
                  "1 runtime error, 2 usage, 130 / 143 interrupted.\n",
        .positional = &image_list,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char **images = image_list.items;
    const int n = image_list.n;
    if (n == 0) return xv_cli_usage_error("preprocess", "give at least one image");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(base_name(images[i]), base_name(images[j]))) {
                xv_cli_usage_error("preprocess", "'%s' and '%s' would both be stored as '%s'", images[j], images[i],
                                   base_name(images[i]));
                free(images);
                return 2;
            }

    xv_st_writer *w = NULL;
    float *tensor = malloc(sizeof(float) * 3 * (size_t)res * (size_t)res);
    xv_status s = tensor ? xv_st_writer_new(&w) : xv_error(XV_ERR_NOMEM, "out of memory");
    char res_text[32];
    snprintf(res_text, sizeof res_text, "%d", res);
    if (s == XV_OK) s = xv_st_writer_meta(w, "image_res", res_text);
    if (s == XV_OK)
        s = xv_st_writer_meta(w, "transform",
                              "PIL convert('RGB'), PIL bicubic resize to (R,R), (u8/255 - mean) / std with "
                              "mean (0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711)");
    const int64_t shape[3] = {3, res, res};
    xv_stop_guard guard; /* SIGINT / SIGTERM: stop between images, writing nothing */
    xv_stop_guard_begin(&guard);
    for (int i = 0; i < n && s == XV_OK; i++) {
        if (xv_stop_requested()) {
            s = xv_error(XV_ERR_INTERRUPTED, "interrupted by %s after %d of %d images: %s not written",
                         xv_stop_signal_name(xv_stop_requested()), i, n, out);
            break;
        }
        xv_image im;
        s = xv_image_load(images[i], &im);
        if (s != XV_OK) break;
        s = xv_transform_test(&im, (int)res, tensor);
        xv_image_free(&im);
        if (s == XV_OK) s = xv_st_writer_add(w, base_name(images[i]), XV_ST_F32, shape, 3, tensor, false);
    }
    if (s == XV_OK) s = xv_st_writer_write(w, out); /* atomic: a signal now waits for it */
    const int stopped_by = s == XV_ERR_INTERRUPTED ? xv_stop_requested() : 0;
    xv_stop_guard_end(&guard);
    xv_st_writer_free(w);
    free(tensor);
    free(images);
    if (s != XV_OK) {
        fprintf(stderr, "xvlm preprocess: %s\n", xv_error_message());
        return stopped_by ? xv_stop_exit_status(stopped_by) : 1;
    }
    printf("wrote %d image%s at %dx%d to %s\n", n, n == 1 ? "" : "s", res, res, out);
    return 0;
}
