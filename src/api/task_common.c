#include "api/task_common.h"

#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/fs.h"
#include "model/model_folder.h"
#include "model/precision.h"

xv_status xv_api_set_precision(xv_params *weights, const xvlm_model_params *params) {
    switch (params->precision) {
    case XVLM_FP32: return xv_params_set_precision(weights, XV_PRECISION_FP32);
    case XVLM_BF16: return xv_params_set_precision(weights, XV_PRECISION_BF16);
    }
    return xv_error(XV_ERR_INVALID_ARG, "xvlm_model_params.precision: unknown value %d (XVLM_FP32 or XVLM_BF16)",
                    (int)params->precision);
}

xv_status xv_api_task_tokenizer(const char *path, const xvlm_model_params *params, int vocab, xv_tokenizer **out) {
    *out = NULL;
    xv_model_vocab v;
    XV_TRY(xv_model_vocab_find(path, params ? params->vocab_path : NULL, &v));
    xv_status st = xv_tokenizer_from_memory(v.text, v.len, v.origin, out);
    if (st == XV_OK && xv_tokenizer_vocab_size(*out) > vocab)
        st = xv_error(XV_ERR_SHAPE, "%s: the vocabulary has %d entries but the model's word embeddings have %d rows "
                                    "(a vocab.txt of another model?)",
                      v.origin, xv_tokenizer_vocab_size(*out), vocab);
    xv_model_vocab_free(&v);
    if (st != XV_OK) {
        xv_tokenizer_free(*out);
        *out = NULL;
    }
    return st;
}

xv_status xv_api_task_images(xv_graph *g, const char *const *paths, int n, int res, xv_tensor **out) {
    *out = xv_tensor_new(g, XV_F32, XV_SHAPE(n, 3, res, res));
    if (!*out) return xv_graph_status(g);
    for (int i = 0; i < n; i++) {
        int w, h;
        if (!paths[i]) return xv_error(XV_ERR_INVALID_ARG, "image path %d is NULL", i);
        XV_TRY(xv_api_preprocess_file(paths[i], res, (*out)->data + (size_t)i * 3 * res * res, &w, &h));
    }
    return XV_OK;
}

xv_status xv_api_task_text(xv_graph *g, const xv_text_batch *b, xv_tensor **ids, xv_tensor **atts) {
    *ids = xv_tensor_new(g, XV_I32, XV_SHAPE(b->batch, b->len));
    *atts = xv_tensor_new(g, XV_I32, XV_SHAPE(b->batch, b->len));
    if (!*ids || !*atts) return xv_graph_status(g);
    memcpy((*ids)->idata, b->ids, sizeof(int32_t) * (size_t)b->batch * (size_t)b->len);
    memcpy((*atts)->idata, b->atts, sizeof(int32_t) * (size_t)b->batch * (size_t)b->len);
    return XV_OK;
}
