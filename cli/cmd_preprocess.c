/* `xvlm preprocess`: images -> normalised [3,R,R] float32 tensors in one
 * safetensors file, exactly as the official test transform makes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "data/image.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "xvlm.h"

#define MAX_RES 4096

static void usage(FILE *f) {
    fprintf(f,
            "usage: xvlm preprocess --image-res R IMAGE... --out FILE.safetensors\n\n"
            "Decodes each JPEG/PNG like PIL's convert('RGB'), resizes it to R x R with PIL's\n"
            "bicubic filter and normalises it with CLIP's mean/std (the official test\n"
            "transform). Writes one float32 tensor [3,R,R] per image, named by the image's\n"
            "file name without its directories (names must be unique).\n");
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int xv_cmd_preprocess(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *out = NULL;
    long res = 0;
    const char **images = calloc((size_t)argc, sizeof(char *));
    int n = 0;
    if (!images) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--image-res") && i + 1 < argc) {
            char *end;
            res = strtol(argv[++i], &end, 10);
            if (*end || res <= 0 || res > MAX_RES) {
                fprintf(stderr, "xvlm preprocess: --image-res must be an integer in 1..%d, got '%s'\n", MAX_RES, argv[i]);
                free(images);
                return 2;
            }
        } else if (!strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "xvlm preprocess: unknown or incomplete option '%s'\n\n", argv[i]);
            usage(stderr);
            free(images);
            return 2;
        } else {
            images[n++] = argv[i];
        }
    }
    if (!out || !res || n == 0) {
        fprintf(stderr, "xvlm preprocess: needs --image-res, --out and at least one image\n\n");
        usage(stderr);
        free(images);
        return 2;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(base_name(images[i]), base_name(images[j]))) {
                fprintf(stderr, "xvlm preprocess: '%s' and '%s' would both be stored as '%s'\n", images[j], images[i],
                        base_name(images[i]));
                free(images);
                return 2;
            }

    xv_st_writer *w = NULL;
    float *tensor = malloc(sizeof(float) * 3 * (size_t)res * (size_t)res);
    xv_status s = tensor ? xv_st_writer_new(&w) : xv_error(XV_ERR_NOMEM, "out of memory");
    char res_text[32];
    snprintf(res_text, sizeof res_text, "%ld", res);
    if (s == XV_OK) s = xv_st_writer_meta(w, "image_res", res_text);
    if (s == XV_OK)
        s = xv_st_writer_meta(w, "transform",
                              "PIL convert('RGB'), PIL bicubic resize to (R,R), (u8/255 - mean) / std with "
                              "mean (0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711)");
    const int64_t shape[3] = {3, res, res};
    for (int i = 0; i < n && s == XV_OK; i++) {
        xv_image im;
        s = xv_image_load(images[i], &im);
        if (s != XV_OK) break;
        s = xv_transform_test(&im, (int)res, tensor);
        xv_image_free(&im);
        if (s == XV_OK) s = xv_st_writer_add(w, base_name(images[i]), XV_ST_F32, shape, 3, tensor, false);
    }
    if (s == XV_OK) s = xv_st_writer_write(w, out);
    xv_st_writer_free(w);
    free(tensor);
    free(images);
    if (s != XV_OK) {
        fprintf(stderr, "xvlm preprocess: %s\n", xv_error_message());
        return 1;
    }
    printf("wrote %d image%s at %ldx%ld to %s\n", n, n == 1 ? "" : "s", res, res, out);
    return 0;
}
