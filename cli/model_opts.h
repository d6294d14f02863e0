/* Options and output helpers shared by the commands that use a model through
 * the public API (index, search, match, ground). */
#ifndef XV_CLI_MODEL_OPTS_H
#define XV_CLI_MODEL_OPTS_H

#include <stdio.h>

#include "api/api_internal.h"

typedef struct {
    const char *model;
    xvlm_model_params params;
    int threads;
} xv_cli_model_opts;

void xv_cli_model_opts_init(xv_cli_model_opts *o);

/* The help text of the options below. */
#define XV_CLI_MODEL_HELP                                                                         \
    "  --model M       model folder (config.json, weights.safetensors, vocab.txt) or an official\n" \
    "                  PyTorch checkpoint (.th/.pth, converted on the fly)\n"                        \
    "  --vocab FILE    vocabulary (default: vocab.txt in the model folder / beside the checkpoint)\n" \
    "  --image-res R   checkpoint only: input resolution if it cannot be inferred\n"                 \
    "  --text-heads N  checkpoint only: BERT attention heads (default hidden/64)\n"                  \
    "  --threads N     threads (default: all cores)\n"

/* If argv[*i] is one of the options above, consume it (and its value) and
 * return 1; 0 if it is not; -1 after printing a usage error. */
int xv_cli_model_option(const char *cmd, int argc, char **argv, int *i, xv_cli_model_opts *o);

/* Parse an integer option value in [lo, hi]; prints a usage error and
 * returns 0 when it is not one. */
int xv_cli_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out);

/* Set the threads, load the model and open a context; prints the error and
 * returns 1 on failure, 0 on success. */
int xv_cli_open_model(const char *cmd, const xv_cli_model_opts *o, xvlm_model **m, xvlm_ctx **ctx);

/* A JSON string literal (UTF-8 passes through). */
void xv_cli_json_string(FILE *f, const char *s);

#endif
