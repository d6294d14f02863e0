/* Box grounding fine-tuning, as the official Grounding_bbox.py with
 * models/model_bbox.py (§9.2), behind finetune_task.h.
 *
 * Training entries {image, text, ref_id} of every train_file with the box
 * from the REFER index of refcoco_data (or {image, text, bbox [x, y, w, h]
 * pixels}, the VLUE format); the region crop around the box, flip (skipped
 * when the text mentions left/right: careful_hflip), resize, RandAug over the
 * 5 colour ops; target (cx, cy, w, h)/res. Loss = ΣL1/B + Σ(1 − GIoU)/B.
 * Evaluation: test_file through grounding_eval_bbox, accuracy at IoU >= 0.5
 * by REFER split (val_d, testA_d, testB_d; the whole file as test_d without
 * REFER); the best epoch has the best val_d (else test_d). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/transforms.h"
#include "model/losses.h"
#include "ops/ops.h"
#include "tasks/eval_data.h"
#include "tasks/eval_grounding.h"
#include "tasks/refer.h"
#include "train/finetune_grounding_data.h"
#include "train/finetune_task.h"

typedef struct {
    xv_ft_grounding_data d;
    float *target; /* [batch, 4] */
} grounding;

static const char *const keys[] = {"batch_size", "refcoco_data", "det_file", "coco_file", "careful_hflip", NULL};

static xv_status read_config(const xv_yaml_node *root, xv_finetune_config *cfg) {
    XV_TRY(xv_ft_config_path(root, "refcoco_data", &cfg->refcoco_data));
    XV_TRY(xv_ft_config_path(root, "det_file", &cfg->det_file));
    XV_TRY(xv_ft_config_path(root, "coco_file", &cfg->coco_file));
    return xv_yaml_get_bool(root, "careful_hflip", &cfg->careful_hflip);
}

static xv_status setup(xv_ft *f) {
    if (!f->m->parts.bbox)
        return xv_error(XV_ERR_INVALID_ARG, "%s: grounding fine-tuning needs bbox_head", f->o->init);
    grounding *t = calloc(1, sizeof *t);
    if (!(f->task_state = t)) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_ft_grounding_data_read(f, &t->d));
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    if (!(t->target = malloc((size_t)f->cfg.batch_size * 4 * sizeof *t->target)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

static void task_free(xv_ft *f) {
    grounding *t = f->task_state;
    if (!t) return;
    xv_ft_grounding_data_free(&t->d);
    free(t->target);
    free(t);
    f->task_state = NULL;
}

/* Sample s as the crop around its box, into row i of the batch. */
static xv_status make_sample(xv_ft *f, grounding *t, int i, int32_t s) {
    const int R = f->res;
    const xv_image *im = &t->d.b.images[t->d.b.img_of[s]];
    const double *bb = t->d.set.bbox[s];
    const xv_box box = {bb[0], bb[1], bb[2], bb[3]};
    const char *text = t->d.set.texts[s];
    const bool flip_ok =
        xv_flip_allowed(f->cfg.careful_hflip ? XV_FLIP_CAREFUL : XV_FLIP_ALWAYS_ALLOWED, &text, 1);
    xv_region_crop c;
    xv_status st = xv_region_crop_draw(&f->aug, im->width, im->height, box, flip_ok, R, &c);
    if (st != XV_OK) return xv_error_wrap(st, "train_file entry %d (ref_id %lld)", s, (long long)t->d.set.ref_id[s]);
    xv_image crop = {0};
    xv_box mapped;
    XV_TRY(xv_region_crop_apply(im, &c, &crop));
    if (!xv_region_crop_box(&c, box, -1, &mapped)) {
        xv_image_free(&crop);
        return xv_error(XV_ERR_INVALID_ARG, "train_file entry %d: box outside its crop", s);
    }
    xv_box_target(&mapped, R, t->target + 4 * i);
    st = xv_transform_train(&f->aug, &crop, R, XV_TRAIN_BOX, t->d.b.pixels + (size_t)i * 3 * R * R);
    xv_image_free(&crop);
    return st;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    grounding *t = f->task_state;
    const int B = f->cfg.batch_size;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        XV_TRY(xv_ft_batch_caption(&t->d.b, f, i, t->d.set.texts[s]));
        XV_TRY(make_sample(f, t, i, s));
    }
    XV_TRY(xv_ft_batch_encode(&t->d.b, f, 0)); /* only the model's positions cap the text, as Grounding_bbox.py */
    xv_graph *g = f->g;
    xv_tensor *ve, *te, *atts;
    XV_TRY(xv_ft_batch_encoders(&t->d.b, f, &ve, &te, &atts));
    xv_tensor *target = xv_tensor_wrap_f32(g, t->target, XV_SHAPE(B, 4));
    xv_tensor *giou = NULL;
    xv_tensor *l1 = xv_bbox_loss(g, xv_bbox_predict(g, f->m, ve, te, atts, NULL), target, NULL, &giou);
    *out = xv_add(g, l1, giou);
    XV_TRY(xv_graph_status(g));
    rec->region = true;
    term[0] = rec->loss_bbox = l1->data[0];
    term[1] = rec->loss_giou = giou->data[0];
    return XV_OK;
}

/* test_file through grounding_eval_bbox: val_d, testA_d, testB_d with REFER,
 * else the whole file as test_d; the per-expression results (ref_id, box) to
 * OUTPUT_DIR/result/<results_name>.json, as collect_tensor_result. */
static xv_status evaluate(xv_ft *f, xvlm_ctx *ctx, const char *results_name, xv_finetune_scores *out) {
    grounding *t = f->task_state;
    const xv_path_list *files = &f->cfg.test_file;
    /* without setup (xvlm evaluate), the REFER index is read here */
    xv_refer own;
    const xv_refer *refer;
    XV_TRY(xv_ft_grounding_refer(f, t ? &t->d : NULL, &own, &refer));
    xv_eval_grounding_result r;
    xv_grounding_splits sp;
    xv_eval_grounding_opts eo = xv_eval_grounding_opts_default();
    eo.max_words = f->cfg.max_words;
    char *rpath = NULL;
    xv_status st = xv_ft_result_path(f, results_name, &rpath);
    const xv_fs_root images = xv_finetune_images(&f->cfg);
    if (st == XV_OK)
        st = xv_eval_grounding_files(ctx, (const char *const *)files->paths, files->n, &images,
                                     refer, &eo, rpath, &r, &sp);
    free(rpath);
    xv_refer_free(&own);
    if (st != XV_OK) return xv_error_wrap(st, "test split (%s)", files->paths[0]);
    if (f->cfg.refcoco_data) {
        xv_ft_scores_put(out, NULL, "val_d", sp.val_d);
        xv_ft_scores_put(out, NULL, "testA_d", sp.testA_d);
        xv_ft_scores_put(out, NULL, "testB_d", sp.testB_d);
    } else {
        xv_ft_scores_put(out, "test", "d", sp.score);
    }
    out->metric = r.accuracy, out->aux = r.mean_iou;
    xv_eval_grounding_result_free(&r);
    cJSON *d = cJSON_CreateObject();
    if (!d) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_ft_json_num(d, "val_d", sp.val_d);
    xv_ft_json_num(d, "testA_d", sp.testA_d);
    xv_ft_json_num(d, "testB_d", sp.testB_d);
    xv_ft_json_num(d, "score", sp.score);
    return xv_ft_scores_set_official(out, d);
}

/* grounding_eval_bbox's fractions */
static void print_scores(const xv_finetune_scores *s, FILE *out) {
    for (int i = 0; i < s->n; i++) fprintf(out, "  %s %.4f", s->name[i], s->value[i]);
    fputc('\n', out);
}

const xv_finetune_task xv_ft_grounding = {
    .name = "grounding",
    .batch_key = "batch_size",
    .keys = keys,
    .read_config = read_config,
    .n_terms = 2,
    .terms = {"loss_bbox", "loss_giou"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    .evaluate = evaluate,
    .eval_results_name = "grounding_bbox_eval",
    .selection = {"val_d", "test_d"},
    .selection_digits = 4,
    .metric_key = "accuracy",
    .aux_key = "mean_iou",
    .metric_label = "accuracy@IoU0.5",
    .print_scores = print_scores,
};
