/* Self-critical sequence training of a captioning model, as the official
 * Captioning_scst.py with utils ScstRewardCriterion (vqa-captioning sheet
 * §3.6), behind finetune_task.h as the task "captioning_scst".
 *
 * Keys, model, training file and evaluation are the captioning task's
 * (finetune_captioning.h); the schedule may be schedular{num_training_steps}
 * with an evaluation every eval_steps, as Captioning_scst.yaml sets it.
 * A sample is a caption annotation (an image with 5 captions is visited 5
 * times per epoch); its references are all captions of its image,
 * pre_caption(·, max_tokens), 5 of them drawn without replacement when it has
 * more (random.sample). Per batch:
 *  1. the greedy baseline: the OSCAR loop in eval mode without gradients;
 *  2. sc_train_sample_n captions per image sampled from softmax(logits) (the
 *     vision encoder in training mode, the sampling steps without dropout:
 *     the decoder reruns the whole prefix each step here, so a per-step
 *     dropout mask would not be the official cached one);
 *  3. rewards CIDEr-D(sample) - CIDEr-D(baseline), document frequencies
 *     from the training references (one document per image: what the
 *     official coco-train-words.p holds for COCO; cider_cached_tokens, a
 *     Python pickle, is not read);
 *  4. loss = mean over samples of -reward · (mean log-prob of the sampled
 *     tokens up to its [SEP]), recomputed with teacher forcing in training
 *     mode (xv_caption_scst_loss).
 * The epoch records log train_loss and the batch means of CIDEr-D of the
 * samples (train_cider_sample, the official get_score) and of the greedy
 * captions (train_cider_greedy, the baseline). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/caption.h"
#include "data/detokenize.h"
#include "data/transforms.h"
#include "model/captioning.h"
#include "tasks/cider.h"
#include "train/finetune_captioning.h"

#define SCST_REFS 5 /* references per sample: random.sample(captions_gt, 5) */

typedef struct {
    xv_caption_train_set t;
    xv_ft_batch b;
    char ***refs;  /* [images][n_refs] wrapped pre_caption'd references */
    int *n_refs;   /* [images] */
    xv_cider *cider;
    int32_t *prompt;
    int prompt_len;
    xv_graph *eval_g; /* the greedy baseline: eval mode, no gradients */
    double *score;    /* [B·n samples + B greedy] CIDEr-D of the batch */
    float *reward;    /* [B·n] */
} scst_data;

/* Each image's references: every caption of it, pre_caption'd and wrapped. */
static xv_status collect_refs(xv_ft *f, scst_data *d) {
    const int n_img = d->b.n_images;
    d->refs = calloc((size_t)n_img + 1, sizeof *d->refs);
    d->n_refs = calloc((size_t)n_img + 1, sizeof *d->n_refs);
    int *cap = calloc((size_t)n_img + 1, sizeof *cap);
    xv_status st = d->refs && d->n_refs && cap ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t s = 0; st == XV_OK && s < d->t.n; s++) {
        const int i = d->b.img_of[s];
        if (d->n_refs[i] == cap[i]) {
            cap[i] = cap[i] ? 2 * cap[i] : 8;
            char **grown = realloc(d->refs[i], sizeof *grown * (size_t)cap[i]);
            if (!grown) {
                st = xv_error(XV_ERR_NOMEM, "out of memory");
                break;
            }
            d->refs[i] = grown;
        }
        char *clean = NULL;
        size_t len;
        st = xv_pre_caption(d->t.caption[s], strlen(d->t.caption[s]), f->cfg.max_tokens, &clean, &len);
        if (st == XV_OK && !(d->refs[i][d->n_refs[i]] = xv_cider_wrap(clean))) st = xv_error(XV_ERR_NOMEM, "out of memory");
        if (st == XV_OK) d->n_refs[i]++;
        free(clean);
    }
    free(cap);
    XV_TRY(st);
    return xv_cider_new((const char *const *const *)d->refs, d->n_refs, n_img, &d->cider);
}

static xv_status setup(xv_ft *f) {
    const xv_caption_keys *k = f->cfg.task_data;
    scst_data *d = calloc(1, sizeof *d);
    if (!(f->task_state = d)) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_caption_train_set_read(f, &d->t));
    f->n = d->t.n;
    XV_TRY(xv_caption_prompt_ids(f, &d->prompt, &d->prompt_len));
    if (k->max_length <= d->prompt_len)
        return xv_error(XV_ERR_INVALID_ARG, "%s: max_length %d leaves no room after the prompt's %d ids",
                        f->o->config_path, k->max_length, d->prompt_len);
    if (f->n < f->cfg.batch_size) return XV_OK; /* refused by the loop, naming the file */
    XV_TRY(xv_ft_batch_init(&d->b, f, d->t.paths, d->t.n, d->t.path_of, d->t.n));
    const int B = f->cfg.batch_size, n = k->sc_train_sample_n;
    d->score = malloc(sizeof *d->score * (size_t)(B * n + B));
    d->reward = malloc(sizeof *d->reward * (size_t)(B * n));
    if (!d->score || !d->reward || !(d->eval_g = xv_graph_new(0))) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_graph_set_grad(d->eval_g, false);
    xv_graph_set_training(d->eval_g, false);
    return collect_refs(f, d);
}

static void task_free(xv_ft *f) {
    scst_data *d = f->task_state;
    if (!d) return;
    for (int i = 0; d->refs && i < d->b.n_images; i++) {
        for (int r = 0; r < d->n_refs[i]; r++) free(d->refs[i][r]);
        free(d->refs[i]);
    }
    free(d->refs), free(d->n_refs);
    xv_cider_free(d->cider);
    xv_graph_free(d->eval_g);
    free(d->prompt), free(d->score), free(d->reward);
    xv_caption_train_set_free(&d->t);
    xv_ft_batch_free(&d->b);
    free(d);
    f->task_state = NULL;
}

/* The references a sample is scored against: all of its image's, or
 * SCST_REFS of them drawn without replacement (random.sample) with rng. */
static int pick_refs(xv_rng *rng, char *const *all, int n_all, const char **pick) {
    if (n_all <= SCST_REFS) {
        for (int i = 0; i < n_all; i++) pick[i] = all[i];
        return n_all;
    }
    int idx[SCST_REFS];
    for (int i = 0; i < SCST_REFS; i++) {
        bool again;
        do {
            idx[i] = (int)xv_rng_below(rng, (uint64_t)n_all);
            again = false;
            for (int j = 0; j < i; j++) again = again || idx[j] == idx[i];
        } while (again);
        pick[i] = all[idx[i]];
    }
    return SCST_REFS;
}

/* CIDEr-D of row r of seqs (the caption after the prompt) against refs. */
static xv_status score_row(const xv_ft *f, const scst_data *d, const xv_tensor *seqs, int64_t r,
                           const char *const *refs, int n_refs, double *out) {
    const xv_caption_keys *k = f->cfg.task_data;
    const int64_t S = seqs->shape[1];
    char *caption = xv_decode_caption(f->tok, seqs->idata + r * S, (size_t)S, strlen(k->prompt));
    char *cand = caption ? xv_cider_wrap(caption) : NULL;
    if (cand) *out = xv_cider_d(d->cider, cand, refs, n_refs);
    free(caption);
    free(cand);
    return cand ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
}

/* d->score of the batch: its B·n samples (image-major), then its B greedy
 * captions, each image's against the same drawn references. */
static xv_status score_batch(xv_ft *f, scst_data *d, int64_t b, const xv_tensor *samples, const xv_tensor *greedy) {
    const xv_caption_keys *k = f->cfg.task_data;
    const int B = f->cfg.batch_size, n = k->sc_train_sample_n;
    for (int i = 0; i < B; i++) {
        const int img = d->b.img_of[f->order[b * B + i]];
        const char *refs[SCST_REFS];
        const int nr = pick_refs(&f->neg, d->refs[img], d->n_refs[img], refs);
        for (int j = 0; j < n; j++) XV_TRY(score_row(f, d, samples, (int64_t)i * n + j, refs, nr, &d->score[i * n + j]));
        XV_TRY(score_row(f, d, greedy, i, refs, nr, &d->score[B * n + i]));
    }
    return XV_OK;
}

/* The rewards of the batch's B·n samples (d->reward) from their scores and
 * the baseline's (d->score: samples first, then the B greedy captions). */
static void rewards(const xv_caption_keys *k, scst_data *d, int B) {
    const int n = k->sc_train_sample_n;
    for (int i = 0; i < B; i++) {
        double sum = 0;
        for (int j = 0; j < n; j++) sum += d->score[i * n + j];
        for (int j = 0; j < n; j++) {
            const double s = d->score[i * n + j];
            const double base = k->sc_baseline_sample ? (sum - s) / (n - 1) : d->score[B * n + i];
            d->reward[i * n + j] = (float)(s - base);
        }
    }
}

static xv_tensor *prompt_tensor(xv_graph *g, const scst_data *d) {
    xv_tensor *p = xv_tensor_new(g, XV_I32, XV_SHAPE(d->prompt_len));
    if (p) memcpy(p->idata, d->prompt, sizeof(int32_t) * (size_t)d->prompt_len);
    return p;
}

static xv_status loss(xv_ft *f, int64_t b, xv_tensor **out, double term[XV_FT_MAX_TERMS], xv_update_record *rec) {
    scst_data *d = f->task_state;
    const xv_caption_keys *k = f->cfg.task_data;
    const xv_caption_model *m = f->task_model;
    const int B = f->cfg.batch_size, R = f->res, n = k->sc_train_sample_n;
    for (int i = 0; i < B; i++) {
        const int32_t s = f->order[b * B + i];
        XV_TRY(xv_transform_train(&f->aug, &d->b.images[d->b.img_of[s]], R, XV_TRAIN_FINETUNE,
                                  d->b.pixels + (size_t)i * 3 * R * R));
    }
    /* 1. the baseline: model.eval(), no_grad, greedy=True */
    xv_graph *e = d->eval_g;
    xv_graph_reset(e);
    xv_tensor *vis0 = xv_vision_embeds(e, &m->vision, xv_tensor_wrap_f32(e, d->b.pixels, XV_SHAPE(B, 3, R, R)), NULL);
    const xv_lm_source src0 = xv_caption_source(m, vis0);
    xv_tensor *greedy = xv_oscar_generate(e, &src0, prompt_tensor(e, d), k->max_length, NULL, NULL, NULL);
    XV_TRY(xv_graph_status(e));
    /* 2. the samples, n per image (image-major, as num_return_sequences) */
    xv_graph *g = f->g;
    xv_tensor *vis = xv_vision_embeds(g, &m->vision, xv_tensor_wrap_f32(g, d->b.pixels, XV_SHAPE(B, 3, R, R)), NULL);
    xv_tensor *vis_n = xv_repeat_rows(g, vis, n), *chosen = NULL;
    const xv_lm_source src = xv_caption_source(m, vis_n);
    xv_tensor *samples = xv_oscar_sample(g, &src, prompt_tensor(g, d), k->max_length, &f->neg, NULL, &chosen);
    XV_TRY(xv_graph_status(g));
    /* 3. rewards */
    XV_TRY(score_batch(f, d, b, samples, greedy));
    double mean_sample = 0, mean_greedy = 0;
    for (int r = 0; r < B * n; r++) mean_sample += d->score[r] / (B * n);
    for (int i = 0; i < B; i++) mean_greedy += d->score[B * n + i] / B;
    rewards(k, d, B);
    /* 4. -reward · mean log-prob, teacher-forced with gradients */
    *out = xv_caption_scst_loss(g, m, vis_n, samples, d->prompt_len, chosen, d->reward, NULL);
    XV_TRY(xv_graph_status(g));
    rec->region = false;
    term[0] = (*out)->data[0];
    term[1] = mean_sample;
    term[2] = mean_greedy;
    return XV_OK;
}

const xv_finetune_task xv_ft_captioning_scst = {
    .name = "captioning_scst",
    XV_CAPTION_TASK_COMMON,
    .n_terms = 3,
    .terms = {"loss", "cider_sample", "cider_greedy"},
    .setup = setup,
    .loss = loss,
    .free = task_free,
    XV_CAPTION_TASK_EVALUATION,
};
