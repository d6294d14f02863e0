/* The one way a command opens the model named by --model: the options that
 * describe it (defined once, as option-table entries) and the helpers that
 * load it. A folder or an official checkpoint both go through
 * model/model_source.h (one conversion policy, one cache). */
#ifndef XV_CLI_MODEL_OPTS_H
#define XV_CLI_MODEL_OPTS_H

#include <stdio.h>

#include "options.h"
#include "xvlm.h"

typedef struct {
    const char *model;
    xvlm_model_params params; /* precision: read from .precision by xv_cli_model_params */
    int threads;
    const char *precision; /* "fp32" or "bf16" */
} xv_cli_model_opts;

xv_cli_model_opts xv_cli_model_opts_default(void);

/* o->params with the --precision given. */
xvlm_model_params xv_cli_model_params(const xv_cli_model_opts *o);

extern const char *const xv_cli_precisions[]; /* "fp32", "bf16", NULL */

/* --model, --image-res, --text-heads, --threads, --precision: option-table entries. */
#define XV_OPT_MODEL(mo)                                                                                            \
    {.name = "--model", .short_name = 'm', .kind = XV_OPT_STRING, .dest = &(mo)->model, .value = "M",              \
     .help = "model folder (config.json, weights.safetensors, vocab.txt), a single-file\n"                      \
             ".safetensors model, or an official PyTorch checkpoint (.th/.pth, converted\n"                        \
             "once into a cache)",                                                                                  \
     .required = true},                                                                                             \
    XV_OPT_IMAGE_RES(&(mo)->params.image_res), XV_OPT_TEXT_HEADS(&(mo)->params.text_heads),                   \
    XV_OPT_THREADS(&(mo)->threads),                                                                             \
    {.name = "--precision", .kind = XV_OPT_CHOICE, .dest = &(mo)->precision, .value = "P",                   \
     .choices = xv_cli_precisions,                                                                              \
     .help = "of the Linear products: fp32, or bf16 (weights and inputs rounded to bfloat16,\n"                \
             "sums in fp32; needs AVX512-BF16 or AMX: docs/performance.md)"}

/* XV_OPT_MODEL and --vocab: the options of the commands that use the public API. */
#define XV_CLI_MODEL_OPTIONS(mo)                                                                              \
    XV_OPT_MODEL(mo), XV_OPT_VOCAB(&(mo)->params.vocab_path,                                                  \
                                   "vocabulary (default vocab.txt in the model folder or beside the checkpoint)", \
                                   false)

/* One image and the texts to read against it (ground, match). */
typedef struct {
    const char *image;
    xv_opt_list texts; /* xv_opt_list_free */
} xv_cli_image_texts;

/* --image (required) and --text (repeatable): option-table entries. */
#define XV_OPT_IMAGE_TEXTS(it, text_help)                                                                      \
    {.name = "--image", .kind = XV_OPT_STRING, .dest = &(it)->image, .value = "I", .help = "the image",      \
     .required = true},                                                                                      \
    {.name = "--text", .kind = XV_OPT_STRINGS, .dest = &(it)->texts, .value = "T", .help = (text_help)}

/* At least one --text (else a usage error, returns 2), then the model as
 * xv_cli_open_model (returns 1 on failure). Returns 0 when both are there;
 * on failure the text list is freed. */
int xv_cli_open_model_for_texts(const char *cmd, const xv_cli_model_opts *o, xv_cli_image_texts *it,
                                xvlm_model **m, xvlm_ctx **ctx);

/* The image, its texts and the pairs (image 0, text i) for each text. */
typedef struct {
    xvlm_images *im;
    xvlm_texts *tx;
    xvlm_pair *pairs;
} xv_cli_encoded;

/* Encodes the image and every text (texts with tp, NULL: the defaults).
 * Prints nothing; xv_cli_encoded_free also after a failure. */
xvlm_status xv_cli_encode_image_texts(xvlm_ctx *ctx, const xv_cli_image_texts *it, const xvlm_text_params *tp,
                                      xv_cli_encoded *e);

/* Frees the encodings and the --text list. */
void xv_cli_encoded_free(xv_cli_encoded *e, xv_cli_image_texts *it);

/* Set the threads, load the model and open a context; prints the error and
 * returns 1 on failure, 0 on success. */
int xv_cli_open_model(const char *cmd, const xv_cli_model_opts *o, xvlm_model **m, xvlm_ctx **ctx);

/* The start of the JSON object of a command on one image: {"model": id (when
 * id is not NULL), "image", "width", "height", "results": [ */
void xv_cli_json_image_start(const char *model_id, const char *image, int width, int height);

/* A JSON string literal (UTF-8 passes through). */
void xv_cli_json_string(FILE *f, const char *s);

#endif
