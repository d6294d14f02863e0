/* Weakly-supervised grounding, as the official Grounding.py with
 * models/model_retrieval.py (shared/docs/xvlm-nlvr-grounding.md §3),
 * behind finetune_task.h: `xvlm finetune weak_grounding`.
 *
 * Config: configs/Grounding.yaml's keys (train_file, test_file, image_root,
 * refcoco_data, det_file, coco_file (read and unused, as officially),
 * block_num: the encoder layer Grad-CAM reads (absent: the model's default,
 * xvlm_gradcam_default_layer), batch_size, max_words, optimizer, schedular).
 * Training data: {image, text, ref_id} with REFER, or with boxes inline (the
 * synth and VLUE form); no box is used: the label of an expression is its
 * image's index (numbered in order of first appearance), so all expressions
 * of one image are positives of each other. Resize((R, R)) + flip (no
 * left/right check) + RandAug; pre_caption(max_words), no token cut (the
 * official tokenizer call ignores max_length); loss ITC + ITM
 * (xv_weak_grounding_step, negatives from the run's "negatives" stream); temp
 * is not clamped.
 * Evaluation after every epoch: test_file through Grad-CAM and
 * grounding_eval (tasks/eval_weak_grounding.h) over det_file's proposals:
 * val_d, testA_d, testB_d with REFER, else test_d; the best epoch has the best
 * val_d (else test_d), as Grounding.py keeps checkpoint_best.pth. Also
 * logged, for comparison: test_random_d (a proposal drawn at random, exact
 * expectation) and test_peak_in_box / test_box_share (how often the map's
 * maximum lies inside the true box, and the boxes' mean share of the image). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "data/transforms.h"
#include "model/grounding_steps.h"
#include "tasks/eval_data.h"
#include "tasks/eval_weak_grounding.h"
#include "tasks/refer.h"
#include "train/finetune_grounding_data.h"
#include "train/finetune_task.h"

typedef struct {
    int block_num; /* -1: the model's default Grad-CAM layer */
} weak_config;

typedef struct {
    xv_ft_grounding_data d;
    int32_t *idx; /* [batch] image index of each expression */
} weak;

static const char *const keys[] = {"batch_size", "refcoco_data", "det_file", "coco_file", "block_num",
                                   "gradcam_mode", NULL};

static xv_status read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    weak_config *c = calloc(1, sizeof *c);
    if (!(cfg->task_data = c)) return xv_error(XV_ERR_NOMEM, "out of memory");
    c->block_num = -1;
    XV_TRY(xv_ft_config_path(root, "refcoco_data", &cfg->refcoco_data));
    XV_TRY(xv_yaml_require(root, "det_file", "the detector proposals the evaluation chooses among"));
    XV_TRY(xv_ft_config_path(root, "det_file", &cfg->det_file));
    XV_TRY(xv_ft_config_path(root, "coco_file", &cfg->coco_file));
    const char *mode = "itm";
    XV_TRY(xv_yaml_get_string(root, "gradcam_mode", &mode));
    if (strcmp(mode, "itm"))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: gradcam_mode '%s': only 'itm' exists (the official code raises on "
                        "the others)", xv_yaml_get(root, "gradcam_mode")->file, mode);
    return xv_yaml_get_int(root, "block_num", 0, 1 << 16, &c->block_num);
}

static void free_config(xv_finetune_config *cfg) {
    free(cfg->task_data);
    cfg->task_data = NULL;
}

static xv_status setup(xv_ft *f) {
    if (!f->m->parts.itc || !f->m->parts.itm)
        return xv_error(XV_ERR_INVALID_ARG, "%s: weakly-supervised grounding trains ITC + ITM: the model needs "
                        "vision_proj, text_proj and itm_head", f->o->init);
    weak *t = calloc(1, sizeof *t);
    if (!(f->task_state = t)) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_ft_grounding_data_read(f, &t->d));
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    if (!(t->idx = malloc((size_t)f->cfg.batch_size * sizeof *t->idx))) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static void task_free(xv_ft *f) {
    weak *t = f->task_state;
    if (!t) return;
    xv_ft_grounding_data_free(&t->d);
    free(t->idx);
    free(t);
    f->task_state = NULL;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    weak *t = f->task_state;
    const int B = f->cfg.batch_size, R = f->res;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        XV_TRY(xv_transform_train(&f->aug, &t->d.b.images[t->d.b.img_of[s]], R, XV_TRAIN_RESIZE_FLIP,
                                  t->d.b.pixels + (size_t)i * 3 * R * R));
        t->idx[i] = (int32_t)t->d.set.image[s];
        xv_status st = xv_ft_batch_caption(&t->d.b, f, i, t->d.set.texts[s]);
        if (st != XV_OK) return xv_error_wrap(st, "train_file entry %d", s);
    }
    XV_TRY(xv_ft_batch_encode(&t->d.b, f, 0)); /* padding='longest' without truncation: no cut */
    xv_graph *g = f->g;
    const xv_weak_grounding_batch wb = {
        .image = xv_tensor_wrap_f32(g, t->d.b.pixels, XV_SHAPE(B, 3, R, R)),
        .text_ids = xv_tensor_wrap_i32(g, t->d.b.tb.ids, XV_SHAPE(B, t->d.b.tb.len)),
        .text_atts = xv_tensor_wrap_i32(g, t->d.b.tb.atts, XV_SHAPE(B, t->d.b.tb.len)),
        .idx = xv_tensor_wrap_i32(g, t->idx, XV_SHAPE(B)),
        .rng = &f->neg,
    };
    XV_TRY(xv_graph_status(g));
    xv_weak_grounding_out o;
    XV_TRY(xv_weak_grounding_step(g, f->m, &wb, &o));
    *out = o.loss_total;
    rec->region = false;
    term[0] = rec->loss_itc = o.loss_itc->data[0];
    term[1] = rec->loss_itm = o.loss_itm->data[0];
    return XV_OK;
}

/* Grounding.py's val + grounding_eval on test_file. */
static xv_status evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    (void)results_name;
    weak *t = f->task_state;
    const weak_config *c = f->cfg.task_data;
    xv_refer own;
    const xv_refer *refer;
    XV_TRY(xv_ft_grounding_refer(f, t ? &t->d : NULL, &own, &refer));
    xv_dets dets = {0};
    xv_grounding_set set = {0};
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    xv_status st = xv_dets_read(f->cfg.det_file, &dets);
    if (st == XV_OK)
        st = xv_grounding_set_read_files((const char *const *)f->cfg.test_file.paths, f->cfg.test_file.n, &images,
                                         refer, &set);
    const int layer = c->block_num >= 0 ? c->block_num : xvlm_gradcam_default_layer(ctx->model);
    xv_weak_grounding_result r = {0};
    if (st == XV_OK) st = xv_eval_weak_grounding(ctx, &set, refer, &dets, layer, &r);
    if (st == XV_OK) {
        if (refer) {
            xv_ft_scores_put(out, NULL, "val_d", r.accuracy[XV_SPLIT_VAL]);
            xv_ft_scores_put(out, NULL, "testA_d", r.accuracy[XV_SPLIT_TESTA]);
            xv_ft_scores_put(out, NULL, "testB_d", r.accuracy[XV_SPLIT_TESTB]);
        } else {
            xv_ft_scores_put(out, "test", "d", r.accuracy[XV_SPLIT_VAL]); /* without REFER all counts as one split */
        }
        double peaks = 0, share = 0, random = 0;
        for (int64_t i = 0; i < set.n; i++) peaks += r.peak_in_box[i], share += r.box_share[i];
        for (int s = 0, k = 0; s < XV_N_SPLITS; s++)
            if (r.random_accuracy[s] == r.random_accuracy[s]) /* the splits' mean, weighted as accuracy */
                random = (random * k + r.random_accuracy[s]) / (k + 1), k++;
        xv_ft_scores_put(out, "test", "random_d", random);
        xv_ft_scores_put(out, "test", "peak_in_box", set.n ? peaks / (double)set.n : NAN);
        xv_ft_scores_put(out, "test", "box_share", set.n ? share / (double)set.n : NAN);
        out->metric = refer ? r.accuracy[XV_SPLIT_VAL] : xv_finetune_scores_get(out, "test_d");
        out->aux = xv_finetune_scores_get(out, "test_peak_in_box");
    }
    xv_weak_grounding_result_free(&r);
    xv_grounding_set_free(&set);
    xv_dets_free(&dets);
    xv_refer_free(&own);
    if (st != XV_OK) return xv_error_wrap(st, "weak grounding on %s", f->cfg.test_file.paths[0]);
    cJSON *d = cJSON_CreateObject();
    if (!d) return xv_error(XV_ERR_NOMEM, "out of memory");
    static const char *const names[] = {"val_d", "testA_d", "testB_d", "test_d"}; /* test_d: without REFER */
    for (int s = 0; s < 4; s++)
        if (s < XV_N_SPLITS ? f->cfg.refcoco_data != NULL : !f->cfg.refcoco_data)
            xv_ft_json_num(d, names[s], xv_finetune_scores_get(out, names[s]));
    return xv_ft_scores_set_official(out, d);
}

const xv_finetune_task xv_ft_weak_grounding = {
    .name = "weak_grounding",
    .batch_key = "batch_size",
    .keys = keys,
    .read_config = read_config,
    .free_config = free_config,
    .n_terms = 2,
    .terms = {"loss_itc", "loss_itm"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = evaluate,
    .selection = {"val_d", "test_d"},
    .selection_digits = 4,
    .metric_key = "accuracy",
    .aux_key = "peak_in_box",
    .metric_label = "weak-grounding accuracy",
    .print_scores = xv_ft_print_scores,
};
