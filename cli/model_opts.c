#include "model_opts.h"

#include <stdlib.h>
#include <string.h>


const char *const xv_cli_precisions[] = {"fp32", "bf16", NULL};

xv_cli_model_opts xv_cli_model_opts_default(void) {
    return (xv_cli_model_opts){.model = NULL, .params = xvlm_model_params_default(), .threads = 0, .precision = "fp32"};
}

xvlm_model_params xv_cli_model_params(const xv_cli_model_opts *o) {
    xvlm_model_params p = o->params;
    p.precision = o->precision && !strcmp(o->precision, "bf16") ? XVLM_BF16 : XVLM_FP32;
    return p;
}

int xv_cli_open_model(const char *cmd, const xv_cli_model_opts *o, xvlm_model **m, xvlm_ctx **ctx) {
    xvlm_set_threads(o->threads);
    *m = NULL;
    *ctx = NULL;
    xvlm_model_params params = xv_cli_model_params(o);
    if (xvlm_model_load(o->model, &params, m) != XVLM_OK || xvlm_ctx_new(*m, ctx) != XVLM_OK) {
        fprintf(stderr, "xvlm %s: %s\n", cmd, xvlm_last_error());
        xvlm_model_free(*m);
        *m = NULL;
        return 1;
    }
    return 0;
}

int xv_cli_open_model_for_texts(const char *cmd, const xv_cli_model_opts *o, xv_cli_image_texts *it,
                                xvlm_model **m, xvlm_ctx **ctx) {
    *m = NULL;
    *ctx = NULL;
    int rc = it->texts.n == 0 ? xv_cli_usage_error(cmd, "give at least one --text") : xv_cli_open_model(cmd, o, m, ctx);
    if (rc) xv_opt_list_free(&it->texts);
    return rc;
}

xvlm_status xv_cli_encode_image_texts(xvlm_ctx *ctx, const xv_cli_image_texts *it, const xvlm_text_params *tp,
                                      xv_cli_encoded *e) {
    *e = (xv_cli_encoded){.pairs = calloc((size_t)it->texts.n, sizeof *e->pairs)};
    if (!e->pairs) return XVLM_ERR_NOMEM;
    for (int i = 0; i < it->texts.n; i++) e->pairs[i] = (xvlm_pair){.image = 0, .text = i};
    xvlm_status st = xvlm_encode_image_files(ctx, &it->image, 1, NULL, &e->im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, it->texts.items, it->texts.n, tp, &e->tx);
    return st;
}

void xv_cli_encoded_free(xv_cli_encoded *e, xv_cli_image_texts *it) {
    xvlm_images_free(e->im);
    xvlm_texts_free(e->tx);
    free(e->pairs);
    *e = (xv_cli_encoded){0};
    xv_opt_list_free(&it->texts);
}

void xv_cli_json_image_start(const char *model_id, const char *image, int width, int height) {
    printf("{");
    if (model_id) printf("\"model\": \"%s\", ", model_id);
    printf("\"image\": ");
    xv_cli_json_string(stdout, image);
    printf(", \"width\": %d, \"height\": %d, \"results\": [", width, height);
}

void xv_cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
