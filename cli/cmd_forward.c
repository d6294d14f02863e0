/* `xvlm forward`: run the pretraining forward (and optionally backward) of a
 * model on the steps stored in an inputs file and write every intermediate
 * output, in the layout of the official golden data. This is the contract
 * for parity checks: keep names and behaviour stable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "forward_io.h"
#include "core/error.h"
#include "model/model_source.h"
#include "model/pretrain.h"
#include "xvlm.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: xvlm forward --model DIR --inputs IN.safetensors --out OUT.safetensors\n"
            "                    [--grads] [--threads N] [--seed S]\n"
            "\n"
            "Runs the X-VLM pretraining forward pass, in eval mode (dropout and drop-path off),\n"
            "for every step stored in IN and writes its outputs to OUT (float32).\n"
            "\n"
            "  --model DIR   folder with config.json (project layout or see `xvlm convert`) and\n"
            "                weights.safetensors (official state_dict names; both text layouts),\n"
            "                or an official PyTorch checkpoint (.th/.pth), converted once into a cache\n"
            "  --inputs IN   steps, one per prefix P such that P + \"image\" exists (e.g. \"image.\"\n"
            "                and \"region.\"); integer tensors may be I64 or I32:\n"
            "                  P.image F32 [N,3,R,R]   P.text_ids, P.text_atts, P.text_ids_masked [B,L]\n"
            "                  P.masked_pos, P.masked_ids [B,M] (-100 = padding slot)\n"
            "                  P.itm_neg_image_idx, P.itm_neg_text_idx [B] (ITM negatives; drawn with\n"
            "                  --seed when absent, and then written to OUT under the same names)\n"
            "                region steps add P.idx_to_group_img [B], P.image_atts [B,1+P],\n"
            "                  and for the box losses P.target_bbox F32 [B,4], P.is_image [B]\n"
            "  --out OUT     P.vision_embeds, P.swin_stage<s> (first image), P.text_embedding_output,\n"
            "                P.text_embeds, P.image_feat, P.text_feat, P.sim_i2t, P.itm_cross_cls,\n"
            "                P.itm_logits, P.mlm_logits, P.loss_itc, P.loss_itm, P.loss_mlm, P.loss_total;\n"
            "                region steps also P.region_vision_embeds, P.vision_embeds_fullatts and,\n"
            "                with targets, P.bbox_cross_cls, P.bbox_pred, P.loss_bbox, P.loss_giou\n"
            "  --grads       also backpropagate loss_total and write P.grad.<name> for every\n"
            "                parameter under its state_dict name (tied names repeated; zeros where\n"
            "                the step does not reach a parameter)\n"
            "  --threads N   threads (default: all cores); results are deterministic for a given N\n"
            "  --seed S      seed for ITM negatives when IN does not give them (default 0)\n"
            "  --block-num L Grad-CAM layer (or the input gradcam.block_num)\n"
            "\n"
            "Task models run their steps instead (names as shared/fixtures/README.md):\n"
            "  NLVR2 (cls_head): nlvr.images [2B,3,R,R], nlvr.text_ids, nlvr.text_atts, nlvr.targets [B]\n"
            "  text assignment (ta_head): ta.text_ids, ta.text_atts [N,L] on ta.images (or nlvr.images),\n"
            "    pairs ta.left_idx, ta.right_idx, ta.labels [N] (drawn with --seed when absent)\n"
            "  retrieval model: Grad-CAM gradcam.text_ids, gradcam.text_atts with image [B,3,R,R]\n"
            "    (+ gradcam.image_hw [B,2], gradcam.dets [B,K,4], gradcam.gt_box [B,4], gradcam.splits [B]\n"
            "    0 val / 1 testA / 2 testB: boxes, IoU, accuracies), weak-supervision step train.idx [B]\n"
            "    (+ train.itm_neg_image_idx, train.itm_neg_text_idx), box domain pretraining\n"
            "    bbox_pretrain.text_ids, text_atts, idx_to_group_img, target_bbox, is_image\n"
            "\n"
            "The temperature is clamped to the pretraining range before each step, as the\n"
            "official pretraining forward does. Exit status: 0 ok, 1 runtime error, 2 usage.\n");
}

typedef struct {
    const xv_st_file *in;
    const char *prefix;
    xv_graph *g;
} step_inputs;

/* A graph tensor holding input prefix + `name` (NULL if absent and optional). */
static xv_status load(const step_inputs *s, const char *name, bool f32, bool required, xv_tensor **out) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    return xv_forward_input(s->in, s->g, full, f32, required, out);
}

/* Stage outputs of the first image only, as the golden data stores them. */
static xv_status put_first(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t) {
    if (!t || t->shape[0] < 1) return XV_OK;
    int64_t shape[XV_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = 1;
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return xv_st_writer_add(w, full, XV_ST_F32, shape, t->ndim, t->data, false);
}

static xv_status run_step(xv_model *m, const xv_st_file *in, const char *prefix, bool grads, uint64_t seed,
                          xv_st_writer *w) {
    xv_graph *g = xv_graph_new(0);
    if (!g) return XV_ERR_NOMEM;
    xv_graph_set_grad(g, grads);
    xv_graph_set_training(g, false);
    xv_graph_set_free_used_grads(g, true); /* the outputs written are values and parameter gradients */
    step_inputs s = {in, prefix, g};
    xv_pretrain_batch b = {0};
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    b.rng = &rng;
    xv_pretrain_out o;
    xv_status st = XV_OK;
#define LOAD(field, name, f32, req) \
    if (st == XV_OK) st = load(&s, name, f32, req, &b.field)
    LOAD(image, "image", true, true);
    LOAD(text_ids, "text_ids", false, true);
    LOAD(text_atts, "text_atts", false, true);
    LOAD(text_ids_masked, "text_ids_masked", false, true);
    LOAD(masked_pos, "masked_pos", false, true);
    LOAD(masked_ids, "masked_ids", false, true);
    LOAD(image_atts, "image_atts", false, false);
    LOAD(idx_to_group_img, "idx_to_group_img", false, false);
    LOAD(target_bbox, "target_bbox", true, false);
    LOAD(is_image, "is_image", false, false);
    LOAD(neg_image_idx, "itm_neg_image_idx", false, false);
    LOAD(neg_text_idx, "itm_neg_text_idx", false, false);
#undef LOAD
    if (st == XV_OK) st = xv_pretrain_forward(g, m, &b, &o);
    if (st == XV_OK && grads) {
        xv_params_zero_grad(&m->params);
        st = xv_backward(g, o.loss_total);
    }
    if (st == XV_OK) {
        const struct {
            const char *name;
            xv_tensor *t;
        } outs[] = {
            {"vision_embeds", o.vision_embeds},
            {"region_vision_embeds", o.region_vision_embeds},
            {"vision_embeds_fullatts", o.vision_embeds_fullatts},
            {"text_embedding_output", o.text_embedding_output},
            {"text_embeds", o.text_embeds},
            {"image_feat", o.image_feat},
            {"text_feat", o.text_feat},
            {"sim_i2t", o.sim_i2t},
            {"itm_cross_cls", o.itm_cross_cls},
            {"itm_logits", o.itm_logits},
            {"mlm_logits", o.mlm_logits},
            {"bbox_cross_cls", o.bbox_cross_cls},
            {"bbox_pred", o.bbox_pred},
            {"loss_itc", o.loss_itc},
            {"loss_itm", o.loss_itm},
            {"loss_mlm", o.loss_mlm},
            {"loss_bbox", o.loss_bbox},
            {"loss_giou", o.loss_giou},
            {"loss_total", o.loss_total},
            {"itm_neg_image_idx", b.neg_image_idx ? NULL : o.neg_image_idx}, /* only when drawn here */
            {"itm_neg_text_idx", b.neg_text_idx ? NULL : o.neg_text_idx},
        };
        for (size_t i = 0; st == XV_OK && i < sizeof outs / sizeof *outs; i++)
            st = xv_forward_put(w, prefix, outs[i].name, outs[i].t);
        for (int k = 0; st == XV_OK && k < m->cfg.vision.n_stages; k++) {
            char name[32];
            snprintf(name, sizeof name, "swin_stage%d", k);
            st = put_first(w, prefix, name, o.swin_stage[k]);
        }
        if (st == XV_OK && grads) st = xv_forward_put_grads(w, prefix, &m->params);
        if (st == XV_OK) {
            printf("%-8s loss_itc %.6f  loss_itm %.6f  loss_mlm %.6f", prefix, o.loss_itc->data[0],
                   o.loss_itm->data[0], o.loss_mlm->data[0]);
            if (o.loss_bbox) printf("  loss_bbox %.6f  loss_giou %.6f", o.loss_bbox->data[0], o.loss_giou->data[0]);
            printf("  loss_total %.6f\n", o.loss_total->data[0]);
        }
    }
    xv_graph_free(g);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step %s", prefix);
}

/* An integer in [0, 4096] for option `opt`; false (message printed) otherwise. */
static bool small_int(const char *arg, const char *opt, int *out) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || end == arg || v < 0 || v > 4096) {
        fprintf(stderr, "xvlm forward: %s expects an integer in [0, 4096], got '%s'\n", opt, arg);
        return false;
    }
    *out = (int)v;
    return true;
}

int xv_cmd_forward(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    const char *model_dir = NULL, *in_path = NULL, *out_path = NULL;
    bool grads = false;
    int threads = 0, block_num = -1;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--model") && has) model_dir = argv[++i];
        else if (!strcmp(a, "--inputs") && has) in_path = argv[++i];
        else if (!strcmp(a, "--out") && has) out_path = argv[++i];
        else if (!strcmp(a, "--threads") && has) {
            if (!small_int(argv[++i], "--threads", &threads)) return 2;
        } else if (!strcmp(a, "--seed") && has) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || argv[i][0] == '-') {
                fprintf(stderr, "xvlm forward: --seed expects a non-negative integer, got '%s'\n", argv[i]);
                return 2;
            }
        }
        else if (!strcmp(a, "--block-num") && has) {
            if (!small_int(argv[++i], "--block-num", &block_num)) return 2;
        }
        else if (!strcmp(a, "--grads")) grads = true;
        else {
            fprintf(stderr, "xvlm forward: unknown or incomplete option '%s'\n\n", a);
            help(stderr);
            return 2;
        }
    }
    if (!model_dir || !in_path || !out_path) {
        fprintf(stderr, "xvlm forward: --model, --inputs and --out are required\n\n");
        help(stderr);
        return 2;
    }
    xvlm_set_threads(threads);

    xv_model *m = NULL;
    xv_st_file *in = NULL;
    xv_st_writer *w = NULL;
    xv_status st = xv_model_open(model_dir, false, &m);
    if (st == XV_OK) st = xv_st_open(in_path, &in);
    if (st == XV_OK) st = xv_st_writer_new(&w);
    int steps = 0, task_steps = 0;
    /* Task steps (NLVR2, Grad-CAM, ...: forward_io.c) replace the pretraining steps. */
    if (st == XV_OK) st = xv_forward_tasks(m, in, grads, seed, block_num, w, &task_steps);
    for (int i = 0; st == XV_OK && !task_steps && i < xv_st_count(in); i++) {
        const char *name = xv_st_at(in, i)->name;
        size_t n = strlen(name);
        /* A step is a prefix P ("" or ending in '.') with a tensor P + "image". */
        if (n < 5 || strcmp(name + n - 5, "image") || (n > 5 && name[n - 6] != '.')) continue;
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(n - 5), name);
        st = run_step(m, in, prefix, grads, seed, w);
        steps++;
    }
    if (st == XV_OK && steps + task_steps == 0)
        st = xv_error(XV_ERR_MISSING, "%s: no step found (no tensor named \"image\" or \"<prefix>.image\")", in_path);
    if (st == XV_OK) st = xv_st_writer_write(w, out_path);
    xv_st_writer_free(w);
    xv_st_close(in);
    xv_model_free(m);
    if (st != XV_OK) {
        fprintf(stderr, "xvlm forward: %s\n", xvlm_last_error());
        return 1;
    }
    return 0;
}
