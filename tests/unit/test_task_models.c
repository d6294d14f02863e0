/* The VQA and captioning models at a size unlike the fixtures': parameter
 * names and shapes of the official layouts, refusals with clear messages
 * (bad configs, answer counts, k_test, prompts, beam groups), caption
 * decoding rules and CIDEr-D on hand-checked cases. */
#include <stdlib.h>
#include <string.h>

#include "data/detokenize.h"
#include "model/captioning.h"
#include "model/vqa.h"
#include "tasks/cider.h"
#include "testutil.h"

/* Swin 32 px (patch 4, two stages of 1 block, window 4 -> width 16),
 * BERT hidden 8, 3 layers, fusion_layer 1. */
static const char *CONFIG =
    "{\"vision\": {\"image_res\": 32, \"swin_patch_size\": 4, \"patch_size\": 8, \"embed_dim\": 8,"
    " \"depths\": [1, 1], \"num_heads\": [1, 2], \"window_size\": 4, \"vision_width\": 16},"
    " \"text\": {\"hidden_size\": 8, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 16, \"vocab_size\": 40, \"max_position_embeddings\": 16, \"fusion_layer\": 1}}";

static void check_shape(const xv_params *p, const char *name, int64_t d0, int64_t d1) {
    const xv_tensor *t = xv_params_find(p, name);
    CHECK(t && t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1, "%s: expected [%lld, %lld]", name,
          (long long)d0, (long long)d1);
}

static void test_vqa(void) {
    xv_model_config c;
    CHECK_OK(xv_config_parse_json(CONFIG, "test config", &c));
    xv_vqa_model *m = NULL;
    CHECK_OK(xv_vqa_create(&c, &m));
    if (!m) return;
    CHECK(m->dec_cfg.layers == 2 && m->dec_cfg.fusion_layer == 0 && m->dec_cfg.encoder_width == 8,
          "decoder: num_hidden_layers - fusion_layer layers, all cross-attending to 8-wide question states");
    check_shape(&m->params, "text_encoder.encoder.layer.2.crossattention.self.key.weight", 8, 16);
    check_shape(&m->params, "text_decoder.bert.encoder.layer.1.crossattention.self.key.weight", 8, 8);
    check_shape(&m->params, "text_decoder.cls.predictions.decoder.weight", 40, 8);
    CHECK(!xv_params_find(&m->params, "text_decoder.bert.encoder.layer.2.attention.self.key.weight") &&
              !xv_params_find(&m->params, "text_encoder.encoder.layer.0.crossattention.self.key.weight") &&
              !xv_params_find(&m->params, "itm_head.0.weight"),
          "no third decoder layer, no encoder cross-attention below fusion_layer, no pretraining heads");
    CHECK(xv_params_find(&m->params, "text_decoder.cls.predictions.decoder.weight") == m->decoder.bert.word &&
              m->decoder.bert.word != m->encoder.word,
          "the LM head is tied to the decoder's own embeddings, not the encoder's");

    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    int32_t q_ids[2 * 3] = {2, 5, 6, 2, 7, 0}, q_atts[2 * 3] = {1, 1, 1, 1, 1, 0};
    int32_t a_ids[3 * 3] = {2, 8, 3, 2, 9, 3, 2, 10, 3}, a_atts[3 * 3] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int32_t per_q[2] = {2, 2};
    float w[3] = {1, 1, 0.5f}, zeros[2 * 5 * 16] = {0};
    xv_tensor *img = xv_tensor_wrap_f32(g, zeros, XV_SHAPE(2, 5, 16));
    xv_tensor *qa = xv_tensor_wrap_i32(g, q_atts, XV_SHAPE(2, 3));
    xv_tensor *qs = xv_vqa_question_states(g, m, img, xv_tensor_wrap_i32(g, q_ids, XV_SHAPE(2, 3)), qa);
    CHECK(qs && qs->shape[0] == 2 && qs->shape[1] == 3 && qs->shape[2] == 8, "question states [2, 3, 8]");
    xv_vqa_train_out o;
    CHECK(!xv_vqa_train_forward(g, m, qs, qa, xv_tensor_wrap_i32(g, per_q, XV_SHAPE(2)),
                                xv_tensor_wrap_i32(g, a_ids, XV_SHAPE(3, 3)), xv_tensor_wrap_i32(g, a_atts, XV_SHAPE(3, 3)),
                                xv_tensor_wrap_f32(g, w, XV_SHAPE(3)), &o) &&
              strstr(xv_error_message(), "answers_per_question[1] = 2 overruns the 3 answers"),
          "answer counts that do not add up are refused: %s", xv_error_message());
    xv_graph_reset(g);
    qa = xv_tensor_wrap_i32(g, q_atts, XV_SHAPE(2, 3));
    qs = xv_vqa_question_states(g, m, xv_tensor_wrap_f32(g, zeros, XV_SHAPE(2, 5, 16)),
                                xv_tensor_wrap_i32(g, q_ids, XV_SHAPE(2, 3)), qa);
    xv_vqa_ranking r;
    xv_tensor *ans = xv_tensor_wrap_i32(g, a_ids, XV_SHAPE(3, 3)), *ans_atts = xv_tensor_wrap_i32(g, a_atts, XV_SHAPE(3, 3));
    CHECK(xv_vqa_rank(g, m, qs, qa, ans, ans_atts, 4, false, &r) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "k_test 4 must be in [1, 3]"),
          "k above the number of candidates is refused: %s", xv_error_message());
    CHECK_OK(xv_vqa_rank(g, m, qs, qa, ans, ans_atts, 3, false, &r));
    xv_vqa_ranking kept;
    CHECK_OK(xv_vqa_rank(g, m, qs, qa, ans, ans_atts, 3, true, &kept));
    float worst = 0; /* the same sums; only BLAS blocking over a different row count may differ */
    for (int i = 0; r.candidate_nll && kept.candidate_nll && i < 6; i++)
        worst = fmaxf(worst, fabsf(r.candidate_nll->data[i] - kept.candidate_nll->data[i]));
    CHECK(r.candidate_logits == NULL && kept.candidate_logits && r.candidate_nll && kept.candidate_nll && worst < 1e-5f,
          "question by question or all at once: the same candidate NLL (max diff %g), logits only when kept", worst);
    if (r.topk_probs) {
        float sum = r.topk_probs->data[0] + r.topk_probs->data[1] + r.topk_probs->data[2];
        CHECK(fabsf(sum - 1) < 1e-6f && r.topk_probs->data[0] >= r.topk_probs->data[1] &&
                  r.topk_probs->data[1] >= r.topk_probs->data[2] && r.pred->idata[0] == r.topk_ids->idata[0],
              "re-ranked probabilities sum to 1 over the k candidates, descending; pred = the first");
    }
    xv_graph_free(g);
    xv_vqa_free(m);

    c.text.fusion_layer = 3; /* = num_hidden_layers: no layer left for the decoder */
    CHECK(xv_vqa_create(&c, &m) != XV_OK && strstr(xv_error_message(), "answer decoder needs"),
          "a config without fusion layers cannot make the answer decoder: %s", xv_error_message());
}

static void test_captioning(void) {
    xv_model_config c;
    CHECK_OK(xv_config_parse_json(CONFIG, "test config", &c));
    xv_caption_model *m = NULL;
    CHECK_OK(xv_caption_create(&c, &m));
    if (!m) return;
    check_shape(&m->params, "text_decoder.bert.encoder.layer.1.crossattention.self.key.weight", 8, 16);
    CHECK(!xv_params_find(&m->params, "text_decoder.bert.encoder.layer.0.crossattention.self.key.weight") &&
              !xv_params_find(&m->params, "text_encoder.embeddings.word_embeddings.weight"),
          "the whole text stack is the decoder: no text_encoder, cross-attention from fusion_layer on");
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    float zeros[4 * 5 * 16] = {0};
    int32_t prompt[4] = {2, 5, 6, 7};
    xv_lm_source src = xv_caption_source(m, xv_tensor_wrap_f32(g, zeros, XV_SHAPE(4, 5, 16)));
    xv_tensor *p = xv_tensor_wrap_i32(g, prompt, XV_SHAPE(1, 4));
    xv_beam_opts o = {.num_beams = 3, .max_length = 8, .min_length = 0, .length_penalty = 1};
    xv_beam_result r;
    CHECK(xv_beam_search(g, &src, p, &o, &r) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "3-beam groups"),
          "4 rows are not whole beam groups of 3: %s", xv_error_message());
    o.num_beams = 2;
    o.max_length = 4;
    CHECK(xv_beam_search(g, &src, p, &o, &r) == XV_ERR_INVALID_ARG && strstr(xv_error_message(), "max_length 4"),
          "a prompt as long as max_length is refused: %s", xv_error_message());
    o.max_length = 9;
    CHECK_OK(xv_beam_search(g, &src, p, &o, &r));
    CHECK(r.sequences && r.sequences->shape[0] == 2 && r.sequences->shape[1] <= 9 &&
              !memcmp(r.sequences->idata, prompt, sizeof prompt),
          "one sequence per image, at most max_length, starting with the prompt");
    xv_tensor *lp = NULL, *greedy = xv_oscar_generate(g, &src, p, 9, NULL, &lp, NULL);
    CHECK(greedy && greedy->shape[1] == 9 && lp && lp->data[0] <= 0, "OSCAR loop: padded to max_length, log-probs <= 0");
    xv_graph_free(g);
    xv_caption_free(m);
}

static void test_decode(void) {
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\npicture\nof\n##ness\n.\n'\ns\ndog\n";
    xv_tokenizer *t = NULL;
    CHECK_OK(xv_tokenizer_from_memory(vocab, sizeof vocab - 1, "test vocab", &t));
    if (!t) return;
    int32_t cap[] = {2, 5, 6, 7, 8, 1, 3, 0, 0};
    char *s = xv_decode(t, cap, 9);
    CHECK(s && !strcmp(s, "a picture ofness"), "specials dropped, ## glued: '%s'", s ? s : "");
    free(s);
    s = xv_decode_caption(t, cap, 9, 13);
    CHECK(s && !strcmp(s, "ess"), "the prompt is cut by characters: '%s'", s ? s : "");
    free(s);
    int32_t clean[] = {12, 10, 11, 12, 9};
    s = xv_decode(t, clean, 5);
    CHECK(s && !strcmp(s, "dog's dog."), "clean-up glues \" 's\" and \" .\": '%s'", s ? s : "");
    free(s);
    xv_tokenizer_free(t);
}

static void test_cider(void) {
    const char *img0[] = {"a dog runs <eos>"}, *img1[] = {"a cat sits <eos>"};
    const char *const *corpus[] = {img0, img1};
    const int n[] = {1, 1};
    xv_cider *c = NULL;
    CHECK_OK(xv_cider_new(corpus, n, 2, &c));
    if (!c) return;
    /* "a" is in both images (idf 0); every other n-gram has weight log 2, so
     * identical sentences have cosine 1 at every n: CIDEr-D 10. */
    double same = xv_cider_d(c, "a dog runs <eos>", img0, 1), none = xv_cider_d(c, "cat <eos>", img0, 1);
    CHECK(fabs(same - 10.0) < 1e-12, "identical to its only reference: %.17g", same);
    /* Shared with the reference: only "<eos>", which every image has (weight 0). */
    CHECK(none == 0.0, "nothing informative shared: %.17g", none);
    char *w = xv_cider_wrap("  a dog runs.  ");
    CHECK(w && !strcmp(w, "a dog runs <eos>"), "wrap: strip, one '.', <eos>: '%s'", w ? w : "");
    free(w);
    xv_cider_free(c);
}

int main(void) {
    test_vqa();
    test_captioning();
    test_decode();
    test_cider();
    return xv_test_finish("test_task_models");
}
