/* `xvlm forward`: run the pretraining forward (and optionally backward) of a
 * model on the steps stored in an inputs file and write every intermediate
 * output, in the layout of the official golden data. This is the contract
 * for parity checks: keep names and behaviour stable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
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
            "\n"
            "The temperature is clamped to the pretraining range before each step, as the\n"
            "official pretraining forward does. Exit status: 0 ok, 1 runtime error, 2 usage.\n");
}

typedef struct {
    const xv_st_file *in;
    const char *prefix;
    xv_graph *g;
} step_inputs;

static const xv_st_tensor *find(const step_inputs *s, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    return xv_st_find(s->in, full);
}

/* A graph tensor holding input `name` (NULL if absent and optional). */
static xv_status load(const step_inputs *s, const char *name, bool f32, bool required, xv_tensor **out) {
    *out = NULL;
    const xv_st_tensor *t = find(s, name);
    if (!t) {
        if (required) return xv_error(XV_ERR_MISSING, "%s: input %s%s is missing", xv_st_path(s->in), s->prefix, name);
        return XV_OK;
    }
    if (t->ndim > XV_MAX_DIMS)
        return xv_error(XV_ERR_SHAPE, "%s: input %s%s has rank %d", xv_st_path(s->in), s->prefix, name, t->ndim);
    xv_tensor *x = xv_tensor_new(s->g, f32 ? XV_F32 : XV_I32, t->shape, t->ndim);
    if (!x) return xv_graph_status(s->g);
    xv_status st = f32 ? xv_st_read_f32(s->in, t, x->data) : xv_st_read_i32(s->in, t, x->idata);
    if (st != XV_OK) return xv_error_wrap(st, "%s: input %s%s", xv_st_path(s->in), s->prefix, name);
    *out = x;
    return XV_OK;
}

static xv_status put(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t) {
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

static xv_status write_grads(xv_st_writer *w, const char *prefix, const xv_params *p) {
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
            st = put(w, prefix, outs[i].name, outs[i].t);
        for (int k = 0; st == XV_OK && k < m->cfg.vision.n_stages; k++) {
            char name[32];
            snprintf(name, sizeof name, "swin_stage%d", k);
            st = put_first(w, prefix, name, o.swin_stage[k]);
        }
        if (st == XV_OK && grads) st = write_grads(w, prefix, &m->params);
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

int xv_cmd_forward(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    const char *model_dir = NULL, *in_path = NULL, *out_path = NULL;
    bool grads = false;
    int threads = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--model") && has) model_dir = argv[++i];
        else if (!strcmp(a, "--inputs") && has) in_path = argv[++i];
        else if (!strcmp(a, "--out") && has) out_path = argv[++i];
        else if (!strcmp(a, "--threads") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 4096) {
                fprintf(stderr, "xvlm forward: --threads expects a count >= 0, got '%s'\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        } else if (!strcmp(a, "--seed") && has) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || argv[i][0] == '-') {
                fprintf(stderr, "xvlm forward: --seed expects a non-negative integer, got '%s'\n", argv[i]);
                return 2;
            }
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
    int steps = 0;
    for (int i = 0; st == XV_OK && i < xv_st_count(in); i++) {
        const char *name = xv_st_at(in, i)->name;
        size_t n = strlen(name);
        /* A step is a prefix P ("" or ending in '.') with a tensor P + "image". */
        if (n < 5 || strcmp(name + n - 5, "image") || (n > 5 && name[n - 6] != '.')) continue;
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(n - 5), name);
        st = run_step(m, in, prefix, grads, seed, w);
        steps++;
    }
    if (st == XV_OK && steps == 0)
        st = xv_error(XV_ERR_MISSING, "%s: no step found (no tensor named \"image\" or \"<prefix>.image\")", in_path);
    if (st == XV_OK) st = xv_st_writer_write(w, out_path);
    xv_st_writer_free(w);
    xv_st_close(in);
    xv_model_free(m);
    if (st != XV_OK) {
        fprintf(stderr, "xvlm forward: %s\n", xv_error_message());
        return 1;
    }
    return 0;
}
