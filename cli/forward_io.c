#include "forward_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/gradcam.h"
#include "model/grounding_steps.h"
#include "model/nlvr.h"
#include "tasks/eval_weak_grounding.h"

xv_status xv_forward_input(const xv_st_file *in, xv_graph *g, const char *name, bool f32, bool required,
                           xv_tensor **out) {
    *out = NULL;
    const xv_st_tensor *t = xv_st_find(in, name);
    if (!t) {
        if (required) return xv_error(XV_ERR_MISSING, "%s: input %s is missing", xv_st_path(in), name);
        return XV_OK;
    }
    if (t->ndim > XV_MAX_DIMS) return xv_error(XV_ERR_SHAPE, "%s: input %s has rank %d", xv_st_path(in), name, t->ndim);
    xv_tensor *x = xv_tensor_new(g, f32 ? XV_F32 : XV_I32, t->shape, t->ndim);
    if (!x) return xv_graph_status(g);
    xv_status st = f32 ? xv_st_read_f32(in, t, x->data) : xv_st_read_i32(in, t, x->idata);
    if (st != XV_OK) return xv_error_wrap(st, "%s: input %s", xv_st_path(in), name);
    *out = x;
    return XV_OK;
}

xv_status xv_forward_put(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t) {
    if (!t) return XV_OK;
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    if (t->dtype == XV_I32) {
        int64_t *v = malloc(sizeof(int64_t) * (size_t)(t->numel ? t->numel : 1));
        if (!v) return xv_error(XV_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < t->numel; i++) v[i] = t->idata[i];
        xv_status st = xv_st_writer_add(w, full, XV_ST_I64, t->shape, t->ndim, v, false);
        free(v);
        return st;
    }
    return xv_st_writer_add(w, full, XV_ST_F32, t->shape, t->ndim, t->data, false);
}

xv_status xv_forward_put_grads(xv_st_writer *w, const char *prefix, const xv_params *p) {
    char name[512];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? p->n_alias : p->n;
        for (int i = 0; i < n; i++) {
            const xv_tensor *t = pass ? p->alias_targets[i] : p->items[i];
            snprintf(name, sizeof name, "%sgrad.%s", prefix, pass ? p->alias_names[i] : t->name);
            if (t->grad) {
                XV_TRY(xv_st_writer_add(w, name, XV_ST_F32, t->shape, t->ndim, t->grad, false));
                continue;
            }
            float *zeros = calloc((size_t)(t->numel ? t->numel : 1), sizeof(float));
            if (!zeros) return xv_error(XV_ERR_NOMEM, "out of memory");
            xv_status st = xv_st_writer_add(w, name, XV_ST_F32, t->shape, t->ndim, zeros, false);
            free(zeros);
            XV_TRY(st);
        }
    }
    return XV_OK;
}

/* A xv_forward_named output of a step. */
xv_status xv_forward_put_all(xv_st_writer *w, const char *prefix, const xv_forward_named *outs, size_t n) {
    for (size_t i = 0; i < n; i++) XV_TRY(xv_forward_put(w, prefix, outs[i].name, outs[i].t));
    return XV_OK;
}

xv_status xv_forward_put_grad(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t) {
    if (!t || !t->grad) return xv_error(XV_ERR_INTERNAL, "%s%s: no gradient reached it", prefix, name);
    xv_tensor view = *t;
    view.data = t->grad;
    return xv_forward_put(w, prefix, name, &view);
}

/* text_embedding_output and layer_out.<i>, or (grads) the gradients they hold. */
static xv_status put_layers(xv_st_writer *w, const char *prefix, const xv_model *m, xv_tensor *emb,
                            xv_tensor *const *layer_out, bool grads) {
    char name[64];
    for (int i = -1; i < m->cfg.text.layers; i++) {
        const xv_tensor *t = i < 0 ? emb : layer_out[i];
        if (i < 0) snprintf(name, sizeof name, "text_embedding_output%s", grads ? "_grad" : "");
        else snprintf(name, sizeof name, "layer_out%s.%d", grads ? "_grad" : "", i);
        if (!grads) XV_TRY(xv_forward_put(w, prefix, name, t));
        else if (t && t->grad) XV_TRY(xv_forward_put_grad(w, prefix, name, t));
    }
    return XV_OK;
}

xv_graph *xv_forward_step_graph(bool grads) {
    xv_graph *g = xv_graph_new(0);
    if (g) {
        xv_graph_set_grad(g, grads);
        xv_graph_set_training(g, false);
    }
    return g;
}

static xv_status finish(xv_graph *g, xv_model *m, xv_tensor *loss, bool grads) {
    XV_TRY(xv_graph_status(g));
    if (!grads) return XV_OK;
    xv_params_zero_grad(&m->params);
    return xv_backward(g, loss);
}

static xv_status nlvr_step(xv_model *m, const xv_st_file *in, bool grads, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_nlvr_batch b = {0};
    xv_nlvr_out o = {0};
    xv_status st = xv_forward_input(in, g, "nlvr.images", true, true, &b.images);
    if (st == XV_OK) st = xv_forward_input(in, g, "nlvr.text_ids", false, true, &b.text_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "nlvr.text_atts", false, true, &b.text_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "nlvr.targets", false, true, &b.targets);
    if (st == XV_OK) st = xv_nlvr_forward(g, m, &b, &o);
    if (st == XV_OK) st = finish(g, m, o.loss, grads);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"vision_embeds", o.vision_embeds}, {"cross_cls", o.cross_cls}, {"logits", o.logits},
                              {"loss", o.loss}, {"pred_class", o.pred_class}, {"accuracy", o.accuracy}};
        st = xv_forward_put_all(w, "nlvr.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) st = put_layers(w, "nlvr.", m, o.text_embedding_output, o.layer_out, false);
        if (st == XV_OK && grads) st = put_layers(w, "nlvr.", m, o.text_embedding_output, o.layer_out, true);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "nlvr.", &m->params);
        if (st == XV_OK) printf("nlvr.    loss %.6f  accuracy %.4f\n", o.loss->data[0], o.accuracy->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step nlvr.");
}

static xv_status ta_step(xv_model *m, const xv_st_file *in, bool grads, uint64_t seed, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    xv_ta_batch b = {.rng = &rng};
    xv_ta_out o = {0};
    /* The text-assignment images default to the NLVR batch's (as in the golden data). */
    const char *images = xv_st_find(in, "ta.images") ? "ta.images" : "nlvr.images";
    xv_status st = xv_forward_input(in, g, images, true, true, &b.images);
    if (st == XV_OK) st = xv_forward_input(in, g, "ta.text_ids", false, true, &b.text_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "ta.text_atts", false, true, &b.text_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "ta.left_idx", false, false, &b.left_idx);
    if (st == XV_OK) st = xv_forward_input(in, g, "ta.right_idx", false, false, &b.right_idx);
    if (st == XV_OK) st = xv_forward_input(in, g, "ta.labels", false, false, &b.labels);
    if (st == XV_OK) st = xv_ta_forward(g, m, &b, &o);
    if (st == XV_OK) st = finish(g, m, o.loss, grads);
    if (st == XV_OK) {
        const bool drawn = !b.labels;
        const xv_forward_named outs[] = {{"vision_embeds", o.vision_embeds},
                              {"image_feat", o.image_feat},
                              {"sim", o.sim},
                              {"weights", o.weights},
                              {"cross_cls", o.cross_cls},
                              {"logits", o.logits},
                              {"loss", o.loss},
                              {"left_idx", drawn ? o.left_idx : NULL}, /* only when drawn here */
                              {"right_idx", drawn ? o.right_idx : NULL},
                              {"labels", drawn ? o.labels : NULL}};
        st = xv_forward_put_all(w, "ta.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) st = put_layers(w, "ta.", m, o.text_embedding_output, o.layer_out, false);
        if (st == XV_OK && grads) st = put_layers(w, "ta.", m, o.text_embedding_output, o.layer_out, true);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "ta.", &m->params);
        if (st == XV_OK) printf("ta.      loss %.6f\n", o.loss->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step ta.");
}

/* grounding_eval on the maps when the inputs carry image sizes, proposals and
 * ground truth (and gradcam.splits for the split accuracies). */
static xv_status gradcam_boxes(const xv_st_file *in, xv_graph *g, const xv_gradcam_out *o, xv_st_writer *w) {
    xv_tensor *hw, *dets, *gt, *splits;
    XV_TRY(xv_forward_input(in, g, "gradcam.image_hw", false, false, &hw));
    XV_TRY(xv_forward_input(in, g, "gradcam.dets", true, false, &dets));
    XV_TRY(xv_forward_input(in, g, "gradcam.gt_box", true, false, &gt));
    XV_TRY(xv_forward_input(in, g, "gradcam.splits", false, false, &splits));
    if (!hw || !dets || !gt) return XV_OK;
    const int64_t R = o->map->shape[0], n = o->map->shape[1];
    if (hw->numel != 2 * R || dets->ndim != 3 || dets->shape[0] != R || dets->shape[2] != 4 || gt->numel != 4 * R ||
        (splits && splits->numel != R))
        return xv_error(XV_ERR_SHAPE, "Grad-CAM boxes: need gradcam.image_hw [%lld, 2], gradcam.dets [%lld, K, 4], "
                        "gradcam.gt_box [%lld, 4] (and gradcam.splits [%lld])",
                        (long long)R, (long long)R, (long long)R, (long long)R);
    const int64_t K = dets->shape[1];
    double(*d)[4] = xv_graph_alloc(g, sizeof(double[4]) * (size_t)(R * K + 1));
    xv_weak_ref *refs = xv_graph_calloc(g, sizeof *refs * (size_t)R);
    float **up = xv_graph_calloc(g, sizeof *up * (size_t)R);
    XV_TRY(xv_graph_status(g));
    for (int64_t i = 0; i < R * K * 4; i++) d[i / 4][i % 4] = dets->data[i];
    for (int64_t r = 0; r < R; r++) {
        refs[r] = (xv_weak_ref){.map = o->map->data + r * n * n, .height = hw->idata[2 * r],
                                .width = hw->idata[2 * r + 1], .dets = d + r * K, .n_dets = (int)K,
                                /* without splits every expression counts as val (no accuracy written) */
                                .split = splits ? (xv_refcoco_split)splits->idata[r] : XV_SPLIT_VAL};
        for (int c = 0; c < 4; c++) refs[r].gt[c] = gt->data[4 * r + c];
    }
    xv_weak_grounding_result res;
    xv_status st = xv_weak_grounding_eval(refs, (int)R, (int)n, 0.5, &res, up);
    for (int64_t r = 0; st == XV_OK && r < R; r++) {
        char name[64];
        snprintf(name, sizeof name, "gradcam.upsampled.%lld", (long long)r);
        st = xv_st_writer_add(w, name, XV_ST_F32, (const int64_t[]){refs[r].height, refs[r].width}, 2, up[r], false);
    }
    xv_tensor *idx = xv_tensor_new(g, XV_I32, XV_SHAPE(R)), *correct = xv_tensor_new(g, XV_I32, XV_SHAPE(R));
    xv_tensor *box = xv_tensor_new(g, XV_F32, XV_SHAPE(R, 4)), *scores = xv_tensor_new(g, XV_F32, XV_SHAPE(R, K));
    if (st == XV_OK) st = xv_graph_status(g);
    if (st == XV_OK) {
        for (int64_t r = 0; r < R; r++) {
            idx->idata[r] = res.chosen[r];
            correct->idata[r] = res.correct[r];
            for (int c = 0; c < 4; c++) box->data[4 * r + c] = (float)res.box[r][c];
        }
        memcpy(scores->data, res.box_scores, sizeof(float) * (size_t)(R * K));
        const xv_forward_named outs[] = {{"box_scores", scores}, {"chosen_box_idx", idx}, {"chosen_box", box},
                              {"correct", correct}};
        st = xv_forward_put_all(w, "gradcam.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) st = xv_st_writer_add(w, "gradcam.iou", XV_ST_F64, XV_SHAPE(R), res.iou, false);
        if (st == XV_OK && splits)
            st = xv_st_writer_add(w, "gradcam.accuracy", XV_ST_F64, XV_SHAPE(XV_N_SPLITS), res.accuracy, false);
        xv_weak_grounding_result_free(&res);
    }
    for (int64_t r = 0; r < R; r++) free(up[r]);
    return st;
}

static xv_status gradcam_step(xv_model *m, const xv_st_file *in, int block_num, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(true); /* the map needs the gradient */
    if (!g) return XV_ERR_NOMEM;
    xv_gradcam_batch b = {.block_num = block_num};
    xv_gradcam_out o = {0};
    xv_tensor *bn = NULL;
    xv_status st = xv_forward_input(in, g, "image", true, true, &b.image);
    if (st == XV_OK) st = xv_forward_input(in, g, "gradcam.text_ids", false, true, &b.text_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "gradcam.text_atts", false, true, &b.text_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "gradcam.block_num", false, false, &bn);
    if (st == XV_OK && bn) b.block_num = bn->idata[0];
    if (st == XV_OK && b.block_num < 0)
        st = xv_error(XV_ERR_MISSING, "Grad-CAM needs its layer: --block-num L or the input gradcam.block_num");
    if (st == XV_OK) st = xv_gradcam(g, m, &b, &o);
    if (st == XV_OK) {
        xv_tensor grads = *o.attn_probs;
        grads.data = o.attn_probs->grad;
        const xv_forward_named outs[] = {{"vision_embeds", o.vision_embeds}, {"cross_cls", o.cross_cls},
                              {"itm_logits", o.itm_logits},       {"loss", o.loss},
                              {"attn_probs", o.attn_probs},       {"attn_grads", &grads},
                              {"map", o.map}};
        st = xv_forward_put_all(w, "gradcam.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK) st = put_layers(w, "gradcam.", m, o.text_embedding_output, o.layer_out, false);
        if (st == XV_OK) st = put_layers(w, "gradcam.", m, o.text_embedding_output, o.layer_out, true);
        if (st == XV_OK) st = gradcam_boxes(in, g, &o, w);
        if (st == XV_OK) printf("gradcam. loss %.6f (block %d)\n", o.loss->data[0], b.block_num);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step gradcam.");
}

static xv_status weak_train_step(xv_model *m, const xv_st_file *in, bool grads, uint64_t seed, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    xv_weak_grounding_batch b = {.rng = &rng};
    xv_weak_grounding_out o = {0};
    xv_status st = xv_forward_input(in, g, "image", true, true, &b.image);
    if (st == XV_OK) st = xv_forward_input(in, g, "gradcam.text_ids", false, true, &b.text_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "gradcam.text_atts", false, true, &b.text_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.idx", false, true, &b.idx);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.itm_neg_image_idx", false, false, &b.neg_image_idx);
    if (st == XV_OK) st = xv_forward_input(in, g, "train.itm_neg_text_idx", false, false, &b.neg_text_idx);
    if (st == XV_OK) st = xv_weak_grounding_step(g, m, &b, &o);
    if (st == XV_OK) st = finish(g, m, o.loss_total, grads);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"image_feat", o.image_feat},       {"text_feat", o.text_feat},
                              {"sim_i2t", o.sim_i2t},             {"itm_cross_cls", o.itm_cross_cls},
                              {"itm_logits", o.itm_logits},       {"loss_itc", o.loss_itc},
                              {"loss_itm", o.loss_itm},           {"loss_total", o.loss_total},
                              {"itm_neg_image_idx", b.neg_image_idx ? NULL : o.neg_image_idx},
                              {"itm_neg_text_idx", b.neg_text_idx ? NULL : o.neg_text_idx}};
        st = xv_forward_put_all(w, "train.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "train.", &m->params);
        if (st == XV_OK) printf("train.   loss_total %.6f\n", o.loss_total->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step train.");
}

static xv_status bbox_pretrain_step(xv_model *m, const xv_st_file *in, bool grads, xv_st_writer *w) {
    xv_graph *g = xv_forward_step_graph(grads);
    if (!g) return XV_ERR_NOMEM;
    xv_bbox_pretrain_batch b = {0};
    xv_bbox_pretrain_out o = {0};
    xv_status st = xv_forward_input(in, g, "image", true, true, &b.image);
    if (st == XV_OK) st = xv_forward_input(in, g, "bbox_pretrain.text_ids", false, true, &b.text_ids);
    if (st == XV_OK) st = xv_forward_input(in, g, "bbox_pretrain.text_atts", false, true, &b.text_atts);
    if (st == XV_OK) st = xv_forward_input(in, g, "bbox_pretrain.idx_to_group_img", false, true, &b.idx_to_group_img);
    if (st == XV_OK) st = xv_forward_input(in, g, "bbox_pretrain.target_bbox", true, true, &b.target_bbox);
    if (st == XV_OK) st = xv_forward_input(in, g, "bbox_pretrain.is_image", false, false, &b.is_image);
    if (st == XV_OK) st = xv_bbox_pretrain_step(g, m, &b, &o);
    if (st == XV_OK) st = finish(g, m, o.loss_total, grads);
    if (st == XV_OK) {
        const xv_forward_named outs[] = {{"text_embeds", o.text_embeds}, {"bbox_cross_cls", o.bbox_cross_cls},
                              {"bbox_pred", o.bbox_pred},     {"loss_bbox", o.loss_bbox},
                              {"loss_giou", o.loss_giou},     {"loss_total", o.loss_total}};
        st = xv_forward_put_all(w, "bbox_pretrain.", outs, sizeof outs / sizeof *outs);
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, "bbox_pretrain.", &m->params);
        if (st == XV_OK) printf("bbox_pretrain. loss_total %.6f\n", o.loss_total->data[0]);
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step bbox_pretrain.");
}

xv_status xv_forward_tasks(xv_model *m, const xv_st_file *in, bool grads, uint64_t seed, int block_num,
                           xv_st_writer *w, int *steps) {
    *steps = 0;
    const struct {
        bool present;
        int kind;
    } steps_in[] = {
        {m->parts.nlvr && xv_st_find(in, "nlvr.images"), 0},
        {m->parts.ta && xv_st_find(in, "ta.text_ids"), 1},
        {m->parts.itm && xv_st_find(in, "gradcam.text_ids"), 2},
        {m->parts.itc && m->parts.itm && xv_st_find(in, "train.idx"), 3},
        {m->parts.bbox && xv_st_find(in, "bbox_pretrain.text_ids"), 4},
    };
    for (size_t i = 0; i < sizeof steps_in / sizeof *steps_in; i++) {
        if (!steps_in[i].present) continue;
        switch (steps_in[i].kind) {
        case 0: XV_TRY(nlvr_step(m, in, grads, w)); break;
        case 1: XV_TRY(ta_step(m, in, grads, seed, w)); break;
        case 2: XV_TRY(gradcam_step(m, in, block_num, w)); break;
        case 3: XV_TRY(weak_train_step(m, in, grads, seed, w)); break;
        default: XV_TRY(bbox_pretrain_step(m, in, grads, w)); break;
        }
        ++*steps;
    }
    return XV_OK;
}
