#include "model_opts.h"


xv_cli_model_opts xv_cli_model_opts_default(void) {
    return (xv_cli_model_opts){.model = NULL, .params = xvlm_model_params_default(), .threads = 0};
}

int xv_cli_open_model(const char *cmd, const xv_cli_model_opts *o, xvlm_model **m, xvlm_ctx **ctx) {
    xvlm_set_threads(o->threads);
    *m = NULL;
    *ctx = NULL;
    if (xvlm_model_load(o->model, &o->params, m) != XVLM_OK || xvlm_ctx_new(*m, ctx) != XVLM_OK) {
        fprintf(stderr, "xvlm %s: %s\n", cmd, xvlm_last_error());
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
