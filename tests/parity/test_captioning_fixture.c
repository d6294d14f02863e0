/* Parity of the captioning model (model/captioning.h, model/generate.h) with
 * the official models/model_captioning.py (+ _pretrain) on
 * shared/fixtures/captioning: the fine-tuning step (label-smoothed LM loss
 * and its gradients), the domain-pretraining loss, beam search with its step
 * trace, the official greedy loop, transformers' greedy search, and the SCST
 * step (sampled with the fixture's forced tokens; CIDEr-D values taken from
 * the fixture as the rewards' input).
 *
 * Tolerances (fixtures/README.md): forward values and losses ≤
 * 1e-5·max(1, max|ref|), gradients ≤ 1e-4·max(1, max|ref|), generated ids and
 * every other integer exact (each ranking decision of the fixture is at least
 * 5e-4 from a tie, far above fp32 rounding). */
#include <stdio.h>

#include "fixture_compare.h"
#include "model/captioning.h"
#include "model/model.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define PROMPT_LEN 10 /* info.prompt_length: "[CLS] a p ##i ##c ##t ##u ##r ##e of" */

static void train_step(xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, fx_input(g, in, "train.image", true), NULL);
    xv_tensor *ids = fx_input(g, in, "train.text_ids", false), *atts = fx_input(g, in, "train.text_atts", false);
    xv_tensor *labels = xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, PROMPT_LEN);
    fx_values(in, "train.labels", NULL, labels ? labels->idata : NULL, labels ? labels->numel : 0, 0);
    xv_caption_lm_out o, plain;
    xv_tensor *loss = xv_caption_lm_loss(g, m, vis, ids, atts, labels, 0.1f, &o);
    CHECK(loss != NULL, "fine-tuning loss: %s", xvlm_last_error());
    xv_graph_set_grad(g, false);
    xv_caption_lm_loss(g, m, vis, ids, atts, labels, 0.0f, &plain);
    xv_graph_set_grad(g, true);
    if (loss) {
        fx_tensor(ref, "train.vision_embeds", vis, FWD_TOL);
        fx_tensor(ref, "train.decoder_hidden", o.hidden, FWD_TOL);
        fx_tensor(ref, "train.logits", o.logits, FWD_TOL);
        fx_tensor(ref, "train.token_loss", o.token_loss, FWD_TOL);
        fx_tensor(ref, "train.loss", o.loss, FWD_TOL);
        fx_tensor(ref, "train.loss_without_smoothing", plain.loss, FWD_TOL);
        fx_section("captioning train forward");
        CHECK_OK(xv_backward(g, loss));
        fx_grad(ref, "train.grad.vision_embeds", vis, GRAD_TOL);
        int n = fx_param_grads(ref, "train.grad.", "text_decoder.", &m->params, GRAD_TOL);
        /* 16 tensors per layer without cross-attention, 26 with; 5 embedding
         * and 5 head tensors; 2 tied names. */
        const xv_bert_config *c = &m->cfg.text;
        CHECK(n == c->fusion_layer * 16 + (c->layers - c->fusion_layer) * 26 + 12,
              "%d decoder parameter gradients compared", n);
        fx_section("captioning train gradients");
    }
    xv_graph_reset(g);
    xv_graph_set_grad(g, false);
    vis = xv_vision_embeds(g, &m->vision, fx_input(g, in, "train.image", true), NULL);
    ids = fx_input(g, in, "pretrain.text_ids", false);
    xv_caption_lm_out p;
    xv_caption_lm_loss(g, m, vis, ids, fx_input(g, in, "pretrain.text_atts", false),
                       xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, 0), 0.0f, &p);
    fx_tensor(ref, "pretrain.token_nll", p.token_loss, FWD_TOL);
    fx_tensor(ref, "pretrain.loss", p.loss, FWD_TOL);
    fx_section("captioning domain pretraining");
    xv_graph_free(g);
}

/* Image rows repeated n times each (repeat_interleave). */
static xv_tensor *repeat_rows(xv_graph *g, xv_tensor *x, int n) {
    if (!x) return NULL;
    xv_tensor *idx = xv_tensor_new(g, XV_I32, XV_SHAPE(x->shape[0] * n));
    for (int64_t i = 0; idx && i < idx->numel; i++) idx->idata[i] = (int32_t)(i / n);
    return xv_gather_rows(g, x, idx);
}

static void beam(const xv_caption_model *m, xv_graph *g, xv_tensor *vis, xv_tensor *prompt, const xv_st_file *ref,
                 const char *name, int max_length, int min_length) {
    xv_beam_opts o = {.num_beams = 3, .max_length = max_length, .min_length = min_length, .length_penalty = 1.0f};
    xv_lm_source src = xv_caption_source(m, repeat_rows(g, vis, o.num_beams));
    xv_beam_result r;
    CHECK_OK(xv_beam_search(g, &src, prompt, &o, &r));
    char key[128];
#define BEAM_CHECK(field, tol) \
    (snprintf(key, sizeof key, "gen.%s.%s", name, #field), fx_tensor(ref, key, r.field, tol))
    BEAM_CHECK(sequences, 0);
    BEAM_CHECK(sequence_scores, FWD_TOL);
    BEAM_CHECK(cand_scores, FWD_TOL);
    BEAM_CHECK(cand_tokens, 0);
    BEAM_CHECK(cand_beam, 0);
    BEAM_CHECK(beam_scores, FWD_TOL);
    BEAM_CHECK(beam_tokens, 0);
    BEAM_CHECK(beam_rows, 0);
#undef BEAM_CHECK
}

static void generation(const xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *images = xv_gather_rows(g, fx_input(g, in, "train.image", true), fx_input(g, in, "gen.image_index", false));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, images, NULL);
    xv_tensor *prompt = fx_input(g, in, "gen.prompt_ids", false);
    xv_lm_source src = xv_caption_source(m, vis);
    xv_tensor *rows = repeat_rows(g, prompt, (int)vis->shape[0]);
    fx_tensor(ref, "gen.first_step_logits", xv_lm_next_logits(g, &src, rows), FWD_TOL);
    beam(m, g, vis, prompt, ref, "beam", 20, 5);
    beam(m, g, vis, prompt, ref, "beam2", 18, 14);
    xv_tensor *lp = NULL;
    fx_tensor(ref, "gen.greedy.sequences", xv_oscar_generate(g, &src, prompt, 20, NULL, &lp, NULL), 0);
    fx_tensor(ref, "gen.greedy.mean_logprob", lp, FWD_TOL);
    fx_tensor(ref, "gen.hf_greedy.sequences", xv_greedy_search(g, &src, prompt, 20, 5), 0);
    fx_section("captioning generation");
    xv_graph_free(g);
}

static void scst(xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    const int n = 3; /* info.scst.sample_n */
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *images = xv_gather_rows(g, fx_input(g, in, "train.image", true), fx_input(g, in, "gen.image_index", false));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, images, NULL), *vis_n = repeat_rows(g, vis, n);
    xv_tensor *prompt = fx_input(g, in, "gen.prompt_ids", false);
    xv_lm_source src = xv_caption_source(m, vis), src_n = xv_caption_source(m, vis_n);
    fx_tensor(ref, "scst.greedy_sequences", xv_oscar_generate(g, &src, prompt, 20, NULL, NULL, NULL), 0);
    xv_tensor *lp = NULL, *chosen = NULL;
    xv_tensor *samples = xv_oscar_generate(g, &src_n, prompt, 20, fx_input(g, in, "scst.forced_tokens", false), &lp,
                                           &chosen);
    fx_tensor(ref, "scst.sample_sequences", samples, 0);
    const xv_st_tensor *cider = xv_st_find(ref, "scst.cider_d");
    const int64_t R = vis_n ? vis_n->shape[0] : 0;
    CHECK(cider && cider->dtype == XV_ST_F64 && cider->numel == R + R / n, "scst.cider_d F64 [samples + images]");
    if (!cider || !samples || !chosen || cider->numel != R + R / n) {
        xv_graph_free(g);
        return;
    }
    double d[64];
    memcpy(d, cider->data, sizeof(double) * (size_t)cider->numel);
    float reward[64];
    for (int64_t r = 0; r < R; r++) reward[r] = (float)(d[r] - d[R + r / n]); /* sample minus its image's greedy */
    xv_graph *gg = xv_graph_new(0); /* recording; reads the encoder states of g */
    xv_params_zero_grad(&m->params);
    xv_tensor *tf_lp = NULL;
    xv_tensor *loss = xv_caption_scst_loss(gg, m, vis_n, samples, PROMPT_LEN, chosen, reward, &tf_lp);
    CHECK(loss != NULL, "SCST loss: %s", xvlm_last_error());
    fx_tensor(ref, "scst.sample_mean_logprob", lp, FWD_TOL);
    fx_tensor(ref, "scst.sample_mean_logprob", tf_lp, FWD_TOL);
    fx_tensor(ref, "scst.loss", loss, FWD_TOL);
    if (loss) {
        CHECK_OK(xv_backward(gg, loss));
        int k = fx_param_grads(ref, "scst.grad.", "text_decoder.", &m->params, GRAD_TOL);
        CHECK(k == 3, "%d SCST gradients compared (the fixture holds 3)", k);
    }
    fx_section("captioning SCST");
    xv_graph_free(gg);
    xv_graph_free(g);
}

int main(void) {
    char dir[1024];
    xv_st_file *in, *ref;
    if (!fx_open("captioning", dir, sizeof dir, &in, &ref)) return xv_test_skip("fixtures absent");
    xv_caption_model *m = NULL;
    CHECK_OK(xv_caption_load_dir(dir, false, &m));
    if (m && in && ref) {
        train_step(m, in, ref);
        generation(m, in, ref);
        scst(m, in, ref);
    }
    xv_st_close(in);
    xv_st_close(ref);
    xv_caption_free(m);
    return xv_test_finish("test_captioning_fixture");
}
