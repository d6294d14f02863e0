/* Parity of the VQA model (model/vqa.h) with the official models/model_vqa.py
 * on shared/fixtures/vqa: the training step (question states, decoder states
 * and logits, per-answer NLL, loss, gradients of the decoder parameters and of
 * the vision and question states) and answer ranking (first-token
 * probabilities, top-k, candidate NLL, re-ranking).
 *
 * Tolerances (fixtures/README.md): forward values ≤ 1e-5·max(1, max|ref|),
 * gradients ≤ 1e-4·max(1, max|ref|), integers exact. The golden values agree
 * with a float64 recomputation to ~1e-6 relative; fp32 summation order moves
 * forward values by ~1e-6 and gradients by ~2e-5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "model/model.h"
#include "model/vqa.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4

static void train_step(const xv_vqa_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, golden_input(g, in, "train.image", true), NULL);
    xv_tensor *q_atts = golden_input(g, in, "train.question_atts", false);
    xv_tensor *qs = xv_vqa_question_states(g, m, vis, golden_input(g, in, "train.question_ids", false), q_atts);
    xv_vqa_train_out o;
    xv_tensor *loss = xv_vqa_train_forward(g, m, qs, q_atts, golden_input(g, in, "train.answers_per_question", false),
                                           golden_input(g, in, "train.answer_ids", false),
                                           golden_input(g, in, "train.answer_atts", false),
                                           golden_input(g, in, "train.answer_weights", true), &o);
    CHECK(loss != NULL, "training forward: %s", xv_error_message());
    if (loss) {
        fx_tensor(ref, "train.vision_embeds", vis, FWD_TOL);
        fx_tensor(ref, "train.question_states", qs, FWD_TOL);
        fx_tensor(ref, "train.decoder_hidden", o.hidden, FWD_TOL);
        fx_tensor(ref, "train.decoder_logits", o.logits, FWD_TOL);
        fx_tensor(ref, "train.answer_nll", o.nll, FWD_TOL);
        fx_tensor(ref, "train.loss", o.loss, FWD_TOL);
        fx_section("vqa train forward");
        CHECK_OK(xv_backward(g, loss));
        fx_grad(ref, "train.grad.vision_embeds", vis, GRAD_TOL);
        fx_grad(ref, "train.grad.question_states", qs, GRAD_TOL);
        int n = fx_param_grads(ref, "train.grad.", "text_decoder.", &m->params, GRAD_TOL);
        /* 26 tensors per layer (self- and cross-attention, FFN), 5 embedding
         * tensors, 5 head tensors and the 2 tied names. */
        CHECK(n == m->dec_cfg.layers * 26 + 12,
              "%d decoder parameter gradients compared (every text_decoder.* name, tied ones repeated)", n);
        fx_section("vqa train gradients");
    }
    xv_graph_free(g);
}

/* Golden candidate row of question q for answer index a (the golden top-k may
 * order tied first-token probabilities differently): its column in the top-k. */
static int golden_column(const int32_t *golden_ids, int k, int q, int32_t a) {
    for (int j = 0; j < k; j++)
        if (golden_ids[q * k + j] == a) return j;
    return -1;
}

static void ranking(const xv_vqa_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *images = xv_gather_rows(g, golden_input(g, in, "train.image", true), golden_input(g, in, "eval.image_index", false));
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, images, NULL);
    xv_tensor *q_atts = golden_input(g, in, "eval.question_atts", false);
    xv_tensor *qs = xv_vqa_question_states(g, m, vis, golden_input(g, in, "eval.question_ids", false), q_atts);
    const int k = 5; /* info.k_test */
    xv_vqa_ranking r;
    CHECK_OK(xv_vqa_rank(g, m, qs, q_atts, golden_input(g, in, "eval.answer_ids", false),
                         golden_input(g, in, "eval.answer_atts", false), k, true, &r));
    if (xv_graph_status(g) == XV_OK && r.pred) {
        fx_tensor(ref, "eval.vision_embeds", vis, FWD_TOL);
        fx_tensor(ref, "eval.question_states", qs, FWD_TOL);
        fx_tensor(ref, "eval.start_logits", r.start_logits, FWD_TOL);
        fx_tensor(ref, "eval.first_token_probs", r.first_token_probs, FWD_TOL);
        fx_tensor(ref, "eval.topk_probs_first", r.topk_probs_first, FWD_TOL);
        /* Candidates in the golden order: equal first-token probabilities may
         * be listed the other way round there. */
        const int64_t Q = qs->shape[0], La = r.candidate_ids->shape[1], V = m->dec_cfg.vocab;
        int32_t *golden = malloc(sizeof(int32_t) * (size_t)(Q * k));
        CHECK_OK(xv_st_read_i32(ref, xv_st_find(ref, "eval.topk_ids_first"), golden));
        xv_tensor *ids = xv_tensor_new(g, XV_I32, XV_SHAPE(Q, k)), *cid = xv_tensor_new(g, XV_I32, XV_SHAPE(Q * k, La));
        xv_tensor *clog = xv_tensor_new(g, XV_F32, XV_SHAPE(Q * k, La, V)), *cnll = xv_tensor_new(g, XV_F32, XV_SHAPE(Q * k));
        xv_tensor *rer = xv_tensor_new(g, XV_F32, XV_SHAPE(Q, k));
        int ties_reordered = 0;
        for (int q = 0; q < Q; q++)
            for (int j = 0; j < k; j++) {
                int32_t a = r.topk_ids_first->idata[q * k + j];
                int c = golden_column(golden, k, q, a);
                CHECK(c >= 0, "question %d: candidate answer %d is not in the golden top-%d", q, a, k);
                if (c < 0) continue;
                ties_reordered += c != j;
                CHECK(c == j || r.topk_probs_first->data[q * k + c] == r.topk_probs_first->data[q * k + j],
                      "question %d: answer %d ranked %d, golden %d, without a tie", q, a, j, c);
                int64_t dst = q * k + c, src = q * k + j;
                ids->idata[dst] = a;
                memcpy(cid->idata + dst * La, r.candidate_ids->idata + src * La, sizeof(int32_t) * (size_t)La);
                memcpy(clog->data + dst * La * V, r.candidate_logits->data + src * La * V, sizeof(float) * (size_t)(La * V));
                cnll->data[dst] = r.candidate_nll->data[src];
                rer->data[dst] = r.rerank_log_probs->data[src];
            }
        printf("  (%d candidates with tied first-token probabilities listed in the other order)\n", ties_reordered);
        fx_tensor(ref, "eval.topk_ids_first", ids, 0);
        fx_tensor(ref, "eval.candidate_ids", cid, 0);
        fx_tensor(ref, "eval.candidate_logits", clog, FWD_TOL);
        fx_tensor(ref, "eval.candidate_nll", cnll, FWD_TOL);
        fx_tensor(ref, "eval.rerank_log_probs", rer, FWD_TOL);
        fx_tensor(ref, "eval.topk_probs", r.topk_probs, FWD_TOL);
        fx_tensor(ref, "eval.topk_ids", r.topk_ids, 0);
        fx_tensor(ref, "eval.pred_answer_index", r.pred, 0);
        fx_section("vqa ranking");
        free(golden);
    }
    xv_graph_free(g);
}

/* Tied pretraining tensors are equal: either name may be the source. */
static const char *canonical(const char *name) {
    if (!strcmp(name, "text_encoder.cls.predictions.decoder.weight"))
        return "text_encoder.bert.embeddings.word_embeddings.weight";
    if (!strcmp(name, "text_encoder.cls.predictions.decoder.bias")) return "text_encoder.cls.predictions.bias";
    return name;
}

/* xv_vqa_pretrain_source against config.json init_from_pretrain, for every
 * parameter name and alias of the model. */
static void init_mapping(const xv_vqa_model *m, const char *dir) {
    cJSON *root = golden_json(dir, "config.json");
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(root, "init_from_pretrain");
    const cJSON *renamed = cJSON_GetObjectItemCaseSensitive(init, "renamed");
    const cJSON *fresh = cJSON_GetObjectItemCaseSensitive(init, "new_random_init");
    CHECK(cJSON_IsObject(renamed) && cJSON_IsArray(fresh), "%s: init_from_pretrain.renamed / new_random_init", dir);
    const xv_params *p = &m->params;
    int checked = 0, n_fresh = 0;
    for (int i = 0; renamed && i < p->n + p->n_alias; i++) {
        const char *name = i < p->n ? p->items[i]->name : p->alias_names[i - p->n];
        bool is_fresh = false;
        for (int k = 0; k < cJSON_GetArraySize(fresh); k++)
            is_fresh |= !strcmp(cJSON_GetArrayItem(fresh, k)->valuestring, name);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(renamed, name);
        char got[512];
        bool found = xv_vqa_pretrain_source(m, name, got, sizeof got);
        if (is_fresh) {
            CHECK(!found, "%s: a fresh init officially, mapped to %s", name, got);
            n_fresh++;
        } else {
            const char *want = cJSON_IsString(src) ? src->valuestring : name;
            CHECK(found && !strcmp(canonical(got), canonical(want)), "%s: source %s, official %s", name, got, want);
        }
        checked++;
    }
    printf("  init_from_pretrain: %d names checked (%d fresh)\n", checked, n_fresh);
    CHECK(n_fresh == cJSON_GetArraySize(fresh) && n_fresh == 4 * m->dec_cfg.layers, "every fresh tensor seen");
    cJSON_Delete(root);
}

int main(void) {
    char dir[1024];
    xv_st_file *in, *ref;
    if (!golden_open("vqa", dir, sizeof dir, &in, &ref)) return xv_test_skip("fixtures absent");
    xv_vqa_model *m = NULL;
    CHECK_OK(xv_vqa_load_dir(dir, false, &m));
    if (m && in && ref) {
        train_step(m, in, ref);
        ranking(m, in, ref);
        init_mapping(m, dir);
    }
    xv_st_close(in);
    xv_st_close(ref);
    xv_vqa_free(m);
    return xv_test_finish("test_vqa_fixture");
}
