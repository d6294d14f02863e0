/* xv_pretrain_batch_check: the one place a pretraining batch is validated
 * (model/pretrain.h). Sizes first, so the value scans never read outside an
 * array the sizes describe. */
#include <math.h>
#include <stdio.h>

#include "model/pretrain.h"

#define WHAT "pretrain batch: "

/* "[r][c]" of flat index i in a [rows, cols] array, or "[i]" when cols = 0 (1-D). */
static void entry(char *buf, size_t cap, int64_t i, int64_t cols) {
    if (cols > 0) snprintf(buf, cap, "[%lld][%lld]", (long long)(i / cols), (long long)(i % cols));
    else snprintf(buf, cap, "[%lld]", (long long)i);
}

/* Every value of field (n entries, rows of `cols`) in [lo, hi), or equal to
 * `pad` when pad_ok; `meaning` says what the range is. */
static xv_status check_values(const char *field, const int32_t *v, int64_t n, int64_t cols, int32_t lo, int32_t hi,
                              bool pad_ok, int32_t pad, const char *meaning) {
    for (int64_t i = 0; i < n; i++) {
        if ((v[i] >= lo && v[i] < hi) || (pad_ok && v[i] == pad)) continue;
        char at[48];
        entry(at, sizeof at, i, cols);
        return xv_error(XV_ERR_INVALID_ARG, WHAT "%s%s = %d outside [%d, %d) (%s)", field, at, v[i], lo, hi, meaning);
    }
    return XV_OK;
}

static xv_status check_mask(const char *field, const int32_t *v, int64_t n, int64_t cols) {
    return check_values(field, v, n, cols, 0, 2, false, 0, "a 0/1 mask");
}

static xv_status need(const char *field, const void *array) {
    return array ? XV_OK : xv_error(XV_ERR_INVALID_ARG, WHAT "%s is missing", field);
}

static xv_status check_sizes(const xv_model_config *cfg, const xv_pretrain_batch *b) {
    const struct {
        const char *name;
        int value;
    } counts[] = {{"n_images", b->n_images}, {"n_texts", b->n_texts}, {"text_len", b->text_len},
                  {"max_masks", b->max_masks}};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (counts[i].value < 1)
            return xv_error(XV_ERR_SHAPE, WHAT "%s = %d (expected >= 1)", counts[i].name, counts[i].value);
    if (b->res != cfg->vision.image_res)
        return xv_error(XV_ERR_SHAPE, WHAT "image res %d, but the model takes %d x %d images (image_res)", b->res,
                        cfg->vision.image_res, cfg->vision.image_res);
    if (b->text_len > cfg->text.max_positions)
        return xv_error(XV_ERR_SHAPE, WHAT "text_len %d exceeds the model's max_position_embeddings %d", b->text_len,
                        cfg->text.max_positions);
    if (!b->idx_to_group_img) {
        if (b->image_atts || b->target_bbox || b->is_image)
            return xv_error(XV_ERR_INVALID_ARG,
                            WHAT "image_atts, target_bbox and is_image belong to region batches: they need "
                                 "idx_to_group_img");
        if (b->n_images != b->n_texts)
            return xv_error(XV_ERR_SHAPE,
                            WHAT "%d images for %d texts: without idx_to_group_img a batch has one image per text",
                            b->n_images, b->n_texts);
    }
    const int n_atts = 1 + xv_config_num_patches(cfg);
    if (b->image_atts && b->n_atts != n_atts)
        return xv_error(XV_ERR_SHAPE, WHAT "image_atts rows have n_atts = %d entries, the model has %d image tokens",
                        b->n_atts, n_atts);
    XV_TRY(need("image", b->image));
    XV_TRY(need("text_ids", b->text_ids));
    XV_TRY(need("text_atts", b->text_atts));
    XV_TRY(need("text_ids_masked", b->text_ids_masked));
    XV_TRY(need("masked_pos", b->masked_pos));
    return need("masked_ids", b->masked_ids);
}

static xv_status check_text(const xv_model_config *cfg, const xv_pretrain_batch *b) {
    const int64_t BL = (int64_t)b->n_texts * b->text_len, BM = (int64_t)b->n_texts * b->max_masks;
    const int32_t V = cfg->text.vocab;
    XV_TRY(check_values("text_ids", b->text_ids, BL, b->text_len, 0, V, false, 0, "the vocabulary"));
    XV_TRY(check_mask("text_atts", b->text_atts, BL, b->text_len));
    XV_TRY(check_values("text_ids_masked", b->text_ids_masked, BL, b->text_len, 0, V, false, 0, "the vocabulary"));
    XV_TRY(check_values("masked_pos", b->masked_pos, BM, b->max_masks, 0, b->text_len, false, 0,
                        "a position in the text"));
    return check_values("masked_ids", b->masked_ids, BM, b->max_masks, 0, V, true, -100,
                        "a vocabulary id, or -100 for a padding slot");
}

static xv_status check_regions(const xv_pretrain_batch *b) {
    const int B = b->n_texts;
    if (b->idx_to_group_img)
        XV_TRY(check_values("idx_to_group_img", b->idx_to_group_img, B, 0, 0, b->n_images, false, 0,
                            "one of the batch's images"));
    if (b->image_atts) {
        XV_TRY(check_mask("image_atts", b->image_atts, (int64_t)B * b->n_atts, b->n_atts));
        for (int i = 0; i < B; i++) {
            const int32_t *row = b->image_atts + (int64_t)i * b->n_atts;
            int set = 0;
            for (int p = 1; p < b->n_atts; p++) set += row[p];
            if (!set)
                return xv_error(XV_ERR_INVALID_ARG,
                                WHAT "image_atts[%d] selects no patch (the region mean would be 0/0)", i);
        }
    }
    if (b->target_bbox)
        for (int64_t i = 0; i < (int64_t)B * 4; i++)
            if (!isfinite(b->target_bbox[i]))
                return xv_error(XV_ERR_INVALID_ARG, WHAT "target_bbox[%lld][%lld] = %g is not finite",
                                (long long)(i / 4), (long long)(i % 4), (double)b->target_bbox[i]);
    if (b->is_image) {
        XV_TRY(check_mask("is_image", b->is_image, B, 0));
        int whole = 0;
        for (int i = 0; i < B; i++) whole += b->is_image[i];
        if (b->target_bbox && whole == B)
            return xv_error(XV_ERR_INVALID_ARG,
                            WHAT "is_image is 1 for every text (each describes a whole image): the box losses "
                                 "would average over no box");
    }
    return XV_OK;
}

static xv_status check_negatives(const xv_pretrain_batch *b, const xv_itm_negatives *neg) {
    if (!neg || (!neg->image_idx && !neg->text_idx && !neg->rng))
        return xv_error(XV_ERR_INVALID_ARG, WHAT "no ITM negatives given and no RNG to draw them");
    if (!neg->image_idx != !neg->text_idx)
        return xv_error(XV_ERR_INVALID_ARG,
                        WHAT "give both ITM negative index vectors (itm_neg_image_idx, itm_neg_text_idx) or neither");
    if (!neg->image_idx) return XV_OK;
    XV_TRY(check_values("itm_neg_image_idx", neg->image_idx, b->n_texts, 0, 0, b->n_texts, false, 0,
                        "a row of the batch"));
    return check_values("itm_neg_text_idx", neg->text_idx, b->n_texts, 0, 0, b->n_texts, false, 0,
                        "a row of the batch");
}

xv_status xv_pretrain_batch_check(const xv_model_config *cfg, const xv_pretrain_batch *b,
                                  const xv_itm_negatives *neg) {
    if (!b) return xv_error(XV_ERR_INVALID_ARG, WHAT "no batch");
    XV_TRY(check_sizes(cfg, b));
    XV_TRY(check_text(cfg, b));
    XV_TRY(check_regions(b));
    return check_negatives(b, neg);
}
