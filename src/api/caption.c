/* xvlm_captioner: captions with the official captioning model
 * (model/captioning.h) and its generation loops (model/generate.h), decoded
 * and cut as Captioning.py's evaluation does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/task_common.h"
#include "core/error.h"
#include "data/detokenize.h"
#include "model/task_source.h"

struct xvlm_captioner {
    xv_caption_model *m;
    xv_tokenizer *tok;
    xv_graph *g;
};

/* Images per generation pass (beam rows = this × num_beams). */
#define CAPTION_BATCH 8

xvlm_caption_params xvlm_caption_params_default(void) {
    return (xvlm_caption_params){
        .num_beams = 3, .max_length = 20, .min_length = 5, .greedy = false, .prompt = "a picture of "};
}

void xvlm_captioner_free(xvlm_captioner *c) {
    if (!c) return;
    xv_caption_free(c->m);
    xv_tokenizer_free(c->tok);
    xv_graph_free(c->g);
    free(c);
}

static xv_status captioner_load(const char *path, const xvlm_model_params *params, xvlm_captioner **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_captioner_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_captioner_load: no model path given");
    const xvlm_model_params p = params ? *params : xvlm_model_params_default();
    const xv_infer_opts infer = {.image_res = p.image_res, .text_heads = p.text_heads};
    xvlm_captioner *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_caption_open(path, &infer, p.copy_weights, &c->m);
    if (st == XV_OK) st = xv_api_task_tokenizer(path, &p, c->m->cfg.text.vocab, &c->tok);
    if (st == XV_OK) st = xv_api_set_precision(&c->m->params, &p);
    if (st == XV_OK && !(c->g = xv_graph_new(0))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) {
        c->m->sep_id = xv_tokenizer_special_ids(c->tok).sep; /* ends captions */
        xv_graph_set_grad(c->g, false);
        xv_graph_set_training(c->g, false);
        *out = c;
    } else {
        xvlm_captioner_free(c);
    }
    return st;
}

xvlm_status xvlm_captioner_load(const char *path, const xvlm_model_params *params, xvlm_captioner **out) {
    return (xvlm_status)captioner_load(path, params, out);
}

/* The prompt's ids without the final [SEP] (Captioning.py generate). */
static xv_status prompt_ids(const xv_tokenizer *tok, const xvlm_caption_params *p, xv_text_batch *b) {
    const xv_encode_opts o = xv_encode_finetune(0); /* [CLS] + pieces: the stock form minus its [SEP] */
    XV_TRY(xv_encode_batch(tok, &p->prompt, 1, &o, b));
    if (p->max_length <= b->len)
        return xv_error(XV_ERR_INVALID_ARG, "max_length %d leaves no room for a caption after the prompt \"%s\" "
                                            "(%d ids, [CLS] included; max_length counts them)",
                        p->max_length, p->prompt, b->len);
    return XV_OK;
}

static xv_status check_params(const xvlm_caption_params *p) {
    if (!p->prompt) return xv_error(XV_ERR_INVALID_ARG, "no prompt given (the official one is \"a picture of \")");
    if (p->num_beams < 1) return xv_error(XV_ERR_INVALID_ARG, "num_beams must be at least 1 (got %d)", p->num_beams);
    if (p->min_length < 0 || p->min_length > p->max_length)
        return xv_error(XV_ERR_INVALID_ARG, "min_length %d must lie in [0, max_length %d]", p->min_length,
                        p->max_length);
    return XV_OK;
}

/* Captions of images [first, first + n) of paths. */
static xv_status caption_batch(const xv_caption_model *m, const xv_tokenizer *tok, xv_graph *g,
                               const char *const *paths, int n, const xvlm_caption_params *p, const xv_text_batch *pb,
                               char **captions, float *scores) {
    xv_graph_reset(g);
    xv_tensor *img, *prompt = xv_tensor_new(g, XV_I32, XV_SHAPE(pb->len));
    XV_TRY(xv_api_task_images(g, paths, n, m->cfg.vision.image_res, &img));
    XV_TRY(xv_graph_status(g));
    memcpy(prompt->idata, pb->ids, sizeof(int32_t) * (size_t)pb->len);
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, img, NULL);
    xv_tensor *seq = NULL, *score = NULL;
    if (p->greedy) {
        xv_lm_source src = xv_caption_source(m, vis);
        seq = xv_oscar_generate(g, &src, prompt, p->max_length, NULL, &score, NULL);
    } else if (p->num_beams == 1) {
        xv_lm_source src = xv_caption_source(m, vis);
        seq = xv_greedy_search(g, &src, prompt, p->max_length, p->min_length);
    } else {
        const xv_beam_opts o = {.num_beams = p->num_beams, .max_length = p->max_length, .min_length = p->min_length,
                                .length_penalty = 1.0f};
        xv_lm_source src = xv_caption_source(m, xv_repeat_rows(g, vis, o.num_beams));
        xv_beam_result r;
        XV_TRY(xv_beam_search(g, &src, prompt, &o, &r));
        seq = r.sequences;
        score = r.sequence_scores;
    }
    XV_TRY(xv_graph_status(g));
    const size_t prompt_chars = strlen(p->prompt);
    for (int i = 0; i < n; i++) {
        captions[i] = xv_decode_caption(tok, seq->idata + (int64_t)i * seq->shape[1], (size_t)seq->shape[1],
                                        prompt_chars);
        if (!captions[i]) return xv_error(XV_ERR_NOMEM, "out of memory decoding a caption");
        if (scores) scores[i] = score ? score->data[i] : NAN;
    }
    return XV_OK;
}

xv_status xv_api_caption_files(const xv_caption_model *m, const xv_tokenizer *tok, xv_graph *g,
                               const char *const *paths, int n, const xvlm_caption_params *params, char **captions,
                               float *scores) {
    if (!paths || !captions || n < 0)
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_caption_image_files: NULL paths or captions");
    const xvlm_caption_params p = params ? *params : xvlm_caption_params_default();
    for (int i = 0; i < n; i++) captions[i] = NULL;
    XV_TRY(check_params(&p));
    xv_text_batch pb = {0};
    xv_status st = prompt_ids(tok, &p, &pb);
    for (int first = 0; st == XV_OK && first < n; first += CAPTION_BATCH) {
        const int b = n - first < CAPTION_BATCH ? n - first : CAPTION_BATCH;
        st = caption_batch(m, tok, g, paths + first, b, &p, &pb, captions + first, scores ? scores + first : NULL);
    }
    xv_text_batch_free(&pb);
    xv_graph_reset(g);
    if (st != XV_OK)
        for (int i = 0; i < n; i++) {
            free(captions[i]);
            captions[i] = NULL;
        }
    return st;
}

xvlm_status xvlm_caption_image_files(xvlm_captioner *c, const char *const *paths, int n, const xvlm_caption_params *p,
                                     char **captions, float *scores) {
    if (!c) return (xvlm_status)xv_error(XV_ERR_INVALID_ARG, "xvlm_caption_image_files: NULL captioner");
    return (xvlm_status)xv_api_caption_files(c->m, c->tok, c->g, paths, n, p, captions, scores);
}
