/* X-VLM base VQA answer ranking and beam-search captioning, on the inputs of
 * the PyTorch side (tools/bench_torch_vqa_caption.py; tools/compare_vqa_caption.py
 * runs both and prints the table):
 *   vqa        per question: Swin-B 224, the question encoder (12 layers, the
 *              last 6 cross-attending to the image) and rank_answer with
 *              k = 128 over a list of 3,128 answers (first-token pass, then the
 *              answer decoder on the 128 candidates)
 *   vqa_rank   rank_answer alone on the question states
 *   caption    per image: Swin-B 224 and beam search (3 beams, max_length 20,
 *              min_length 5, prompt "[CLS] a picture of")
 * Inputs are made by formulas both sides share (images, question ids, the
 * answer list: 60 % one piece, 25 % two, 10 % three, 5 % four to six), so
 * with the same weights both sides rank the same answers and write the same
 * captions; each run prints them (`answer`, `caption` lines) for the check.
 * Random weights (uniform ±0.05, seed 1) with the [SEP] logit bias at -10,
 * so every beam runs to max_length on both sides (the longest work).
 *
 * Per piece: one warm-up, then --reps runs; median and best wall seconds and
 * median CPU seconds per run (all threads), and the same per question/image.
 *
 * usage: bench_vqa_caption [--config PATH] [--threads N (2)] [--reps N (3)]
 *          [--questions Q (8)] [--images B (4)] [--only vqa|vqa_rank|caption]...
 *          [--save-weights DIR]   (DIR/vqa.safetensors, DIR/captioning.safetensors; then exits) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/fs.h"
#include "core/rng.h"
#include "model/captioning.h"
#include "model/model.h"
#include "model/vqa.h"
#include "xvlm.h"

enum { N_ANSWERS = 3128, ANSWER_LEN = 8, QUESTION_LEN = 12, K_TEST = 128, SEP_ID = 102 };
static const int32_t PROMPT[] = {101, 1037, 3861, 1997}; /* [CLS] a picture of */

/* ---------------------------------------------------------------- shared inputs
 * (the same formulas as tools/bench_torch_vqa_caption.py) */

static int answer_pieces(int i) {
    int r = (i * 37) % 100;
    return r < 60 ? 1 : r < 85 ? 2 : r < 95 ? 3 : 4 + i % 3;
}

static void fill_answers(xv_tensor *ids, xv_tensor *atts) {
    for (int i = 0; i < N_ANSWERS; i++) {
        int32_t *row = ids->idata + i * ANSWER_LEN, *att = atts->idata + i * ANSWER_LEN;
        int n = answer_pieces(i), t = 0;
        row[t++] = 101;
        for (int j = 0; j < n; j++) row[t++] = 2000 + (int32_t)(((int64_t)i * 7919 + (int64_t)j * 104729) % 28000);
        row[t++] = SEP_ID;
        for (int j = 0; j < ANSWER_LEN; j++) {
            att[j] = j < t;
            if (j >= t) row[j] = 0;
        }
    }
}

static void fill_questions(xv_tensor *ids, xv_tensor *atts) {
    const int64_t Q = ids->shape[0];
    for (int64_t q = 0; q < Q; q++)
        for (int j = 0; j < QUESTION_LEN; j++) {
            ids->idata[q * QUESTION_LEN + j] = j == 0 ? 101 : 2000 + (int32_t)((q * 131 + j * 17) % 28000);
            atts->idata[q * QUESTION_LEN + j] = 1;
        }
}

static void fill_images(xv_tensor *img) {
    const int64_t N = img->shape[0], C = img->shape[1], R = img->shape[2];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < R; y++)
                for (int64_t x = 0; x < R; x++)
                    img->data[((n * C + c) * R + y) * R + x] =
                        (float)((n * 7 + c * 3 + y * 5 + x * 11) % 255) / 127.5f - 1.0f;
}

/* Uniform ±0.05 everywhere, LayerNorm weights 1, the [SEP] logit bias -10. */
static void random_weights(xv_params *p, const char *lm_bias) {
    xv_rng r;
    xv_rng_seed(&r, 1);
    for (int i = 0; i < p->n; i++) {
        xv_tensor *t = p->items[i];
        bool ln_weight = strstr(t->name, "norm") && strstr(t->name, ".weight");
        for (int64_t j = 0; j < t->numel; j++) t->data[j] = ln_weight ? 1.0f : 0.1f * xv_rng_uniform(&r) - 0.05f;
    }
    xv_tensor *bias = xv_params_find(p, lm_bias);
    if (bias) bias->data[SEP_ID] = -10.0f;
}

static xv_status save_params(const xv_params *p, const char *path) {
    xv_st_writer *w;
    XV_TRY(xv_st_writer_new(&w));
    xv_status st = XV_OK;
    for (int i = 0; st == XV_OK && i < p->n; i++)
        st = xv_st_writer_add(w, p->items[i]->name, XV_ST_F32, p->items[i]->shape, p->items[i]->ndim,
                              p->items[i]->data, true);
    if (st == XV_OK) st = xv_st_writer_write(w, path);
    xv_st_writer_free(w);
    return st;
}

/* ---------------------------------------------------------------- pieces */

typedef struct {
    xv_vqa_model *vqa;
    xv_caption_model *cap;
    int Q, B;
    xv_tensor *q_images, *q_ids, *q_atts, *ans_ids, *ans_atts, *c_images, *prompt;
    xv_tensor *q_states; /* for vqa_rank */
    xv_graph *g;
    int32_t *pred;    /* [Q] last ranking's answers */
    int32_t *caption; /* [B, 20] last captions */
    int64_t caption_len;
    bool failed;
} ctx;

static void fail(ctx *c, const char *what) {
    if (!c->failed) fprintf(stderr, "%s failed: %s\n", what, xvlm_last_error());
    c->failed = true;
}

static xv_tensor *question_states(ctx *c, xv_graph *g) {
    xv_tensor *vis = xv_vision_embeds(g, &c->vqa->vision, c->q_images, NULL);
    return xv_vqa_question_states(g, c->vqa, vis, c->q_ids, c->q_atts);
}

static void rank(ctx *c, xv_tensor *q_states) {
    xv_vqa_ranking r;
    if (xv_vqa_rank(c->g, c->vqa, q_states, c->q_atts, c->ans_ids, c->ans_atts, K_TEST, false, &r) != XV_OK)
        return fail(c, "vqa ranking");
    memcpy(c->pred, r.pred->idata, sizeof(int32_t) * (size_t)c->Q);
}

static void run_vqa(ctx *c) {
    xv_graph_reset(c->g);
    xv_tensor *qs = question_states(c, c->g);
    if (!qs) return fail(c, "vqa question encoder");
    rank(c, qs);
}

static void run_vqa_rank(ctx *c) {
    xv_graph_reset(c->g);
    rank(c, c->q_states);
}

static void run_caption(ctx *c) {
    xv_graph_reset(c->g);
    xv_tensor *vis = xv_vision_embeds(c->g, &c->cap->vision, c->c_images, NULL);
    xv_lm_source src = xv_caption_source(c->cap, xv_repeat_rows(c->g, vis, 3));
    const xv_beam_opts o = {.num_beams = 3, .max_length = 20, .min_length = 5, .length_penalty = 1.0f};
    xv_beam_result r;
    if (!src.enc || xv_beam_search(c->g, &src, c->prompt, &o, &r) != XV_OK) return fail(c, "beam search");
    c->caption_len = r.sequences->shape[1];
    memcpy(c->caption, r.sequences->idata, sizeof(int32_t) * (size_t)r.sequences->numel);
}

typedef struct {
    const char *name, *unit;
    void (*run)(ctx *);
} piece;

static const piece PIECES[] = {{"vqa", "question", run_vqa}, {"vqa_rank", "question", run_vqa_rank},
                               {"caption", "image", run_caption}};
enum { N_PIECES = sizeof PIECES / sizeof PIECES[0] };

static void time_piece(ctx *c, const piece *p, int reps, double *med, double *best, double *cpu) {
    double wall[64], cput[64];
    if (reps > 64) reps = 64;
    p->run(c);
    for (int r = 0; r < reps && !c->failed; r++) {
        double t0 = xv_bench_now(), c0 = xv_cpu_seconds();
        p->run(c);
        wall[r] = xv_bench_now() - t0;
        cput[r] = xv_cpu_seconds() - c0;
    }
    *med = xv_bench_sort_median(wall, reps), *cpu = xv_bench_sort_median(cput, reps);
    *best = wall[0];
}

/* ---------------------------------------------------------------- setup */

static bool make_inputs(ctx *c, xv_graph *hold, int res) {
    c->q_images = xv_tensor_new(hold, XV_F32, XV_SHAPE(c->Q, 3, res, res));
    c->c_images = xv_tensor_new(hold, XV_F32, XV_SHAPE(c->B, 3, res, res));
    c->q_ids = xv_tensor_new(hold, XV_I32, XV_SHAPE(c->Q, QUESTION_LEN));
    c->q_atts = xv_tensor_new(hold, XV_I32, XV_SHAPE(c->Q, QUESTION_LEN));
    c->ans_ids = xv_tensor_new(hold, XV_I32, XV_SHAPE(N_ANSWERS, ANSWER_LEN));
    c->ans_atts = xv_tensor_new(hold, XV_I32, XV_SHAPE(N_ANSWERS, ANSWER_LEN));
    c->prompt = xv_tensor_new(hold, XV_I32, XV_SHAPE(4));
    c->pred = xv_graph_alloc(hold, sizeof(int32_t) * (size_t)c->Q);
    c->caption = xv_graph_alloc(hold, sizeof(int32_t) * (size_t)c->B * 3 * 20);
    if (!c->q_images || !c->c_images || !c->q_ids || !c->q_atts || !c->ans_ids || !c->ans_atts || !c->prompt ||
        !c->pred || !c->caption)
        return false;
    fill_images(c->q_images);
    fill_images(c->c_images);
    fill_questions(c->q_ids, c->q_atts);
    fill_answers(c->ans_ids, c->ans_atts);
    memcpy(c->prompt->idata, PROMPT, sizeof PROMPT);
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_vqa_caption [--config PATH] [--threads N] [--reps N] [--questions Q] [--images B]\n"
                    "                         [--only vqa|vqa_rank|caption]... [--save-weights DIR]\n");
    return 2;
}

static void print_outputs(const ctx *c, int piece_index) {
    if (piece_index < 2) {
        printf("answer");
        for (int q = 0; q < c->Q; q++) printf(" %d", c->pred[q]);
        printf("\n");
        return;
    }
    for (int b = 0; b < c->B; b++) {
        printf("caption");
        for (int64_t t = 0; t < c->caption_len; t++) printf(" %d", c->caption[b * c->caption_len + t]);
        printf("\n");
    }
}

int main(int argc, char **argv) {
    const char *cfg_path = "configs/xvlm_base_224.json", *save = NULL;
    int threads = 2, reps = 3, Q = 8, B = 4;
    bool only[N_PIECES] = {0}, any_only = false;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "--config")) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--questions")) Q = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images")) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--save-weights")) save = argv[++i];
        else if (!strcmp(argv[i], "--only")) {
            const int k = xv_bench_piece_index(argv[++i], PIECES, N_PIECES, sizeof PIECES[0]);
            if (k < 0) return usage();
            only[k] = any_only = true;
        } else
            return usage();
    }
    if (threads < 1 || reps < 1 || Q < 1 || B < 1) return usage();
    xvlm_set_threads(threads);
    xv_model_config cf;
    if (xv_config_load(cfg_path, &cf) != XV_OK) {
        fprintf(stderr, "%s (run from the repository root or pass --config)\n", xvlm_last_error());
        return 1;
    }
    ctx c = {.Q = Q, .B = B};
    if (xv_vqa_create(&cf, &c.vqa) != XV_OK || xv_caption_create(&cf, &c.cap) != XV_OK) {
        fprintf(stderr, "%s\n", xvlm_last_error());
        return 1;
    }
    random_weights(&c.vqa->params, "text_decoder.cls.predictions.bias");
    random_weights(&c.cap->params, "text_decoder.cls.predictions.bias");
    if (save) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/vqa.safetensors", save);
        snprintf(b, sizeof b, "%s/captioning.safetensors", save);
        if (xv_fs_mkdir_p(save) != XV_OK || save_params(&c.vqa->params, a) != XV_OK ||
            save_params(&c.cap->params, b) != XV_OK) {
            fprintf(stderr, "%s\n", xvlm_last_error());
            return 1;
        }
        printf("wrote %s and %s\n", a, b);
        return 0;
    }
    xv_graph *hold = xv_graph_new(0);
    c.g = xv_graph_new(0);
    if (!hold || !c.g || !make_inputs(&c, hold, cf.vision.image_res)) {
        fprintf(stderr, "setup failed: %s\n", xvlm_last_error());
        return 1;
    }
    xv_graph_set_grad(hold, false);
    xv_graph_set_grad(c.g, false);
    c.q_states = question_states(&c, hold);
    if (!c.q_states) {
        fprintf(stderr, "setup failed: %s\n", xvlm_last_error());
        return 1;
    }
    printf("# C xvlm, %d threads, %s; %d questions (k %d of %d answers), %d images (beam 3, lengths 20/5)\n",
           xvlm_get_threads(), cfg_path, Q, K_TEST, N_ANSWERS, B);
    printf("# %-9s %9s %8s %8s %6s %12s %12s %10s\n", "piece", "median s", "best s", "cpu s", "units", "median s/unit",
           "best s/unit", "cpu s/unit");
    for (int i = 0; i < N_PIECES && !c.failed; i++) {
        if (any_only && !only[i]) continue;
        double med, best, cpu;
        time_piece(&c, &PIECES[i], reps, &med, &best, &cpu);
        if (c.failed) break;
        const int units = i < 2 ? Q : B;
        printf("row %-9s %9.3f %8.3f %8.3f %6d %12.4f %12.4f %10.4f\n", PIECES[i].name, med, best, cpu, units,
               med / units, best / units, cpu / units);
        print_outputs(&c, i);
        fflush(stdout);
    }
    printf("# peak RSS %.0f MiB\n", xv_bench_peak_rss_mib());
    xv_graph_free(c.g);
    xv_graph_free(hold);
    xv_vqa_free(c.vqa);
    xv_caption_free(c.cap);
    return c.failed ? 1 : 0;
}
