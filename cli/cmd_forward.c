/* `xvlm forward`: run the pretraining forward (and optionally backward) of a
 * model on the steps stored in an inputs file and write every intermediate
 * output, in the layout of the official golden data. This is the contract
 * for parity checks: keep names and behaviour stable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward_gen.h"
#include "forward_io.h"
#include "core/error.h"
#include "dist/dist.h"
#include "model_opts.h"
#include "model/model_source.h"
#include "model/precision.h"
#include "model/pretrain.h"
#include "xvlm.h"

/* The inputs of one step, read into the arrays of a pretraining batch. Each
 * input's shape is spelled with size letters (N images, R resolution, B texts,
 * L text length, M masked slots, A image tokens) or fixed digits; a letter is
 * learnt from the first input that has it and every later one must agree, so
 * the arrays match the sizes the batch declares (the model validates the rest). */
typedef struct {
    const xv_st_file *in;
    const char *prefix;
    int64_t size[26]; /* by letter; 0 = not known yet */
    void *owned[16];
    int n_owned;
} step_inputs;

static void step_inputs_free(step_inputs *s) {
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
}

static xv_status check_shape(step_inputs *s, const char *name, const xv_st_tensor *t, const char *dims) {
    const int rank = (int)strlen(dims);
    int64_t want[XV_MAX_DIMS];
    bool ok = t->ndim == rank;
    for (int d = 0; d < rank; d++) {
        int64_t *known = dims[d] >= 'A' && dims[d] <= 'Z' ? &s->size[dims[d] - 'A'] : NULL;
        if (known && *known == 0 && ok && t->shape[d] > 0 && t->shape[d] <= INT32_MAX) *known = t->shape[d];
        want[d] = known ? *known : dims[d] - '0';
        ok = ok && t->shape[d] == want[d];
    }
    if (ok) return XV_OK;
    char got[160] = "", expected[160] = "", letters[64] = "";
    for (int d = 0; d < t->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    for (int d = 0; d < rank; d++) {
        snprintf(letters + strlen(letters), sizeof letters - strlen(letters), "%s%c", d ? ", " : "", dims[d]);
        if (want[d] > 0) snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%lld",
                                  d ? ", " : "", (long long)want[d]);
        else snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%c", d ? ", " : "", dims[d]);
    }
    return xv_error(XV_ERR_SHAPE, "%s: input %s%s has shape [%s], expected [%s] = [%s] (sizes from the inputs before it)",
                    xv_st_path(s->in), s->prefix, name, got, letters, expected);
}

/* Input `name` of shape `dims` into a new array (*out NULL if absent and optional). */
static xv_status load(step_inputs *s, const char *name, const char *dims, bool f32, bool required, void **out) {
    *out = NULL;
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    const xv_st_tensor *t = xv_st_find(s->in, full);
    if (!t) {
        if (required) return xv_error(XV_ERR_MISSING, "%s: input %s is missing", xv_st_path(s->in), full);
        return XV_OK;
    }
    XV_TRY(check_shape(s, name, t, dims));
    void *v = malloc(4 * (size_t)(t->numel ? t->numel : 1)); /* float or int32 */
    if (!v || s->n_owned == (int)(sizeof s->owned / sizeof *s->owned)) {
        free(v);
        return xv_error(XV_ERR_NOMEM, "out of memory reading %s", full);
    }
    s->owned[s->n_owned++] = v;
    xv_status st = f32 ? xv_st_read_f32(s->in, t, v) : xv_st_read_i32(s->in, t, v);
    if (st != XV_OK) return xv_error_wrap(st, "%s: input %s", xv_st_path(s->in), full);
    *out = v;
    return XV_OK;
}

/* The step's inputs, in reading order: text_ids first, as it fixes B and L. */
enum { IN_TEXT_IDS, IN_IMAGE, IN_TEXT_ATTS, IN_TEXT_IDS_MASKED, IN_MASKED_POS, IN_MASKED_IDS, IN_IDX_TO_GROUP_IMG,
       IN_IMAGE_ATTS, IN_TARGET_BBOX, IN_IS_IMAGE, IN_NEG_IMAGE_IDX, IN_NEG_TEXT_IDX, N_INPUTS };
static const struct {
    const char *name, *dims;
    bool f32, required;
} k_inputs[N_INPUTS] = {
    {"text_ids", "BL", false, true},          {"image", "N3RR", true, true},
    {"text_atts", "BL", false, true},         {"text_ids_masked", "BL", false, true},
    {"masked_pos", "BM", false, true},        {"masked_ids", "BM", false, true},
    {"idx_to_group_img", "B", false, false},  {"image_atts", "BA", false, false},
    {"target_bbox", "B4", true, false},       {"is_image", "B", false, false},
    {"itm_neg_image_idx", "B", false, false}, {"itm_neg_text_idx", "B", false, false},
};

/* The step's batch and the negatives it gives (NULL where absent). */
static xv_status read_step(step_inputs *s, xv_pretrain_batch *b, xv_itm_negatives *neg) {
    void *a[N_INPUTS];
    for (int i = 0; i < N_INPUTS; i++)
        XV_TRY(load(s, k_inputs[i].name, k_inputs[i].dims, k_inputs[i].f32, k_inputs[i].required, &a[i]));
    const int64_t *z = s->size;
    *b = (xv_pretrain_batch){
        .n_images = (int)z['N' - 'A'], .res = (int)z['R' - 'A'], .image = a[IN_IMAGE],
        .n_texts = (int)z['B' - 'A'], .text_len = (int)z['L' - 'A'], .max_masks = (int)z['M' - 'A'],
        .text_ids = a[IN_TEXT_IDS], .text_atts = a[IN_TEXT_ATTS], .text_ids_masked = a[IN_TEXT_IDS_MASKED],
        .masked_pos = a[IN_MASKED_POS], .masked_ids = a[IN_MASKED_IDS],
        .idx_to_group_img = a[IN_IDX_TO_GROUP_IMG], .n_atts = (int)z['A' - 'A'], .image_atts = a[IN_IMAGE_ATTS],
        .target_bbox = a[IN_TARGET_BBOX], .is_image = a[IN_IS_IMAGE],
    };
    neg->image_idx = a[IN_NEG_IMAGE_IDX];
    neg->text_idx = a[IN_NEG_TEXT_IDX];
    return XV_OK;
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

/* prefix: the step's inputs and per-rank outputs ("rank1.region."); shared:
 * the names of what every rank holds alike, written by rank 0 only ("region.":
 * the averaged gradients, the global ITC logits). In one process both are the
 * same. */
static xv_status run_step(xv_model *m, const xv_st_file *in, const char *prefix, const char *shared, bool grads,
                          uint64_t seed, xv_st_writer *w) {
    xv_graph *g = xv_graph_new(0);
    if (!g) return XV_ERR_NOMEM;
    xv_graph_set_grad(g, grads);
    xv_graph_set_training(g, false);
    xv_graph_set_free_used_grads(g, true); /* the outputs written are values and parameter gradients */
    step_inputs s = {.in = in, .prefix = prefix};
    xv_pretrain_batch b = {0};
    xv_rng rng;
    xv_rng_seed(&rng, seed);
    xv_itm_negatives neg = {.rng = &rng};
    xv_pretrain_out o;
    xv_status st = read_step(&s, &b, &neg);
    if (st == XV_OK) st = xv_pretrain_forward(g, m, &b, &neg, &o);
    if (st == XV_OK && grads) {
        xv_params_zero_grad(&m->params);
        st = xv_dist_backward_averaged(g, o.loss_total, &m->params); /* DDP's averaging, overlapped */
    }
    const bool dist = xv_dist_world() > 1, writes_shared = xv_dist_rank() == 0;
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
            {"itm_neg_image_idx", neg.image_idx ? NULL : o.neg_image_idx}, /* only when drawn here */
            {"itm_neg_text_idx", neg.text_idx ? NULL : o.neg_text_idx},
        };
        for (size_t i = 0; st == XV_OK && i < sizeof outs / sizeof *outs; i++)
            st = xv_forward_put(w, prefix, outs[i].name, outs[i].t);
        for (int k = 0; st == XV_OK && k < m->cfg.vision.n_stages; k++) {
            char name[32];
            snprintf(name, sizeof name, "swin_stage%d", k);
            st = put_first(w, prefix, name, o.swin_stage[k]);
        }
        if (st == XV_OK && dist && writes_shared) st = xv_forward_put(w, shared, "sim_i2t_global", o.sim_i2t_global);
        if (st == XV_OK && grads && writes_shared) st = xv_forward_put_grads(w, shared, &m->params);
        if (st == XV_OK) {
            printf("%-8s loss_itc %.6f  loss_itm %.6f  loss_mlm %.6f", prefix, o.loss_itc->data[0],
                   o.loss_itm->data[0], o.loss_mlm->data[0]);
            if (o.loss_bbox) printf("  loss_bbox %.6f  loss_giou %.6f", o.loss_bbox->data[0], o.loss_giou->data[0]);
            printf("  loss_total %.6f\n", o.loss_total->data[0]);
        }
    }
    xv_graph_free(g);
    step_inputs_free(&s);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "step %s", prefix);
}

/* Whether `name` is P + "image" with P = "" or ending in '.', and P starts
 * with `mine`: then prefix gets P. */
static bool step_prefix(const char *name, const char *mine, char *prefix, size_t cap) {
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, "image") || (n > 5 && name[n - 6] != '.')) return false;
    if (strncmp(name, mine, strlen(mine)) || n - 5 >= cap) return false;
    snprintf(prefix, cap, "%.*s", (int)(n - 5), name);
    return true;
}

/* This rank's step count; over several ranks every rank must have the same
 * (each step's ITC gathers from all of them). */
static xv_status count_steps(const xv_st_file *in, const char *mine, int *steps) {
    char prefix[256];
    *steps = 0;
    for (int i = 0; i < xv_st_count(in); i++) *steps += step_prefix(xv_st_at(in, i)->name, mine, prefix, sizeof prefix);
    const int world = xv_dist_world();
    if (world == 1) return XV_OK;
    int32_t *all = malloc(sizeof *all * (size_t)world);
    if (!all) return xv_error(XV_ERR_NOMEM, "out of memory");
    const int32_t n = *steps;
    xv_status st = xv_dist_allgather(&n, all, sizeof n);
    for (int r = 0; st == XV_OK && r < world; r++)
        if (all[r] != n)
            st = xv_error(XV_ERR_MISSING, "%s: rank %d has %d steps (\"rank%d.P.image\"), rank %d has %d: every rank "
                                          "needs the same steps", xv_st_path(in), r, all[r], r, xv_dist_rank(), n);
    free(all);
    return st;
}

/* Over several ranks, rank 0's writer receives every other rank's outputs
 * (their names carry their rank prefix). */
static xv_status gather_outputs(xv_st_writer *w) {
    const int world = xv_dist_world();
    if (world == 1) return XV_OK;
    void *mem = NULL, *all = NULL;
    size_t len = 0;
    size_t *lens = calloc((size_t)world, sizeof *lens);
    xv_status st = lens ? xv_st_writer_to_memory(w, &mem, &len) : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = xv_dist_gather_bytes(mem, len, &all, lens);
    size_t off = lens && xv_dist_rank() == 0 ? lens[0] : 0;
    for (int r = 1; st == XV_OK && all && r < world; off += lens[r], r++) {
        xv_st_file *f = NULL;
        char label[32];
        snprintf(label, sizeof label, "outputs of rank %d", r);
        st = xv_st_open_memory((char *)all + off, lens[r], label, &f);
        for (int i = 0; st == XV_OK && i < xv_st_count(f); i++) {
            const xv_st_tensor *t = xv_st_at(f, i);
            st = xv_st_writer_add(w, t->name, t->dtype, t->shape, t->ndim, t->data, false);
        }
        xv_st_close(f);
    }
    free(mem), free(all), free(lens);
    return st;
}

int xv_cmd_forward(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    const char *in_path = NULL, *out_path = NULL;
    bool grads = false;
    uint64_t seed = 0;
    int block_num = -1, k = 0;
    const xv_opt opts[] = {
        XV_OPT_MODEL(&mo),
        {.name = "--inputs", .kind = XV_OPT_STRING, .dest = &in_path, .value = "IN", .required = true,
         .help = "steps, one per prefix P such that P + \"image\" exists (e.g. \"image.\"\n"
                 "and \"region.\"); integer tensors may be I64 or I32:\n"
                 "  P.image F32 [N,3,R,R]   P.text_ids, P.text_atts, P.text_ids_masked [B,L]\n"
                 "  P.masked_pos, P.masked_ids [B,M] (-100 = padding slot)\n"
                 "  P.itm_neg_image_idx, P.itm_neg_text_idx [B] (ITM negatives; drawn with\n"
                 "  --seed when absent, and then written to OUT under the same names)\n"
                 "region steps add P.idx_to_group_img [B], P.image_atts [B,1+P],\n"
                 "  and for the box losses P.target_bbox F32 [B,4], P.is_image [B]"},
        XV_OPT_OUT(&out_path, "OUT",
                   "P.vision_embeds, P.swin_stage<s> (first image), P.text_embedding_output,\n"
                   "P.text_embeds, P.image_feat, P.text_feat, P.sim_i2t, P.itm_cross_cls,\n"
                   "P.itm_logits, P.mlm_logits, P.loss_itc, P.loss_itm, P.loss_mlm, P.loss_total;\n"
                   "region steps also P.region_vision_embeds, P.vision_embeds_fullatts and,\n"
                   "with targets, P.bbox_cross_cls, P.bbox_pred, P.loss_bbox, P.loss_giou",
                   true),
        {.name = "--grads", .kind = XV_OPT_FLAG, .dest = &grads,
         .help = "also backpropagate loss_total and write P.grad.<name> for every\n"
                 "parameter under its state_dict name (tied names repeated; zeros where\n"
                 "the step does not reach a parameter)"},
        XV_OPT_SEED(&seed, "the ITM negatives when IN does not give them"),
        {.name = "--block-num", .kind = XV_OPT_INT, .dest = &block_num, .value = "L", .lo = 0, .hi = 4096,
         .help = "Grad-CAM layer (default: the input gradcam.block_num)"},
        {.name = "--k", .kind = XV_OPT_INT, .dest = &k, .value = "K", .lo = 1, .hi = 1 << 20,
         .help = "VQA: candidates re-ranked per question (default: config.json\n"
                 "task_config.k_test, else min(128, answers))"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "forward",
        .usage = "xvlm forward --model M --inputs IN.safetensors --out OUT.safetensors [--grads]\n"
                 "                    [--threads N] [--seed S]",
        .about = "Runs the X-VLM pretraining forward pass, in eval mode (dropout and drop-path off),\n"
                 "for every step stored in IN and writes its outputs to OUT (float32). M is a folder\n"
                 "with config.json (project layout or see `xvlm convert`) and weights.safetensors\n"
                 "(official state_dict names; both text layouts), or an official checkpoint.\n",
        .opts = opts,
        .footer = "Task models run their steps instead (names as the official golden data's):\n"
                  "  NLVR2 (cls_head): nlvr.images [2B,3,R,R], nlvr.text_ids, nlvr.text_atts, nlvr.targets [B]\n"
                  "  text assignment (ta_head): ta.text_ids, ta.text_atts [N,L] on ta.images (or nlvr.images),\n"
                  "    pairs ta.left_idx, ta.right_idx, ta.labels [N] (drawn with --seed when absent)\n"
                  "  retrieval model: Grad-CAM gradcam.text_ids, gradcam.text_atts with image [B,3,R,R]\n"
                  "    (+ gradcam.image_hw [B,2], gradcam.dets [B,K,4], gradcam.gt_box [B,4], gradcam.splits [B]\n"
                  "    0 val / 1 testA / 2 testB: boxes, IoU, accuracies), weak-supervision step train.idx [B]\n"
                  "    (+ train.itm_neg_image_idx, train.itm_neg_text_idx), box domain pretraining\n"
                  "    bbox_pretrain.text_ids, text_atts, idx_to_group_img, target_bbox, is_image\n"
                  "  VQA (text_decoder.* and text_encoder.*): train.image, train.question_ids/atts,\n"
                  "    train.answer_ids/atts, train.answer_weights, train.answers_per_question; ranking\n"
                  "    eval.question_ids/atts, eval.answer_ids/atts on eval.image or train.image rows eval.image_index\n"
                  "  captioning (text_decoder.* only): train.image, train.text_ids/atts (+ train.labels),\n"
                  "    pretrain.text_ids/atts, generation gen.prompt_ids on gen.image or train.image rows\n"
                  "    gen.image_index (beam search from config.json task_config, gen.beam2 3/18/14 unless\n"
                  "    gen.<name>.settings [beams, max_length, min_length]), SCST scst.forced_tokens\n"
                  "    (CIDEr-D references: config.json info.scst)\n"
                  "\n"
                  "Under mpirun (docs/distributed.md) rank r runs the pretraining steps \"rank<r>.P\",\n"
                  "every rank the same number; ITC gathers the features of all ranks, --grads writes\n"
                  "the gradients averaged over the ranks as P.grad.<name> and the global ITC logits as\n"
                  "P.sim_i2t_global; rank 0 writes OUT with every rank's outputs.\n"
                  "\n"
                  "The temperature is clamped to the pretraining range before each step, as the\n"
                  "official pretraining forward does. Exit status: 0 ok, 1 runtime error, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_set_threads(mo.threads);
    /* The same opening policy as xvlm_model_load (model/model_source.h), without
     * the vocabulary: this command reads token ids, not text. */
    const xv_infer_opts infer = {.image_res = mo.params.image_res, .text_heads = mo.params.text_heads};

    xv_model *m = NULL;
    xv_vqa_model *vqa = NULL;
    xv_caption_model *cap = NULL;
    xv_st_file *in = NULL;
    xv_st_writer *w = NULL;
    xv_model_kind kind;
    char dir[4096];
    xv_status st = xv_model_kind_of(mo.model, &infer, &kind, dir, sizeof dir);
    if (st == XV_OK && kind == XV_KIND_VQA) st = xv_vqa_open(mo.model, &infer, false, &vqa);
    else if (st == XV_OK && kind == XV_KIND_CAPTIONING) st = xv_caption_open(mo.model, &infer, false, &cap);
    else if (st == XV_OK) st = xv_model_open(mo.model, &infer, false, &m);
    if (st == XV_OK) {
        xv_precision prec = xv_cli_model_params(&mo).precision == XVLM_BF16 ? XV_PRECISION_BF16 : XV_PRECISION_FP32;
        st = xv_params_set_precision(m ? &m->params : vqa ? &vqa->params : &cap->params, prec);
    }
    if (st == XV_OK) st = xv_st_open(in_path, &in);
    if (st == XV_OK) st = xv_st_writer_new(&w);
    int steps = 0, task_steps = 0;
    /* Task steps (NLVR2, Grad-CAM, ...: forward_io.c; VQA, captioning:
     * forward_gen.c) replace the pretraining steps. */
    if (st == XV_OK && vqa) st = xv_forward_vqa(vqa, dir, in, grads, k, w, &task_steps);
    else if (st == XV_OK && cap) st = xv_forward_captioning(cap, dir, in, grads, w, &task_steps);
    else if (st == XV_OK && xv_dist_world() == 1) st = xv_forward_tasks(m, in, grads, seed, block_num, w, &task_steps);
    char mine[32] = ""; /* over several ranks, rank r runs the steps "rank<r>.P" */
    if (xv_dist_world() > 1) snprintf(mine, sizeof mine, "rank%d.", xv_dist_rank());
    if (st == XV_OK && m && !task_steps) st = count_steps(in, mine, &steps);
    for (int i = 0; st == XV_OK && m && !task_steps && i < xv_st_count(in); i++) {
        char prefix[256];
        if (!step_prefix(xv_st_at(in, i)->name, mine, prefix, sizeof prefix)) continue;
        /* the negatives' seed per rank, as Pretrain.py seeds seed + rank */
        st = run_step(m, in, prefix, prefix + strlen(mine), grads, seed + (uint64_t)xv_dist_rank(), w);
    }
    if (st == XV_OK && steps + task_steps == 0)
        st = m ? xv_error(XV_ERR_MISSING, "%s: no step found (no tensor named \"%simage\" or \"%s<prefix>.image\")",
                          in_path, mine, mine)
               : xv_error(XV_ERR_MISSING, "%s: no step for %s found (see --help for the input names)", in_path,
                          xv_model_kind_name(kind));
    if (st == XV_OK) st = gather_outputs(w);
    if (st == XV_OK && xv_dist_rank() == 0) st = xv_st_writer_write(w, out_path);
    xv_st_writer_free(w);
    xv_st_close(in);
    xv_model_free(m);
    xv_vqa_free(vqa);
    xv_caption_free(cap);
    if (st != XV_OK) {
        fprintf(stderr, "xvlm forward: %s\n", xv_error_message());
        return 1;
    }
    return 0;
}
