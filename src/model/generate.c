/* Beam search, greedy search and the OSCAR loop over a causal BERT LM. */
#include "model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

xv_tensor *xv_lm_next_logits(xv_graph *g, const xv_lm_source *src, xv_tensor *ids) {
    if (!ids) return NULL;
    const int64_t R = ids->shape[0], t = ids->shape[1], H = src->lm->bert.cfg.hidden;
    xv_tensor *ones = xv_tensor_new(g, XV_I32, XV_SHAPE(R, t));
    if (!ones) return NULL;
    for (int64_t i = 0; i < ones->numel; i++) ones->idata[i] = 1;
    xv_tensor *h = xv_bert_lm_hidden(g, src->lm, ids, ones, src->enc, src->enc_atts);
    h = xv_reshape(g, xv_slice(g, h, 1, t - 1, 1), XV_SHAPE(R, H));
    return xv_bert_lm_logits(g, src->lm, h);
}

/* Growing sequences of R rows, at most max_length ids each (host memory). */
typedef struct {
    int32_t *ids; /* [R, max_length] */
    int64_t R, len, cap;
} seqs;

static xv_status seqs_init(seqs *s, xv_tensor *prompt, int64_t R, int max_length) {
    memset(s, 0, sizeof *s);
    if (!prompt || prompt->dtype != XV_I32 || prompt->numel < 1 ||
        (prompt->ndim == 2 && prompt->shape[0] != 1) || prompt->ndim > 2)
        return xv_error(XV_ERR_SHAPE, "generate: the prompt must be I32 [P] or [1, P] with P >= 1");
    if (prompt->numel >= max_length)
        return xv_error(XV_ERR_INVALID_ARG, "generate: prompt of %lld ids leaves nothing below max_length %d",
                        (long long)prompt->numel, max_length);
    s->R = R, s->len = prompt->numel, s->cap = max_length;
    s->ids = malloc(sizeof(int32_t) * (size_t)(R * max_length));
    if (!s->ids) return xv_error(XV_ERR_NOMEM, "generate: out of memory");
    for (int64_t r = 0; r < R; r++) memcpy(s->ids + r * s->cap, prompt->idata, sizeof(int32_t) * (size_t)s->len);
    return XV_OK;
}

/* The current sequences as a tensor of g. */
static xv_tensor *seqs_tensor(xv_graph *g, const seqs *s) {
    xv_tensor *t = xv_tensor_new(g, XV_I32, XV_SHAPE(s->R, s->len));
    if (!t) return NULL;
    for (int64_t r = 0; r < s->R; r++) memcpy(t->idata + r * s->len, s->ids + r * s->cap, sizeof(int32_t) * (size_t)s->len);
    return t;
}

/* The decoder stepping through a generation: the keys and values of the
 * tokens it has seen (the cross-attention ones in `keep`), and two step graphs
 * used in turn, so the previous step's keys and values stay alive while the
 * next step reads them. */
typedef struct {
    const xv_lm_source *src;
    xv_graph *keep, *step[2];
    int cur;
    xv_bert_cache cache;
} stepper;

static void stepper_end(stepper *st) {
    xv_bert_cache_free(&st->cache);
    for (int i = 0; i < 2; i++) xv_graph_free(st->step[i]);
    xv_graph_free(st->keep);
    memset(st, 0, sizeof *st);
}

static xv_status stepper_begin(stepper *st, const xv_lm_source *src) {
    memset(st, 0, sizeof *st);
    st->src = src;
    st->keep = xv_graph_new(0), st->step[0] = xv_graph_new(0), st->step[1] = xv_graph_new(0);
    if (!st->keep || !st->step[0] || !st->step[1]) {
        stepper_end(st);
        return xv_error(XV_ERR_NOMEM, "generate: out of memory");
    }
    for (int i = 0; i < 3; i++) xv_graph_set_grad(i ? st->step[i - 1] : st->keep, false);
    xv_status s = xv_bert_cache_begin(st->keep, &src->lm->bert, src->enc, src->enc_atts, &st->cache);
    if (s != XV_OK) stepper_end(st);
    return s;
}

static xv_status step_failed(xv_graph *g) {
    return xv_graph_status(g) != XV_OK ? xv_graph_status(g) : XV_ERR_INTERNAL;
}

/* Logits [R, V] (to host memory) of the next token after the sequences s,
 * feeding the decoder the ids it has not seen; rows (optional, [R]): the
 * sequences were reordered since the last step, row r now continuing row rows[r]. */
static xv_status step_logits(stepper *st, const seqs *s, const int32_t *rows, float *logits) {
    xv_graph *g = st->step[st->cur];
    st->cur ^= 1;
    xv_graph_reset(g);
    const int64_t R = s->R, seen = st->cache.len, n = s->len - seen, H = st->src->lm->bert.cfg.hidden;
    if (rows) {
        xv_tensor *r = xv_tensor_new(g, XV_I32, XV_SHAPE(R));
        if (!r) return step_failed(g);
        memcpy(r->idata, rows, sizeof(int32_t) * (size_t)R);
        XV_TRY(xv_bert_cache_select(g, &st->cache, r));
    }
    xv_tensor *ids = xv_tensor_new(g, XV_I32, XV_SHAPE(R, n));
    if (!ids) return step_failed(g);
    for (int64_t r = 0; r < R; r++) memcpy(ids->idata + r * n, s->ids + r * s->cap + seen, sizeof(int32_t) * (size_t)n);
    xv_tensor *h = xv_bert_decode_step(g, &st->src->lm->bert, ids, &st->cache);
    xv_tensor *l = xv_bert_lm_logits(g, st->src->lm, xv_reshape(g, xv_slice(g, h, 1, n - 1, 1), XV_SHAPE(R, H)));
    if (!l || xv_graph_status(g) != XV_OK) return step_failed(g);
    memcpy(logits, l->data, sizeof(float) * (size_t)l->numel);
    return XV_OK;
}

static void log_softmax_row(float *x, int64_t V) {
    float m = -INFINITY;
    for (int64_t c = 0; c < V; c++) m = x[c] > m ? x[c] : m;
    double s = 0;
    for (int64_t c = 0; c < V; c++) s += expf(x[c] - m);
    float lse = (float)(m + log(s));
    for (int64_t c = 0; c < V; c++) x[c] -= lse;
}

static int64_t argmax_row(const float *x, int64_t V) {
    int64_t best = 0;
    for (int64_t c = 1; c < V; c++)
        if (x[c] > x[best]) best = c;
    return best;
}

/* A token drawn from the distribution of log-probabilities x (torch.multinomial
 * of softmax, temperature 1, no top-k / top-p filtering); one uniform per draw. */
static int64_t draw_row(xv_rng *rng, const float *x, int64_t V) {
    double u = xv_rng_uniform_double(rng), c = 0;
    int64_t last = 0;
    for (int64_t t = 0; t < V; t++) {
        if (x[t] == -INFINITY) continue;
        c += exp((double)x[t]);
        last = t;
        if (u < c) return t;
    }
    return last; /* u beyond the rounded total: the last token with mass */
}

static xv_status check_source(const xv_lm_source *src, int64_t *R, int64_t *V) {
    if (!src->lm || !src->enc || src->enc->ndim != 3)
        return xv_error(XV_ERR_INVALID_ARG, "generate: need a decoder and encoder states [R, T, width]");
    *R = src->enc->shape[0];
    *V = src->lm->bert.cfg.vocab;
    return XV_OK;
}

/* ---------------------------------------------------------------- beam search */

typedef struct {
    double score;
    int32_t *ids; /* hypothesis without its [SEP] */
    int64_t len;
} hyp;

typedef struct {
    hyp *h; /* at most K */
    int n;
    double worst;
    bool done;
} hyp_list;

/* BeamHypotheses.add: keep the K best by length-normalised score. */
static xv_status hyps_add(hyp_list *l, int K, const int32_t *ids, int64_t len, double sum_logprobs, float lp) {
    double score = sum_logprobs / pow((double)len, (double)lp);
    if (l->n >= K && !(score > l->worst)) return XV_OK;
    int32_t *copy = malloc(sizeof(int32_t) * (size_t)len);
    if (!copy) return xv_error(XV_ERR_NOMEM, "beam search: out of memory");
    memcpy(copy, ids, sizeof(int32_t) * (size_t)len);
    l->h[l->n++] = (hyp){score, copy, len};
    if (l->n > K) {
        int w = 0;
        for (int i = 1; i < l->n; i++)
            if (l->h[i].score < l->h[w].score) w = i;
        free(l->h[w].ids);
        memmove(l->h + w, l->h + w + 1, sizeof(hyp) * (size_t)(l->n - w - 1));
        l->n--;
        l->worst = l->h[0].score;
        for (int i = 1; i < l->n; i++) l->worst = fmin(l->worst, l->h[i].score);
    } else {
        l->worst = fmin(score, l->worst);
    }
    return XV_OK;
}

/* Candidate indices of the 2K best of scores[0..n) in descending order
 * (ties: lower index first). */
static void top_2k(const float *scores, int64_t n, int k2, int64_t *idx) {
    for (int j = 0; j < k2; j++) idx[j] = -1;
    for (int64_t i = 0; i < n; i++) {
        float v = scores[i];
        int j = k2;
        while (j > 0 && (idx[j - 1] < 0 || v > scores[idx[j - 1]])) j--;
        if (j >= k2) continue;
        memmove(idx + j + 1, idx + j, sizeof(int64_t) * (size_t)(k2 - j - 1));
        idx[j] = i;
    }
}

typedef struct {
    int steps;
    float *cand_scores, *beam_scores;
    int32_t *cand_tokens, *cand_beam, *beam_tokens, *beam_rows;
} beam_trace;

static xv_tensor *trace_tensor(xv_graph *g, xv_dtype dt, const void *data, int64_t steps, int64_t a, int64_t b) {
    xv_tensor *t = b ? xv_tensor_new(g, dt, XV_SHAPE(steps, a, b)) : xv_tensor_new(g, dt, XV_SHAPE(steps, a));
    if (t) memcpy(dt == XV_F32 ? (void *)t->data : (void *)t->idata, data, 4 * (size_t)t->numel);
    return t;
}

/* The best hypothesis of every image into out->sequences / sequence_scores. */
static xv_status finalize(xv_graph *g, hyp_list *hl, int64_t B, const xv_lm_source *src, int max_length,
                          xv_beam_result *out) {
    int64_t longest = 0;
    const hyp **best = xv_graph_alloc(g, sizeof(hyp *) * (size_t)B);
    if (!best) return xv_graph_status(g);
    for (int64_t b = 0; b < B; b++) {
        /* sorted() is stable and pop() takes the last: the latest of equal best scores. */
        const hyp *h = &hl[b].h[0];
        for (int i = 1; i < hl[b].n; i++)
            if (hl[b].h[i].score >= h->score) h = &hl[b].h[i];
        best[b] = h;
        if (h->len > longest) longest = h->len;
    }
    int64_t S = longest + 1 < max_length ? longest + 1 : max_length;
    out->sequences = xv_tensor_new(g, XV_I32, XV_SHAPE(B, S));
    out->sequence_scores = xv_tensor_new(g, XV_F32, XV_SHAPE(B));
    if (!out->sequences || !out->sequence_scores) return xv_graph_status(g);
    for (int64_t b = 0; b < B; b++) {
        int32_t *row = out->sequences->idata + b * S;
        for (int64_t i = 0; i < S; i++) row[i] = src->pad_id;
        memcpy(row, best[b]->ids, sizeof(int32_t) * (size_t)best[b]->len);
        if (best[b]->len < max_length) row[best[b]->len] = src->eos_id;
        out->sequence_scores->data[b] = (float)best[b]->score;
    }
    return XV_OK;
}

/* One step of BeamSearchScorer.process for image b: candidates -> next beams
 * (and finished hypotheses). */
static xv_status process_image(hyp_list *l, int K, int64_t b, const int64_t *cand, const float *scores, int64_t V,
                               const seqs *s, const xv_lm_source *src, float lp, float *next_score,
                               int32_t *next_tok, int32_t *next_row) {
    int beam = 0;
    for (int rank = 0; rank < 2 * K && beam < K; rank++) {
        int64_t c = cand[rank];
        int32_t tok = (int32_t)(c % V);
        int64_t row = b * K + c / V;
        if (tok == src->eos_id) {
            if (rank >= K) continue; /* [SEP] ranked below the K best: skipped */
            XV_TRY(hyps_add(l, K, s->ids + row * s->cap, s->len, (double)scores[c], lp));
        } else {
            next_score[beam] = scores[c], next_tok[beam] = tok, next_row[beam] = (int32_t)row;
            beam++;
        }
    }
    /* is_done: K hypotheses and none of the running beams can beat the worst. */
    double best_now = (double)scores[cand[0]] / pow((double)s->len, (double)lp);
    l->done = l->done || (l->n >= K && l->worst >= best_now);
    return XV_OK;
}

static xv_status beam_run(xv_graph *g, stepper *sp, const xv_lm_source *src, const xv_beam_opts *o, seqs *s,
                          hyp_list *hl, beam_trace *tr, int64_t B, int64_t V) {
    const int K = o->num_beams;
    const int64_t R = B * K;
    float *logits = xv_graph_alloc(g, sizeof(float) * (size_t)(R * V));
    float *run = xv_graph_alloc(g, sizeof(float) * (size_t)R);
    float *flat = xv_graph_alloc(g, sizeof(float) * (size_t)(K * V));
    int64_t *cand = xv_graph_alloc(g, sizeof(int64_t) * (size_t)(2 * K));
    int32_t *rows = xv_graph_alloc(g, sizeof(int32_t) * (size_t)R), *toks = xv_graph_alloc(g, sizeof(int32_t) * (size_t)R);
    int32_t *old = xv_graph_alloc(g, sizeof(int32_t) * (size_t)(R * s->cap));
    if (!logits || !run || !flat || !cand || !rows || !toks || !old) return xv_graph_status(g);
    for (int64_t r = 0; r < R; r++) run[r] = r % K ? -1e9f : 0.0f;
    bool all_done = false;
    while (s->len < o->max_length && !all_done) {
        XV_TRY(step_logits(sp, s, tr->steps ? rows : NULL, logits));
        const int st = tr->steps++;
        for (int64_t r = 0; r < R; r++) {
            float *x = logits + r * V;
            log_softmax_row(x, V);
            if (s->len < o->min_length) x[src->eos_id] = -INFINITY;
            for (int64_t c = 0; c < V; c++) x[c] += run[r];
        }
        all_done = true;
        for (int64_t b = 0; b < B; b++) {
            memcpy(flat, logits + b * K * V, sizeof(float) * (size_t)(K * V));
            top_2k(flat, K * V, 2 * K, cand);
            for (int j = 0; j < 2 * K; j++) {
                int64_t at = ((int64_t)st * B + b) * 2 * K + j;
                tr->cand_scores[at] = flat[cand[j]];
                tr->cand_tokens[at] = (int32_t)(cand[j] % V);
                tr->cand_beam[at] = (int32_t)(cand[j] / V);
            }
            if (hl[b].done) { /* finished image: [PAD] with score 0 from row 0 */
                for (int k = 0; k < K; k++) run[b * K + k] = 0, toks[b * K + k] = src->pad_id, rows[b * K + k] = 0;
                continue;
            }
            XV_TRY(process_image(&hl[b], K, b, cand, flat, V, s, src, o->length_penalty, run + b * K, toks + b * K,
                                 rows + b * K));
            all_done = all_done && hl[b].done;
        }
        memcpy(tr->beam_scores + (int64_t)st * R, run, sizeof(float) * (size_t)R);
        memcpy(tr->beam_tokens + (int64_t)st * R, toks, sizeof(int32_t) * (size_t)R);
        memcpy(tr->beam_rows + (int64_t)st * R, rows, sizeof(int32_t) * (size_t)R);
        memcpy(old, s->ids, sizeof(int32_t) * (size_t)(R * s->cap));
        for (int64_t r = 0; r < R; r++) {
            memcpy(s->ids + r * s->cap, old + (int64_t)rows[r] * s->cap, sizeof(int32_t) * (size_t)s->len);
            s->ids[r * s->cap + s->len] = toks[r];
        }
        s->len++;
    }
    /* Images still searching offer every running beam as a hypothesis. */
    for (int64_t b = 0; b < B; b++)
        for (int k = 0; !hl[b].done && k < K; k++)
            XV_TRY(hyps_add(&hl[b], K, s->ids + (b * K + k) * s->cap, s->len, (double)run[b * K + k],
                            o->length_penalty));
    return XV_OK;
}

xv_status xv_beam_search(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, const xv_beam_opts *o,
                         xv_beam_result *out) {
    memset(out, 0, sizeof *out);
    int64_t R = 0, V = 0;
    XV_TRY(check_source(src, &R, &V));
    const int K = o->num_beams;
    if (K < 1 || R % K)
        return xv_error(XV_ERR_INVALID_ARG, "beam search: %lld rows are not a whole number of %d-beam groups",
                        (long long)R, K);
    const int64_t B = R / K;
    seqs s;
    XV_TRY(seqs_init(&s, prompt, R, o->max_length));
    const int64_t max_steps = o->max_length - s.len;
    beam_trace tr = {0};
    tr.cand_scores = xv_graph_alloc(g, sizeof(float) * (size_t)(max_steps * B * 2 * K));
    tr.cand_tokens = xv_graph_alloc(g, sizeof(int32_t) * (size_t)(max_steps * B * 2 * K));
    tr.cand_beam = xv_graph_alloc(g, sizeof(int32_t) * (size_t)(max_steps * B * 2 * K));
    tr.beam_scores = xv_graph_alloc(g, sizeof(float) * (size_t)(max_steps * R));
    tr.beam_tokens = xv_graph_alloc(g, sizeof(int32_t) * (size_t)(max_steps * R));
    tr.beam_rows = xv_graph_alloc(g, sizeof(int32_t) * (size_t)(max_steps * R));
    hyp_list *hl = calloc((size_t)B, sizeof *hl);
    hyp *slots = calloc((size_t)(B * (K + 1)), sizeof *slots);
    stepper sp = {0};
    xv_status st = xv_graph_status(g);
    if (st == XV_OK && (!hl || !slots)) st = xv_error(XV_ERR_NOMEM, "beam search: out of memory");
    if (st == XV_OK) st = stepper_begin(&sp, src);
    if (st == XV_OK) {
        for (int64_t b = 0; b < B; b++) hl[b] = (hyp_list){.h = slots + b * (K + 1), .worst = 1e9};
        st = beam_run(g, &sp, src, o, &s, hl, &tr, B, V);
    }
    if (st == XV_OK) st = finalize(g, hl, B, src, o->max_length, out);
    if (st == XV_OK) {
        out->cand_scores = trace_tensor(g, XV_F32, tr.cand_scores, tr.steps, B, 2 * K);
        out->cand_tokens = trace_tensor(g, XV_I32, tr.cand_tokens, tr.steps, B, 2 * K);
        out->cand_beam = trace_tensor(g, XV_I32, tr.cand_beam, tr.steps, B, 2 * K);
        out->beam_scores = trace_tensor(g, XV_F32, tr.beam_scores, tr.steps, R, 0);
        out->beam_tokens = trace_tensor(g, XV_I32, tr.beam_tokens, tr.steps, R, 0);
        out->beam_rows = trace_tensor(g, XV_I32, tr.beam_rows, tr.steps, R, 0);
        st = xv_graph_status(g);
    }
    for (int64_t b = 0; hl && b < B; b++)
        for (int i = 0; i < hl[b].n; i++) free(hl[b].h[i].ids);
    free(hl);
    free(slots);
    stepper_end(&sp);
    free(s.ids);
    return st;
}

/* ---------------------------------------------------------------- greedy */

/* Runs the shared greedy/OSCAR loop. min_length < 0: OSCAR rules. */
typedef struct {
    int max_length, min_length;
    bool oscar;
    xv_tensor *forced;
    xv_rng *sample;     /* draw each token from softmax(logits) (OSCAR sampling) */
    float *logprob_sum; /* [R] (OSCAR) */
    int32_t *steps_unfinished, *chosen; /* [R], [R, max steps] (OSCAR) */
} greedy_opts;

static xv_status greedy_run(xv_graph *g, const xv_lm_source *src, seqs *s, const greedy_opts *o, int64_t V,
                            bool *unfinished) {
    const int64_t R = s->R, max_steps = o->max_length - s->len;
    float *logits = xv_graph_alloc(g, sizeof(float) * (size_t)(R * V));
    if (!logits) return xv_graph_status(g);
    stepper sp;
    xv_status st = stepper_begin(&sp, src);
    for (int step = 0; st == XV_OK && s->len < o->max_length; step++) {
        st = step_logits(&sp, s, NULL, logits);
        bool any = false;
        for (int64_t r = 0; st == XV_OK && r < R; r++) {
            float *x = logits + r * V;
            if (!o->oscar && s->len < o->min_length) x[src->eos_id] = -INFINITY;
            int64_t tok = argmax_row(x, V);
            if (o->forced) {
                if (step >= o->forced->shape[1]) {
                    st = xv_error(XV_ERR_SHAPE, "generate: forced tokens cover %lld steps, step %d needs one",
                                  (long long)o->forced->shape[1], step);
                    break;
                }
                tok = o->forced->idata[r * o->forced->shape[1] + step];
                if (tok < 0 || tok >= V) {
                    st = xv_error(XV_ERR_INVALID_ARG, "generate: forced token %lld outside the vocabulary",
                                  (long long)tok);
                    break;
                }
            }
            if (o->oscar) {
                log_softmax_row(x, V);
                if (o->sample) tok = draw_row(o->sample, x, V);
                if (unfinished[r]) o->logprob_sum[r] += x[tok], o->steps_unfinished[r]++;
                o->chosen[r * max_steps + step] = (int32_t)tok;
            }
            int32_t add = unfinished[r] ? (int32_t)tok : src->pad_id;
            s->ids[r * s->cap + s->len] = add;
            if (add == src->eos_id) unfinished[r] = false;
            any = any || unfinished[r];
        }
        s->len++;
        if (!any) break;
    }
    stepper_end(&sp);
    return st;
}

static xv_tensor *fail_with(xv_graph *g, xv_status st) {
    return xv_graph_fail(g, st, "%s", xv_error_message());
}

xv_tensor *xv_greedy_search(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length,
                            int min_length) {
    int64_t R = 0, V = 0;
    xv_status st = check_source(src, &R, &V);
    seqs s = {0};
    if (st == XV_OK) st = seqs_init(&s, prompt, R, max_length);
    bool *unfinished = st == XV_OK ? xv_graph_alloc(g, sizeof(bool) * (size_t)R) : NULL;
    if (st == XV_OK && !unfinished) st = xv_graph_status(g);
    if (st == XV_OK) {
        for (int64_t r = 0; r < R; r++) unfinished[r] = true;
        greedy_opts o = {.max_length = max_length, .min_length = min_length};
        st = greedy_run(g, src, &s, &o, V, unfinished);
    }
    xv_tensor *out = st == XV_OK ? seqs_tensor(g, &s) : fail_with(g, st);
    free(s.ids);
    return out;
}

static xv_tensor *oscar_run(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length,
                            xv_tensor *forced, xv_rng *sample, xv_tensor **mean_logprob, xv_tensor **chosen) {
    int64_t R = 0, V = 0;
    xv_status st = check_source(src, &R, &V);
    seqs s = {0};
    if (st == XV_OK) st = seqs_init(&s, prompt, R, max_length);
    if (st != XV_OK) return fail_with(g, st);
    if (forced && (forced->dtype != XV_I32 || forced->ndim != 2 || forced->shape[0] != R)) {
        free(s.ids);
        return xv_graph_fail(g, XV_ERR_SHAPE, "generate: forced tokens must be I32 [%lld, steps]", (long long)R);
    }
    const int64_t max_steps = max_length - s.len;
    greedy_opts o = {.max_length = max_length, .oscar = true, .forced = forced, .sample = sample};
    o.logprob_sum = xv_graph_calloc(g, sizeof(float) * (size_t)R);
    o.steps_unfinished = xv_graph_calloc(g, sizeof(int32_t) * (size_t)R);
    o.chosen = xv_graph_calloc(g, sizeof(int32_t) * (size_t)(R * max_steps));
    bool *unfinished = xv_graph_alloc(g, sizeof(bool) * (size_t)R);
    if (!o.logprob_sum || !o.steps_unfinished || !o.chosen || !unfinished) {
        free(s.ids);
        return NULL;
    }
    for (int64_t r = 0; r < R; r++) unfinished[r] = true;
    const int64_t start = s.len;
    st = greedy_run(g, src, &s, &o, V, unfinished);
    if (st != XV_OK) {
        free(s.ids);
        return fail_with(g, st);
    }
    const int64_t steps = s.len - start;
    if (s.len == max_length) /* unfinished rows end with [SEP] */
        for (int64_t r = 0; r < R; r++)
            if (unfinished[r]) s.ids[r * s.cap + s.len - 1] = src->eos_id;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = s.len; i < max_length; i++) s.ids[r * s.cap + i] = src->pad_id;
    s.len = max_length;
    xv_tensor *out = seqs_tensor(g, &s);
    free(s.ids);
    if (mean_logprob) {
        *mean_logprob = xv_tensor_new(g, XV_F32, XV_SHAPE(R));
        for (int64_t r = 0; *mean_logprob && r < R; r++)
            (*mean_logprob)->data[r] = o.logprob_sum[r] / (float)o.steps_unfinished[r];
    }
    if (chosen) {
        *chosen = xv_tensor_new(g, XV_I32, XV_SHAPE(R, steps));
        for (int64_t r = 0; *chosen && r < R; r++)
            memcpy((*chosen)->idata + r * steps, o.chosen + r * max_steps, sizeof(int32_t) * (size_t)steps);
    }
    return out;
}

xv_tensor *xv_repeat_rows(xv_graph *g, xv_tensor *x, int n) {
    if (!x) return NULL;
    xv_tensor *idx = xv_tensor_new(g, XV_I32, XV_SHAPE(x->shape[0] * n));
    if (!idx) return NULL;
    for (int64_t i = 0; i < idx->numel; i++) idx->idata[i] = (int32_t)(i / n);
    return xv_gather_rows(g, x, idx);
}

xv_tensor *xv_oscar_generate(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length,
                             xv_tensor *forced, xv_tensor **mean_logprob, xv_tensor **chosen) {
    return oscar_run(g, src, prompt, max_length, forced, NULL, mean_logprob, chosen);
}

xv_tensor *xv_oscar_sample(xv_graph *g, const xv_lm_source *src, xv_tensor *prompt, int max_length, xv_rng *rng,
                           xv_tensor **mean_logprob, xv_tensor **chosen) {
    if (!rng) return xv_graph_fail(g, XV_ERR_INVALID_ARG, "generate: sampling needs a random stream");
    return oscar_run(g, src, prompt, max_length, NULL, rng, mean_logprob, chosen);
}
