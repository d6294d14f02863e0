/* Internal to the pretraining loader: one JSON record -> one sample (image +
 * texts), and the region batch collate. Used by the worker threads of
 * pretrain_loader.c; everything here is single-threaded per context. */
#ifndef XV_DATA_PRETRAIN_SAMPLE_H
#define XV_DATA_PRETRAIN_SAMPLE_H

#include <cjson/cJSON.h>

#include "core/rng.h"
#include "data/image.h"
#include "data/jsonl.h"
#include "data/masking.h"
#include "data/pretrain_data.h"
#include "data/tokenizer.h"

/* Read-only state shared by all workers of a loader. */
typedef struct {
    xv_pretrain_config cfg; /* strings owned by the loader; cfg.masking with the vocabulary's ids set */
    const xv_tokenizer *tok;
    xv_special_ids special;
    int n_patch; /* image_res / patch_size */
} xv_sample_shared;

/* One worker's view. */
typedef struct {
    const xv_sample_shared *sh;
    xv_rng *rng;
    xv_pretrain_counters *count;
    int *warn_budget;
    const char *label; /* "images worker 0" */
    xv_ids scratch;    /* token ids of one text */
} xv_sampler;

typedef enum { XV_SAMPLE_OK, XV_SAMPLE_SKIP, XV_SAMPLE_FATAL } xv_sample_result;

/* The five text arrays of one row (lengths text_len and max_masks). */
typedef struct {
    int32_t *ids, *atts, *ids_masked, *masked_pos, *masked_ids;
} xv_text_row;

/* preprocess() of the official dataset: clean (or split when tokenized),
 * tokenize, [CLS] + tokens[:max_tokens-1], mask, pad. SKIP (reason in *why)
 * when nothing is left of the text. */
xv_sample_result xv_sample_encode_text(xv_sampler *c, const char *text, xv_text_row row, const char **why);

/* A caption value: a string, or a uniform choice from a non-empty list of
 * strings. NULL (and no draw) for anything else. */
const char *xv_sample_pick_string(xv_sampler *c, const cJSON *v);

/* Decode the record's image (path under image_root, or base64). SKIP is
 * warned about and counted (missing_image / corrupt_image). */
xv_sample_result xv_sample_load_image(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, xv_image *out);

/* An image-text record -> image [3,R,R] and one text row. */
xv_sample_result xv_sample_image_text(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, float *image,
                                      xv_text_row row);

/* Texts of one region record, at most max_regions. */
typedef struct {
    xv_text_row *rows;  /* [max_regions] */
    int32_t *image_atts; /* [max_regions, 1 + n_patch²] */
    float *target;       /* [max_regions, 4] */
    int32_t *is_image;   /* [max_regions] */
    int n;               /* texts made */
} xv_region_texts;

/* A region record -> image [3,R,R] and its texts (out->n >= 1 on OK). */
xv_sample_result xv_sample_region(xv_sampler *c, const cJSON *rec, const xv_jsonl_where *w, float *image,
                                  xv_region_texts *out);

/* image_atts of a box (x, y, w, h in pixels of the R x R image), §2.11. */
void xv_region_image_atts(double x, double y, double w, double h, int patch_size, int n_patch, int32_t *atts);

/* The collate's choice of texts (official RegionTextJsonDataset.collate_fn):
 * keep[batch_size] indices into n >= 1 texts. Returns how many entries repeat
 * an earlier one (padding); n > batch_size leaves n - batch_size out. */
int xv_region_choose_texts(xv_rng *rng, int n, int batch_size, int32_t *keep);

#endif
