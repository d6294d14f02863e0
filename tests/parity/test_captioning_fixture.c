/* Parity of the captioning model (model/captioning.h, model/generate.h) with
 * the official models/model_captioning.py (+ _pretrain) on
 * shared/fixtures/captioning: the fine-tuning step (label-smoothed LM loss
 * and its gradients), the domain-pretraining loss, beam search with its step
 * trace, the official greedy loop, transformers' greedy search, and the SCST
 * step (sampled with the fixture's forced tokens; CIDEr-D values taken from
 * the fixture). Captions decoded from the generated ids must equal the
 * official strings (config.json info.*), and CIDEr-D of the decoded SCST
 * captions must equal scst.cider_d; the SCST rewards are made from our own
 * CIDEr-D values.
 *
 * Tolerances (fixtures/README.md): forward values and losses ≤
 * 1e-5·max(1, max|ref|), gradients ≤ 1e-4·max(1, max|ref|), generated ids and
 * every other integer exact (each ranking decision of the fixture is at least
 * 5e-4 from a tie, far above fp32 rounding); CIDEr-D ≤ 1e-9 (double arithmetic). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/detokenize.h"
#include "golden.h"
#include "model/captioning.h"
#include "model/model.h"
#include "tasks/cider.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define PROMPT_LEN 10 /* info.prompt_length: "[CLS] a p ##i ##c ##t ##u ##r ##e of" */

static void train_step(xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, golden_input(g, in, "train.image", true), NULL);
    xv_tensor *ids = golden_input(g, in, "train.text_ids", false), *atts = golden_input(g, in, "train.text_atts", false);
    xv_tensor *labels = xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, PROMPT_LEN);
    fx_values(in, "train.labels", NULL, labels ? labels->idata : NULL, labels ? labels->numel : 0, 0);
    xv_caption_lm_out o, plain;
    xv_tensor *loss = xv_caption_lm_loss(g, m, vis, ids, atts, labels, 0.1f, &o);
    CHECK(loss != NULL, "fine-tuning loss: %s", xv_error_message());
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
    vis = xv_vision_embeds(g, &m->vision, golden_input(g, in, "train.image", true), NULL);
    ids = golden_input(g, in, "pretrain.text_ids", false);
    xv_caption_lm_out p;
    xv_caption_lm_loss(g, m, vis, ids, golden_input(g, in, "pretrain.text_atts", false),
                       xv_bert_lm_labels(g, ids, m->cfg.text.pad_id, 0), 0.0f, &p);
    fx_tensor(ref, "pretrain.token_nll", p.token_loss, FWD_TOL);
    fx_tensor(ref, "pretrain.loss", p.loss, FWD_TOL);
    fx_section("captioning domain pretraining");
    xv_graph_free(g);
}

/* The fixture's vocabulary and config.json `info` (official decoded strings). */
static xv_tokenizer *tok;
static cJSON *info;

/* JSON value at a path of object keys and array indices ("generation", "beam", ...). */
static const cJSON *info_at(const char *const *path, int n) {
    const cJSON *j = info;
    for (int i = 0; j && i < n; i++)
        j = path[i][0] >= '0' && path[i][0] <= '9' ? cJSON_GetArrayItem(j, atoi(path[i]))
                                                   : cJSON_GetObjectItemCaseSensitive(j, path[i]);
    return j;
}

/* Decode row i of sequences as the official _get_captions and compare with
 * the official string (a JSON string, or an object's "caption"). */
static void check_captions(const xv_tensor *seq, const cJSON *want, const char *what) {
    CHECK(seq && cJSON_IsArray(want) && cJSON_GetArraySize(want) == seq->shape[0], "%s: captions to compare", what);
    if (!seq || !cJSON_IsArray(want)) return;
    int same = 0;
    for (int64_t i = 0; i < seq->shape[0]; i++) {
        const cJSON *w = cJSON_GetArrayItem(want, (int)i);
        if (cJSON_IsObject(w)) w = cJSON_GetObjectItemCaseSensitive(w, "caption");
        char *got = xv_decode_caption(tok, seq->idata + i * seq->shape[1], (size_t)seq->shape[1], 13);
        bool ok = got && cJSON_IsString(w) && !strcmp(got, w->valuestring);
        CHECK(ok, "%s[%lld]: decoded \"%s\", official \"%s\"", what, (long long)i, got ? got : "(null)",
              cJSON_IsString(w) ? w->valuestring : "?");
        same += ok;
        free(got);
    }
    printf("  %-70s %d/%lld strings equal\n", what, same, (long long)seq->shape[0]);
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
    const char *path[] = {"generation", name, !strcmp(name, "beam") ? "result" : "captions"};
    snprintf(key, sizeof key, "info.generation.%s captions", name);
    check_captions(r.sequences, info_at(path, 3), key);
}

static void generation(const xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *images = xv_gather_rows(g, golden_input(g, in, "train.image", true), golden_input(g, in, "gen.image_index", false));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, images, NULL);
    xv_tensor *prompt = golden_input(g, in, "gen.prompt_ids", false);
    xv_lm_source src = xv_caption_source(m, vis);
    xv_tensor *rows = repeat_rows(g, prompt, (int)vis->shape[0]);
    fx_tensor(ref, "gen.first_step_logits", xv_lm_next_logits(g, &src, rows), FWD_TOL);
    beam(m, g, vis, prompt, ref, "beam", 20, 5);
    beam(m, g, vis, prompt, ref, "beam2", 18, 14);
    xv_tensor *lp = NULL;
    xv_tensor *greedy = xv_oscar_generate(g, &src, prompt, 20, NULL, &lp, NULL);
    fx_tensor(ref, "gen.greedy.sequences", greedy, 0);
    fx_tensor(ref, "gen.greedy.mean_logprob", lp, FWD_TOL);
    check_captions(greedy, info_at((const char *[]){"generation", "greedy", "captions"}, 3),
                   "info.generation.greedy captions");
    xv_tensor *hf = xv_greedy_search(g, &src, prompt, 20, 5);
    fx_tensor(ref, "gen.hf_greedy.sequences", hf, 0);
    check_captions(hf, info_at((const char *[]){"generation", "hf_greedy", "captions"}, 3),
                   "info.generation.hf_greedy captions");
    fx_section("captioning generation");
    xv_graph_free(g);
}

/* Sentences of a JSON array of strings, wrapped for the scorer (caller frees). */
static char **wrapped(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    char **s = calloc((size_t)(*n ? *n : 1), sizeof *s);
    for (int i = 0; s && i < *n; i++) s[i] = xv_cider_wrap(cJSON_GetArrayItem(a, i)->valuestring);
    return s;
}

static void free_all(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

/* CIDEr-D of the decoded samples (image-major, n per image) then of the
 * greedy captions against info.scst.gt_captions, document frequencies from
 * info.scst.cider_df_corpus (already wrapped there). */
static void scst_cider(const xv_tensor *samples, const xv_tensor *greedy, int n, double *d, const xv_st_file *ref) {
    const cJSON *corpus = info_at((const char *[]){"scst", "cider_df_corpus"}, 2);
    const cJSON *gt = info_at((const char *[]){"scst", "gt_captions"}, 2);
    const int n_img = cJSON_GetArraySize(corpus), n_gt = cJSON_GetArraySize(gt);
    const char **corpus_refs[16];
    int corpus_n[16];
    CHECK(n_img > 0 && n_img <= 16 && n_gt == greedy->shape[0], "CIDEr-D corpus and references in config.json");
    if (!(n_img > 0 && n_img <= 16 && n_gt == greedy->shape[0])) return;
    for (int i = 0; i < n_img; i++) {
        const cJSON *refs = cJSON_GetArrayItem(corpus, i);
        corpus_n[i] = cJSON_GetArraySize(refs);
        corpus_refs[i] = calloc((size_t)corpus_n[i], sizeof(char *));
        for (int r = 0; r < corpus_n[i]; r++) corpus_refs[i][r] = cJSON_GetArrayItem(refs, r)->valuestring;
    }
    xv_cider *c = NULL;
    CHECK_OK(xv_cider_new((const char *const *const *)corpus_refs, corpus_n, n_img, &c));
    const int64_t R = samples->shape[0], total = R + greedy->shape[0];
    for (int64_t i = 0; c && i < total; i++) {
        const xv_tensor *seq = i < R ? samples : greedy;
        int64_t row = i < R ? i : i - R, img = i < R ? i / n : i - R;
        char *caption = xv_decode_caption(tok, seq->idata + row * seq->shape[1], (size_t)seq->shape[1], 13);
        char *cand = caption ? xv_cider_wrap(caption) : NULL;
        int nr;
        char **refs = wrapped(cJSON_GetArrayItem(gt, (int)img), &nr);
        d[i] = cand && refs ? xv_cider_d(c, cand, (const char *const *)refs, nr) : NAN;
        free_all(refs, nr);
        free(cand);
        free(caption);
    }
    /* fx_values compares floats: check the doubles here, to 1e-9. */
    const xv_st_tensor *want = xv_st_find(ref, "scst.cider_d");
    CHECK(want && want->dtype == XV_ST_F64 && want->numel == total, "scst.cider_d F64 [%lld]", (long long)total);
    double worst = 0;
    for (int64_t i = 0; want && want->numel == total && i < total; i++) {
        double w;
        memcpy(&w, (const char *)want->data + 8 * i, 8);
        worst = fmax(worst, fabs(w - d[i]) / fmax(1.0, fabs(w)));
        if (!(fabs(w - d[i]) <= 1e-9 * fmax(1.0, fabs(w)))) worst = INFINITY;
    }
    printf("  %-70s rel %.3e\n", "scst.cider_d", worst);
    CHECK(worst <= 1e-9, "scst.cider_d: worst relative difference %.3e exceeds 1e-9", worst);
    xv_cider_free(c);
    for (int i = 0; i < n_img; i++) free(corpus_refs[i]);
}

static void scst(xv_caption_model *m, const xv_st_file *in, const xv_st_file *ref) {
    const int n = 3; /* info.scst.sample_n */
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *images = xv_gather_rows(g, golden_input(g, in, "train.image", true), golden_input(g, in, "gen.image_index", false));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, images, NULL), *vis_n = repeat_rows(g, vis, n);
    xv_tensor *prompt = golden_input(g, in, "gen.prompt_ids", false);
    xv_lm_source src = xv_caption_source(m, vis), src_n = xv_caption_source(m, vis_n);
    xv_tensor *greedy = xv_oscar_generate(g, &src, prompt, 20, NULL, NULL, NULL);
    fx_tensor(ref, "scst.greedy_sequences", greedy, 0);
    xv_tensor *lp = NULL, *chosen = NULL;
    xv_tensor *samples = xv_oscar_generate(g, &src_n, prompt, 20, golden_input(g, in, "scst.forced_tokens", false), &lp,
                                           &chosen);
    fx_tensor(ref, "scst.sample_sequences", samples, 0);
    check_captions(greedy, info_at((const char *[]){"scst", "greedy_captions"}, 2), "info.scst.greedy_captions");
    check_captions(samples, info_at((const char *[]){"scst", "sample_captions"}, 2), "info.scst.sample_captions");
    const int64_t R = vis_n ? vis_n->shape[0] : 0;
    if (!samples || !chosen || !greedy || R + R / n > 64) {
        xv_graph_free(g);
        return;
    }
    double d[64];
    scst_cider(samples, greedy, n, d, ref);
    float reward[64];
    for (int64_t r = 0; r < R; r++) reward[r] = (float)(d[r] - d[R + r / n]); /* sample minus its image's greedy */
    xv_graph *gg = xv_graph_new(0); /* recording; reads the encoder states of g */
    xv_params_zero_grad(&m->params);
    xv_tensor *tf_lp = NULL;
    xv_tensor *loss = xv_caption_scst_loss(gg, m, vis_n, samples, PROMPT_LEN, chosen, reward, &tf_lp);
    CHECK(loss != NULL, "SCST loss: %s", xv_error_message());
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
    if (!golden_open("captioning", dir, sizeof dir, &in, &ref)) return xv_test_skip("fixtures absent");
    xv_caption_model *m = NULL;
    CHECK_OK(xv_caption_load_dir(dir, false, &m));
    char path[1200];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    CHECK_OK(xv_tokenizer_load(path, &tok));
    cJSON *config = golden_json(dir, "config.json");
    info = cJSON_GetObjectItemCaseSensitive(config, "info");
    CHECK(info != NULL, "%s/config.json: no \"info\"", dir);
    if (m && in && ref && tok && info) {
        train_step(m, in, ref);
        generation(m, in, ref);
        scst(m, in, ref);
    }
    xv_st_close(in);
    xv_st_close(ref);
    xv_caption_free(m);
    xv_tokenizer_free(tok);
    cJSON_Delete(config);
    return xv_test_finish("test_captioning_fixture");
}
