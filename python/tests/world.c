/* What the Python tests compare the bindings with, made by C:
 *
 *   xv_python_world world DIR     a tiny random X-VLM in DIR/model (with
 *       vocab.txt), test images DIR/images/photoK.jpg and, beside each, the
 *       pixels it decodes to as DIR/images/photoK.ppm (the same image as an
 *       array for the bindings), and DIR/layout.json: the size and field
 *       offsets of every public struct the bindings declare with ctypes;
 *   xv_python_world embed MODEL OUT.json IMAGE... -- TEXT...
 *       the normalised ITC features of the images and texts through the
 *       public C API (xvlm.h), as JSON {"images": [[...]], "texts": [[...]]}.
 *
 * Exit status 0 ok, 1 error (printed), 2 usage. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/image.h"
#include "testutil.h"
#include "xvlm.h"

#define N_IMAGES 4
static const int SIZES[N_IMAGES][2] = {{40, 30}, {50, 37}, {64, 64}, {33, 45}};

static bool write_ppm(const char *path, const xv_image *im) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    fprintf(f, "P6\n%d %d\n255\n", im->width, im->height);
    size_t n = (size_t)im->width * (size_t)im->height * 3;
    bool ok = fwrite(im->rgb, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* One struct of xvlm.h: its size, then "field": offset pairs. */
#define FIELD(T, f) fprintf(out, ", \"" #f "\": %zu", offsetof(T, f))
#define STRUCT(T, ...)                                                                 \
    do {                                                                               \
        fprintf(out, "%s\"" #T "\": {\"sizeof\": %zu", first ? "" : ",\n ", sizeof(T)); \
        __VA_ARGS__;                                                                   \
        fputs("}", out);                                                               \
        first = false;                                                                 \
    } while (0)

static bool write_layout(const char *path) {
    FILE *out = fopen(path, "w");
    if (!out) return false;
    bool first = true;
    fputs("{", out);
    STRUCT(xvlm_model_params, FIELD(xvlm_model_params, vocab_path); FIELD(xvlm_model_params, image_res);
           FIELD(xvlm_model_params, text_heads); FIELD(xvlm_model_params, copy_weights);
           FIELD(xvlm_model_params, precision));
    STRUCT(xvlm_model_info, FIELD(xvlm_model_info, image_res); FIELD(xvlm_model_info, embed_dim);
           FIELD(xvlm_model_info, image_tokens); FIELD(xvlm_model_info, vision_width);
           FIELD(xvlm_model_info, max_positions); FIELD(xvlm_model_info, has_itc); FIELD(xvlm_model_info, has_itm);
           FIELD(xvlm_model_info, has_bbox); FIELD(xvlm_model_info, has_nlvr); FIELD(xvlm_model_info, text_layers);
           FIELD(xvlm_model_info, fusion_layer); FIELD(xvlm_model_info, map_side); FIELD(xvlm_model_info, id));
    STRUCT(xvlm_image_params, FIELD(xvlm_image_params, keep_tokens); FIELD(xvlm_image_params, batch));
    STRUCT(xvlm_rgb, FIELD(xvlm_rgb, rgb); FIELD(xvlm_rgb, width); FIELD(xvlm_rgb, height); FIELD(xvlm_rgb, stride));
    STRUCT(xvlm_text_params, FIELD(xvlm_text_params, max_words); FIELD(xvlm_text_params, max_tokens));
    STRUCT(xvlm_pair, FIELD(xvlm_pair, image); FIELD(xvlm_pair, text));
    STRUCT(xvlm_box, FIELD(xvlm_box, cx); FIELD(xvlm_box, cy); FIELD(xvlm_box, w); FIELD(xvlm_box, h);
           FIELD(xvlm_box, x); FIELD(xvlm_box, y); FIELD(xvlm_box, width); FIELD(xvlm_box, height));
    STRUCT(xvlm_search_params, FIELD(xvlm_search_params, k); FIELD(xvlm_search_params, rerank));
    STRUCT(xvlm_hit, FIELD(xvlm_hit, index); FIELD(xvlm_hit, score); FIELD(xvlm_hit, itc);
           FIELD(xvlm_hit, itm_logit); FIELD(xvlm_hit, itm_prob); FIELD(xvlm_hit, reranked));
    STRUCT(xvlm_index_params, FIELD(xvlm_index_params, batch); FIELD(xvlm_index_params, tokens);
           FIELD(xvlm_index_params, progress); FIELD(xvlm_index_params, warn); FIELD(xvlm_index_params, user);
           FIELD(xvlm_index_params, stop));
    STRUCT(xvlm_index_stats, FIELD(xvlm_index_stats, total); FIELD(xvlm_index_stats, encoded);
           FIELD(xvlm_index_stats, reused); FIELD(xvlm_index_stats, skipped); FIELD(xvlm_index_stats, indexed));
    fputs("}\n", out);
    return fclose(out) == 0;
}

static int make_world(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return perror(dir), 1;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return perror(path), 1;
    if (!xv_test_tiny_model_dir(path, 11, true)) return 1;
    snprintf(path, sizeof path, "%s/images", dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return perror(path), 1;
    for (int k = 0; k < N_IMAGES; k++) {
        snprintf(path, sizeof path, "%s/images/photo%d.jpg", dir, k);
        xv_image im;
        if (!xv_test_tiny_image(path, SIZES[k][0], SIZES[k][1], k + 2) || xv_image_load(path, &im) != XV_OK) {
            fprintf(stderr, "%s: %s\n", path, xv_error_message());
            return 1;
        }
        snprintf(path, sizeof path, "%s/images/photo%d.ppm", dir, k);
        bool ok = write_ppm(path, &im);
        xv_image_free(&im);
        if (!ok) return perror(path), 1;
    }
    snprintf(path, sizeof path, "%s/layout.json", dir);
    if (!write_layout(path)) return perror(path), 1;
    return 0;
}

static void write_rows(FILE *f, const float *x, int64_t n, int d) {
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        fputs(i ? ", [" : "[", f);
        for (int j = 0; j < d; j++) fprintf(f, "%s%.9g", j ? ", " : "", x[i * d + j]);
        fputc(']', f);
    }
    fputc(']', f);
}

static int embed(const char *model_path, const char *out, const char *const *images, int ni,
                 const char *const *texts, int nt) {
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_status st = xvlm_model_load(model_path, NULL, &m);
    if (st == XVLM_OK) st = xvlm_ctx_new(m, &ctx);
    if (st == XVLM_OK) st = xvlm_encode_image_files(ctx, images, ni, NULL, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, texts, nt, NULL, &tx);
    FILE *f = st == XVLM_OK ? fopen(out, "w") : NULL;
    if (f) {
        xvlm_model_info info;
        xvlm_model_get_info(m, &info);
        fputs("{\"images\": ", f);
        write_rows(f, xvlm_images_features(im), ni, info.embed_dim);
        fputs(", \"texts\": ", f);
        write_rows(f, xvlm_texts_features(tx), nt, info.embed_dim);
        fputs("}\n", f);
        if (fclose(f) != 0) f = NULL;
    }
    if (st != XVLM_OK) fprintf(stderr, "xv_python_world embed: %s\n", xvlm_last_error());
    else if (!f) perror(out);
    xvlm_texts_free(tx);
    xvlm_images_free(im);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XVLM_OK && f ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "world")) return make_world(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "embed")) {
        int sep = 4;
        while (sep < argc && strcmp(argv[sep], "--")) sep++;
        if (sep > 4 && sep < argc - 1)
            return embed(argv[2], argv[3], (const char *const *)argv + 4, sep - 4, (const char *const *)argv + sep + 1,
                         argc - sep - 1);
    }
    fprintf(stderr, "usage: xv_python_world world DIR\n"
                    "       xv_python_world embed MODEL OUT.json IMAGE... -- TEXT...\n");
    return 2;
}
