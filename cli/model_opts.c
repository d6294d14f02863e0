#include "model_opts.h"

#include <stdlib.h>
#include <string.h>

void xv_cli_model_opts_init(xv_cli_model_opts *o) {
    o->model = NULL;
    o->params = xvlm_model_params_default();
    o->threads = 0;
}

int xv_cli_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out) {
    char *end;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || !*val || *end || v < lo || v > hi) {
        fprintf(stderr, "xvlm %s: %s expects an integer in %ld..%ld, got '%s'\n", cmd, opt, lo, hi,
                val ? val : "(nothing)");
        return 0;
    }
    *out = (int)v;
    return 1;
}

int xv_cli_model_option(const char *cmd, int argc, char **argv, int *i, xv_cli_model_opts *o) {
    const char *a = argv[*i];
    static const char *const opts[] = {"--model", "--vocab", "--image-res", "--text-heads", "--threads"};
    int which = -1;
    for (int k = 0; k < 5; k++)
        if (!strcmp(a, opts[k])) which = k;
    if (which < 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "xvlm %s: %s needs a value\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    switch (which) {
    case 0: o->model = v; return 1;
    case 1: o->params.vocab_path = v; return 1;
    case 2: return xv_cli_int(cmd, a, v, 32, 8192, &o->params.image_res) ? 1 : -1;
    case 3: return xv_cli_int(cmd, a, v, 1, 1024, &o->params.text_heads) ? 1 : -1;
    default: return xv_cli_int(cmd, a, v, 0, 4096, &o->threads) ? 1 : -1;
    }
}

int xv_cli_open_model(const char *cmd, const xv_cli_model_opts *o, xvlm_model **m, xvlm_ctx **ctx) {
    xvlm_set_threads(o->threads);
    *m = NULL;
    *ctx = NULL;
    if (xv_api_model_load(o->model, &o->params, m) != XV_OK || xv_api_ctx_new(*m, ctx) != XV_OK) {
        fprintf(stderr, "xvlm %s: %s\n", cmd, xv_error_message());
        xvlm_model_free(*m);
        *m = NULL;
        return 1;
    }
    return 0;
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
