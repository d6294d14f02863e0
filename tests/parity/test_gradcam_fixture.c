/* Parity of weakly-supervised grounding with the official code
 * (shared/fixtures/gradcam): the Grad-CAM step (every layer output and its
 * gradient, the cross-attention probabilities of block_num and their
 * gradient, the maps), the official grounding_eval (upsampled maps, proposal
 * scores, chosen boxes, IoU, correct, split accuracies), one weak-supervision
 * training step and one box domain-pretraining step with their gradients.
 * Tolerance rule: golden.h; integers and accuracies exact. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "model/gradcam.h"
#include "model/grounding_steps.h"
#include "tasks/eval_weak_grounding.h"

/* config.json: gradcam.block_num and inputs_info.gradcam.ref_splits. */
static bool read_config(const char *dir, int *block_num, xv_refcoco_split *splits, int n_refs) {
    cJSON *root = golden_json(dir, "config.json");
    cJSON *bn = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "gradcam"), "block_num");
    cJSON *sp = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "inputs_info"), "gradcam"),
                                    "ref_splits");
    bool ok = cJSON_IsNumber(bn) && cJSON_GetArraySize(sp) == n_refs;
    CHECK(ok, "%s/config.json: gradcam.block_num or %d inputs_info.gradcam.ref_splits missing", dir, n_refs);
    if (ok) {
        *block_num = bn->valueint;
        for (int r = 0; r < n_refs; r++) {
            const char *s = cJSON_GetArrayItem(sp, r)->valuestring;
            splits[r] = !strcmp(s, "testA") ? XV_SPLIT_TESTA : !strcmp(s, "testB") ? XV_SPLIT_TESTB : XV_SPLIT_VAL;
        }
    }
    cJSON_Delete(root);
    return ok;
}

/* grounding_eval on the maps: upsampled maps, scores, boxes, IoU, accuracies. */
static void boxes(const xv_st_file *in, const xv_st_file *ref, const xv_gradcam_out *o, const xv_refcoco_split *splits,
                  golden_section *s) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *hw = golden_input(g, in, "gradcam.image_hw", false), *dets = golden_input(g, in, "gradcam.dets", true);
    xv_tensor *gt = golden_input(g, in, "gradcam.gt_box", true);
    if (!hw || !dets || !gt) goto done;
    const int R = (int)dets->shape[0], K = (int)dets->shape[1], n = (int)o->map->shape[1];
    double(*d)[4] = malloc(sizeof(double[4]) * (size_t)(R * K));
    xv_weak_ref refs[16];
    CHECK(R <= 16, "%d expressions", R);
    for (int i = 0; i < R * K * 4; i++) d[i / 4][i % 4] = dets->data[i];
    for (int r = 0; r < R && r < 16; r++) {
        refs[r] = (xv_weak_ref){.map = o->map->data + (int64_t)r * n * n, .height = hw->idata[2 * r],
                                .width = hw->idata[2 * r + 1], .dets = d + r * K, .n_dets = K, .split = splits[r]};
        for (int c = 0; c < 4; c++) refs[r].gt[c] = gt->data[4 * r + c];
    }
    xv_weak_grounding_result res;
    float *up[16] = {0};
    CHECK_OK(xv_weak_grounding_eval(refs, R, n, 0.5, &res, up));
    if (res.chosen) {
        char name[64];
        for (int r = 0; r < R; r++) {
            snprintf(name, sizeof name, "gradcam.upsampled.%d", r);
            golden_check(s, ref, name, up[r], (const int64_t[]){refs[r].height, refs[r].width}, 2, false);
        }
        golden_check(s, ref, "gradcam.box_scores", res.box_scores, (const int64_t[]){R, K}, 2, false);
        int32_t idx[16], correct[16];
        float chosen_box[16][4];
        double iou[16];
        for (int r = 0; r < R; r++) {
            idx[r] = res.chosen[r];
            correct[r] = res.correct[r];
            iou[r] = res.iou[r];
            for (int c = 0; c < 4; c++) chosen_box[r][c] = (float)res.box[r][c];
        }
        golden_check(s, ref, "gradcam.chosen_box_idx", idx, (const int64_t[]){R}, 1, true);
        golden_check(s, ref, "gradcam.correct", correct, (const int64_t[]){R}, 1, true);
        golden_check(s, ref, "gradcam.chosen_box", chosen_box, (const int64_t[]){R, 4}, 2, false);
        const xv_st_tensor *ti = xv_st_find(ref, "gradcam.iou"), *ta = xv_st_find(ref, "gradcam.accuracy");
        CHECK(ti && ti->dtype == XV_ST_F64 && ti->numel == R && ta && ta->dtype == XV_ST_F64 && ta->numel == 3,
              "gradcam.iou F64 [%d], gradcam.accuracy F64 [3]", R);
        if (ti && ta && ti->numel == R && ta->numel == 3) {
            double want_iou[16], want_acc[3];
            memcpy(want_iou, ti->data, sizeof(double) * (size_t)R);
            memcpy(want_acc, ta->data, sizeof want_acc);
            double worst = 0;
            for (int r = 0; r < R; r++) worst = fmax(worst, fabs(want_iou[r] - iou[r]));
            /* IoU from float32 proposals vs the official float64 ones: ~1e-7 */
            printf("  %-72s max|diff| %.3e\n", "gradcam.iou", worst);
            CHECK(worst <= 1e-5, "gradcam.iou differs by %.3e", worst);
            for (int k = 0; k < 3; k++)
                CHECK(res.accuracy[k] == want_acc[k], "accuracy[%d] = %g, official %g (exact)", k, res.accuracy[k],
                      want_acc[k]);
            printf("  gradcam.accuracy (val_d, testA_d, testB_d) = %g %g %g (official %g %g %g)\n", res.accuracy[0],
                   res.accuracy[1], res.accuracy[2], want_acc[0], want_acc[1], want_acc[2]);
            s->compared += 2;
        }
        xv_weak_grounding_result_free(&res);
    }
    for (int r = 0; r < 16; r++) free(up[r]);
    free(d);
done:
    xv_graph_free(g);
}

static void gradcam_step(xv_model *m, const xv_st_file *in, const xv_st_file *ref, int block_num,
                         const xv_refcoco_split *splits) {
    xv_graph *g = xv_graph_new(0);
    xv_gradcam_batch b = {
        .image = golden_input(g, in, "image", true),
        .text_ids = golden_input(g, in, "gradcam.text_ids", false),
        .text_atts = golden_input(g, in, "gradcam.text_atts", false),
        .block_num = block_num,
    };
    xv_gradcam_out o;
    CHECK_OK(xv_gradcam(g, m, &b, &o));
    if (o.map) {
        golden_section s = {.section = "Grad-CAM (map, gradients, boxes)"};
        golden_tensor(&s, ref, "gradcam.vision_embeds", o.vision_embeds);
        golden_layers(&s, ref, "gradcam.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, false);
        golden_tensor(&s, ref, "gradcam.cross_cls", o.cross_cls);
        golden_tensor(&s, ref, "gradcam.itm_logits", o.itm_logits);
        golden_tensor(&s, ref, "gradcam.loss", o.loss);
        golden_tensor(&s, ref, "gradcam.attn_probs", o.attn_probs);
        golden_grad(&s, ref, "gradcam.attn_grads", o.attn_probs);
        golden_tensor(&s, ref, "gradcam.map", o.map);
        golden_layers(&s, ref, "gradcam.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, true);
        boxes(in, ref, &o, splits, &s);
        golden_report(&s);
        CHECK(s.compared == golden_count(ref, "gradcam."), "compared %d of %d gradcam.* tensors", s.compared,
              golden_count(ref, "gradcam."));
    }
    xv_graph_free(g);
}

static void train_step(xv_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_weak_grounding_batch b = {
        .image = golden_input(g, in, "image", true),
        .text_ids = golden_input(g, in, "gradcam.text_ids", false),
        .text_atts = golden_input(g, in, "gradcam.text_atts", false),
        .idx = golden_input(g, in, "train.idx", false),
        .neg_image_idx = golden_input(g, in, "train.itm_neg_image_idx", false),
        .neg_text_idx = golden_input(g, in, "train.itm_neg_text_idx", false),
    };
    xv_weak_grounding_out o;
    CHECK_OK(xv_weak_grounding_step(g, m, &b, &o));
    xv_params_zero_grad(&m->params);
    if (o.loss_total) CHECK_OK(xv_backward(g, o.loss_total));
    if (xv_graph_status(g) == XV_OK && o.loss_total) {
        golden_section s = {.section = "weak-supervision training step"};
        const struct {
            const char *name;
            xv_tensor *t;
        } outs[] = {{"train.image_feat", o.image_feat}, {"train.text_feat", o.text_feat},
                    {"train.sim_i2t", o.sim_i2t},       {"train.itm_cross_cls", o.itm_cross_cls},
                    {"train.itm_logits", o.itm_logits}, {"train.loss_itc", o.loss_itc},
                    {"train.loss_itm", o.loss_itm},     {"train.loss_total", o.loss_total}};
        for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) golden_tensor(&s, ref, outs[i].name, outs[i].t);
        golden_param_grads(&s, ref, "train.", &m->params);
        golden_report(&s);
        CHECK(s.compared == golden_count(ref, "train."), "compared %d of %d train.* tensors", s.compared,
              golden_count(ref, "train."));
    }
    xv_graph_free(g);
}

static void bbox_pretrain_step(xv_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_bbox_pretrain_batch b = {
        .image = golden_input(g, in, "image", true),
        .text_ids = golden_input(g, in, "bbox_pretrain.text_ids", false),
        .text_atts = golden_input(g, in, "bbox_pretrain.text_atts", false),
        .idx_to_group_img = golden_input(g, in, "bbox_pretrain.idx_to_group_img", false),
        .target_bbox = golden_input(g, in, "bbox_pretrain.target_bbox", true),
        .is_image = golden_input(g, in, "bbox_pretrain.is_image", false),
    };
    xv_bbox_pretrain_out o;
    CHECK_OK(xv_bbox_pretrain_step(g, m, &b, &o));
    xv_params_zero_grad(&m->params);
    if (o.loss_total) CHECK_OK(xv_backward(g, o.loss_total));
    if (xv_graph_status(g) == XV_OK && o.loss_total) {
        golden_section s = {.section = "box domain-pretraining step"};
        const struct {
            const char *name;
            xv_tensor *t;
        } outs[] = {{"bbox_pretrain.text_embeds", o.text_embeds}, {"bbox_pretrain.bbox_cross_cls", o.bbox_cross_cls},
                    {"bbox_pretrain.bbox_pred", o.bbox_pred},     {"bbox_pretrain.loss_bbox", o.loss_bbox},
                    {"bbox_pretrain.loss_giou", o.loss_giou},     {"bbox_pretrain.loss_total", o.loss_total}};
        for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) golden_tensor(&s, ref, outs[i].name, outs[i].t);
        golden_param_grads(&s, ref, "bbox_pretrain.", &m->params);
        golden_report(&s);
        CHECK(s.compared == golden_count(ref, "bbox_pretrain."), "compared %d of %d bbox_pretrain.* tensors",
              s.compared, golden_count(ref, "bbox_pretrain."));
    }
    xv_graph_free(g);
}

int main(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("fixtures absent");
    char dir[1024];
    xv_st_file *in = NULL, *ref = NULL;
    golden_open("gradcam", dir, sizeof dir, &in, &ref);
    xv_model *m = NULL;
    CHECK_OK(xv_model_load_dir(dir, false, &m));
    int block_num = -1;
    xv_refcoco_split splits[4];
    if (m && in && ref && read_config(dir, &block_num, splits, 4)) {
        xv_params_set_requires_grad(&m->params, true);
        gradcam_step(m, in, ref, block_num, splits);
        train_step(m, in, ref);
        bbox_pretrain_step(m, in, ref);
    }
    xv_st_close(in);
    xv_st_close(ref);
    xv_model_free(m);
    return xv_test_finish("test_gradcam_fixture");
}
