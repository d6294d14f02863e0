/* Position probes (docs/demo.md, "What limits grounding"): how much of where
 * things are can a linear layer read from a model's features?
 *
 *   build/bench/probe_position MODEL_DIR WORLD_DIR [MAX_TRAIN_IMAGES [TRAIN TEST]]
 *
 * WORLD_DIR is an `xvlm synth` world; the probes are fitted by ridge least
 * squares on its grounding_train.json (at most MAX_TRAIN_IMAGES images,
 * default 500) and scored by R^2 on grounding_test.json (or the files TRAIN
 * and TEST of WORLD_DIR, e.g. grounding_test_attributes.json):
 *   1. each vision patch token (Swin output) -> its (row, column) in the grid;
 *   2. the fusion encoder's [CLS] (text cross-attending to the image, what the
 *      box head reads) -> the expression's true box (cx, cy, w, h);
 *   3. the image's mean token (slot 0) -> the same box (one-object worlds).
 * R^2 near 1: the position is there, linearly; near 0: it is not.
 * Then selection, on the test split: per fusion layer and head, the share of
 * the text [CLS]'s cross-attention that falls on the named object's patches
 * (each patch weighted by the part of it the box covers) against the share of
 * the patches the box covers (what a uniform attention would give), and the
 * same for the image's other objects (the other expressions' boxes). A
 * selecting attention has target mass >> its area share and other mass <<.
 * Last, whether the tokens under an object say what it is (its colour and
 * shape words, from the two-word expressions): what a selection matches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "nn/bert.h"
#include "tasks/eval_data.h"

#define RIDGE 1e-3

/* Least squares with a bias column and a small ridge: W [(d+1), k] from
 * X [n, d], Y [n, k] (normal equations, Cholesky). */
static double *fit(const float *X, const double *Y, int64_t n, int d, int k) {
    const int D = d + 1;
    double *A = calloc((size_t)D * D, sizeof *A), *B = calloc((size_t)D * k, sizeof *B);
    double *x = malloc(sizeof *x * (size_t)D);
    if (!A || !B || !x) goto fail;
    for (int64_t r = 0; r < n; r++) {
        for (int i = 0; i < d; i++) x[i] = X[r * d + i];
        x[d] = 1.0;
        for (int i = 0; i < D; i++) {
            for (int j = 0; j <= i; j++) A[i * D + j] += x[i] * x[j];
            for (int j = 0; j < k; j++) B[i * k + j] += x[i] * Y[r * k + j];
        }
    }
    for (int i = 0; i < D; i++) A[i * D + i] += RIDGE * (double)n;
    for (int j = 0; j < D; j++) { /* Cholesky, lower triangle in place */
        for (int p = 0; p < j; p++) A[j * D + j] -= A[j * D + p] * A[j * D + p];
        if (A[j * D + j] <= 0) goto fail;
        A[j * D + j] = sqrt(A[j * D + j]);
        for (int i = j + 1; i < D; i++) {
            for (int p = 0; p < j; p++) A[i * D + j] -= A[i * D + p] * A[j * D + p];
            A[i * D + j] /= A[j * D + j];
        }
    }
    for (int c = 0; c < k; c++) { /* L L^T w = b */
        for (int i = 0; i < D; i++) {
            double s = B[i * k + c];
            for (int p = 0; p < i; p++) s -= A[i * D + p] * B[p * k + c];
            B[i * k + c] = s / A[i * D + i];
        }
        for (int i = D - 1; i >= 0; i--) {
            double s = B[i * k + c];
            for (int p = i + 1; p < D; p++) s -= A[p * D + i] * B[p * k + c];
            B[i * k + c] = s / A[i * D + i];
        }
    }
    free(A);
    free(x);
    return B;
fail:
    free(A);
    free(B);
    free(x);
    return NULL;
}

/* R^2 of output column c of X W against Y. */
static double r2(const double *W, const float *X, const double *Y, int64_t n, int d, int k, int c) {
    double mean = 0, sse = 0, sst = 0;
    for (int64_t r = 0; r < n; r++) mean += Y[r * k + c];
    mean /= (double)n;
    for (int64_t r = 0; r < n; r++) {
        double p = W[d * k + c];
        for (int i = 0; i < d; i++) p += X[r * d + i] * W[i * k + c];
        sse += (p - Y[r * k + c]) * (p - Y[r * k + c]);
        sst += (Y[r * k + c] - mean) * (Y[r * k + c] - mean);
    }
    return sst > 0 ? 1.0 - sse / sst : 0.0;
}

typedef struct {
    xvlm_images *im;
    xvlm_texts *tx;
    float *cls;  /* [n, H] fusion [CLS] */
    float *tok;  /* [n_images · P, C] patch tokens */
    float *mean; /* [n, C] slot 0 of each expression's image */
    double *box; /* [n, 4] true (cx, cy, w, h), relative */
    double *rc;  /* [n_images · P, 2] (row, col) */
    int64_t n, n_images;
} features;

typedef struct {
    float *cls;
    int H;
} cls_sink;

static xv_status keep_cls(xvlm_ctx *ctx, xv_tensor *cls, int first, void *user) {
    (void)ctx;
    cls_sink *s = user;
    XV_TRY(xv_graph_status(ctx->g));
    memcpy(s->cls + (int64_t)first * s->H, cls->data, sizeof(float) * (size_t)(cls->shape[0] * s->H));
    return XV_OK;
}

static xv_status extract(xvlm_ctx *ctx, const xv_grounding_set *set, int64_t max_images, features *f) {
    memset(f, 0, sizeof *f);
    const xv_model *m = ctx->model->m;
    f->n_images = set->n_images < max_images ? set->n_images : max_images;
    int64_t n = 0;
    while (n < set->n && set->image[n] < f->n_images) n++; /* images in order of first appearance */
    f->n = n;
    const int H = m->cfg.text.hidden, C = m->cfg.vision.vision_width;
    const int64_t T = 1 + xv_config_num_patches(&m->cfg), P = T - 1;
    xvlm_image_params ip = xvlm_image_params_default();
    XV_TRY(xv_api_encode_image_files(ctx, (const char *const *)set->image_paths, (int)f->n_images, &ip, &f->im));
    XV_TRY(xv_api_encode_texts(ctx, (const char *const *)set->texts, (int)n, NULL, &f->tx));
    f->cls = malloc(sizeof(float) * (size_t)(n * H));
    f->tok = malloc(sizeof(float) * (size_t)(f->n_images * P * C));
    f->mean = malloc(sizeof(float) * (size_t)(n * C));
    f->box = malloc(sizeof(double) * (size_t)(n * 4));
    f->rc = malloc(sizeof(double) * (size_t)(f->n_images * P * 2));
    float *one = malloc(sizeof(float) * (size_t)(T * C));
    xvlm_pair *pairs = malloc(sizeof *pairs * (size_t)n);
    if (!f->cls || !f->tok || !f->mean || !f->box || !f->rc || !one || !pairs) {
        free(one);
        free(pairs);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    const int side = (int)llround(sqrt((double)P));
    for (int64_t i = 0; i < f->n_images; i++) {
        xv_api_image_tokens(f->im, i, one);
        memcpy(f->tok + i * P * C, one + C, sizeof(float) * (size_t)(P * C));
        for (int64_t p = 0; p < P; p++) {
            f->rc[(i * P + p) * 2] = (double)(p / side);
            f->rc[(i * P + p) * 2 + 1] = (double)(p % side);
        }
    }
    for (int64_t e = 0; e < n; e++) {
        pairs[e] = (xvlm_pair){.image = set->image[e], .text = e};
        xv_api_image_tokens(f->im, set->image[e], one);
        memcpy(f->mean + e * C, one, sizeof(float) * (size_t)C);
        const double *b = set->bbox[e];
        const double W = set->size[e][0], Hh = set->size[e][1];
        const double rel[4] = {(b[0] + b[2] / 2) / W, (b[1] + b[3] / 2) / Hh, b[2] / W, b[3] / Hh};
        memcpy(f->box + e * 4, rel, sizeof rel);
    }
    free(one);
    cls_sink sink = {f->cls, H};
    xv_status st = xv_api_fusion_pairs(ctx, f->im, f->tx, pairs, (int)n, keep_cls, &sink);
    xv_graph_reset(ctx->g);
    free(pairs);
    return st;
}

static void features_free(features *f) {
    xvlm_images_free(f->im);
    xvlm_texts_free(f->tx);
    free(f->cls);
    free(f->tok);
    free(f->mean);
    free(f->box);
    free(f->rc);
}

/* The part of patch (row, col) of an n x n grid covered by the relative box
 * (cx, cy, w, h) of an image. */
static double cover(int row, int col, int n, const double *b) {
    const double x0 = b[0] - b[2] / 2, x1 = b[0] + b[2] / 2, y0 = b[1] - b[3] / 2, y1 = b[1] + b[3] / 2;
    const double px0 = (double)col / n, px1 = (double)(col + 1) / n, py0 = (double)row / n, py1 = (double)(row + 1) / n;
    const double ox = fmin(x1, px1) - fmax(x0, px0), oy = fmin(y1, py1) - fmax(y0, py0);
    return ox > 0 && oy > 0 ? ox * oy * n * n : 0.0;
}

/* Cross-attention probabilities of every fusion layer for expression e:
 * probs[l][h] gets A[1+P] of the [CLS] row of head h (layer fusion_layer + l),
 * then the mean of the other text rows (the words). */
static xv_status cls_attention(xvlm_ctx *ctx, const features *f, int64_t e, const xv_grounding_set *set, float *probs) {
    xv_model *m = ctx->model->m;
    xv_graph *g = ctx->g;
    const int64_t r0 = f->tx->off[e], L = f->tx->off[e + 1] - r0;
    const int H = f->tx->H, T = f->im->T, C = f->im->C, heads = m->cfg.text.heads;
    xv_graph_reset(g);
    xv_tensor *x = xv_tensor_new(g, XV_F32, XV_SHAPE(1, L, H));
    xv_tensor *atts = xv_tensor_new(g, XV_I32, XV_SHAPE(1, L));
    xv_tensor *img = xv_tensor_new(g, XV_F32, XV_SHAPE(1, T, C));
    if (!x || !atts || !img) return xv_graph_status(g);
    memcpy(x->data, f->tx->states + (size_t)r0 * (size_t)H, sizeof(float) * (size_t)(L * H));
    for (int64_t t = 0; t < L; t++) atts->idata[t] = 1;
    xv_api_image_tokens(f->im, set->image[e], img->data);
    x->requires_grad = true; /* the probed layer records the probabilities on a gradient graph */
    xv_graph_set_grad(g, true);
    xv_params_set_requires_grad(&m->params, false);
    for (int i = m->cfg.text.fusion_layer, l = 0; i < m->cfg.text.layers; i++, l++) {
        xv_tensor *a = NULL;
        x = xv_bert_layer_probed(g, &m->text, i, x, atts, img, NULL, &a);
        if (!a) break;
        for (int h = 0; h < heads; h++) { /* A [1, heads, L, T]: row 0 of head h, then the mean of the words */
            float *cls = probs + ((size_t)l * heads + h) * 2 * T, *words = cls + T;
            memcpy(cls, a->data + (size_t)h * L * T, sizeof(float) * (size_t)T);
            for (int64_t j = 0; j < T; j++) {
                double sum = 0;
                for (int64_t t = 1; t < L; t++) sum += a->data[((size_t)h * L + t) * T + j];
                words[j] = L > 1 ? (float)(sum / (double)(L - 1)) : 0.0f;
            }
        }
    }
    xv_params_set_requires_grad(&m->params, true);
    xv_graph_set_grad(g, false);
    return xv_graph_status(g);
}

/* Mean over the test expressions of the attention mass of the text [CLS] (and
 * of the mean word) on the target's patches, on the other objects' patches and
 * on the image [CLS] (slot 0), next to the patch shares of target and others. */
static xv_status selection(xvlm_ctx *ctx, const features *f, const xv_grounding_set *set) {
    const xv_model *m = ctx->model->m;
    const int layers = m->cfg.text.layers - m->cfg.text.fusion_layer, heads = m->cfg.text.heads;
    const int T = f->im->T, P = T - 1, n = (int)llround(sqrt((double)P));
    const int K = layers * heads * 2; /* [CLS] and words of every head */
    float *probs = malloc(sizeof(float) * (size_t)(K * T));
    double *w_t = malloc(sizeof(double) * (size_t)P), *w_o = malloc(sizeof(double) * (size_t)P);
    double *acc = calloc((size_t)K * 3, sizeof *acc); /* target, others, slot 0 */
    double share_t = 0, share_o = 0;
    xv_status st = probs && w_t && w_o && acc ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; st == XV_OK && e < f->n; e++) {
        for (int p = 0; p < P; p++) {
            w_t[p] = cover(p / n, p % n, n, f->box + e * 4);
            w_o[p] = 0;
            for (int64_t o = 0; o < f->n; o++) /* the image's other objects, each once */
                if (set->image[o] == set->image[e] && memcmp(set->bbox[o], set->bbox[e], sizeof set->bbox[e]))
                    w_o[p] = fmax(w_o[p], fmin(cover(p / n, p % n, n, f->box + o * 4), 1.0 - w_t[p]));
            share_t += w_t[p] / P / (double)f->n, share_o += w_o[p] / P / (double)f->n;
        }
        if ((st = cls_attention(ctx, f, e, set, probs)) != XV_OK) break;
        for (int k = 0; k < K; k++) {
            const float *a = probs + (size_t)k * T;
            for (int p = 0; p < P; p++) acc[k * 3] += a[1 + p] * w_t[p], acc[k * 3 + 1] += a[1 + p] * w_o[p];
            acc[k * 3 + 2] += a[0];
        }
    }
    if (st == XV_OK) {
        printf("4. cross-attention mass (test, %lld expressions): patch share target %.3f, other objects %.3f\n",
               (long long)f->n, share_t, share_o);
        for (int k = 0; k < K; k++)
            printf("   fusion layer %d head %d %-5s: target %.3f (x%.2f of its share)  others %.3f (x%.2f)  image [CLS] %.3f\n",
                   k / 2 / heads, k / 2 % heads, k % 2 ? "words" : "[CLS]", acc[k * 3] / f->n, acc[k * 3] / f->n / share_t, acc[k * 3 + 1] / f->n,
                   acc[k * 3 + 1] / f->n / share_o, acc[k * 3 + 2] / f->n);
    }
    xv_graph_reset(ctx->g);
    free(probs);
    free(w_t);
    free(w_o);
    free(acc);
    return st;
}

/* Which word of `words` the expression's first (what = 0) or last (what = 1)
 * word is, or -1: the attribute expressions "red circle" of a synth world. */
static int word_class(const char *text, const char *const *words, int what) {
    const char *sp = strchr(text, ' ');
    if (!sp || strchr(sp + 1, ' ')) return -1; /* two words only */
    const char *w = what ? sp + 1 : text;
    const size_t len = what ? strlen(w) : (size_t)(sp - text);
    for (int k = 0; words[k]; k++)
        if (strlen(words[k]) == len && !strncmp(words[k], w, len)) return k;
    return -1;
}

/* The tokens under each two-word expression's box, averaged (each patch
 * weighted by the part the box covers), and its class: X [n, C], Y one-hot. */
static int64_t pooled(const features *f, const xv_grounding_set *set, const char *const *words, int what, int K,
                      float *X, double *Y) {
    const int64_t P = f->im->T - 1;
    const int C = f->im->C, n = (int)llround(sqrt((double)P));
    int64_t m = 0;
    for (int64_t e = 0; e < f->n; e++) {
        const int k = word_class(set->texts[e], words, what);
        if (k < 0) continue;
        double wsum = 0;
        for (int c = 0; c < C; c++) X[m * C + c] = 0;
        for (int64_t p = 0; p < P; p++) {
            const double w = cover((int)(p / n), (int)(p % n), n, f->box + e * 4);
            wsum += w;
            for (int c = 0; c < C; c++) X[m * C + c] += (float)(w * f->tok[(set->image[e] * P + p) * C + c]);
        }
        for (int c = 0; c < C; c++) X[m * C + c] /= (float)(wsum > 0 ? wsum : 1);
        for (int j = 0; j < K; j++) Y[m * K + j] = j == k;
        m++;
    }
    return m;
}

/* 5. Do the tokens under an object say what it is? A linear probe (one-hot
 * ridge regression, argmax) from the pooled tokens to the expression's colour
 * word and to its shape word, accuracy on the test split. */
static xv_status content(const features *tr, const xv_grounding_set *trs, const features *te,
                         const xv_grounding_set *tes) {
    static const char *const colours[] = {"black", "blue", "green", "orange", "purple", "red", "white", "yellow", NULL};
    static const char *const shapes[] = {"circle", "cross", "diamond", "heart", "hexagon", "square", "star",
                                         "triangle", NULL};
    const int C = tr->im->C, K = 8;
    float *Xtr = malloc(sizeof(float) * (size_t)(tr->n * C)), *Xte = malloc(sizeof(float) * (size_t)(te->n * C));
    double *Ytr = malloc(sizeof(double) * (size_t)(tr->n * K)), *Yte = malloc(sizeof(double) * (size_t)(te->n * K));
    xv_status st = Xtr && Xte && Ytr && Yte ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int what = 0; st == XV_OK && what < 2; what++) {
        const char *const *words = what ? shapes : colours;
        const int64_t ntr = pooled(tr, trs, words, what, K, Xtr, Ytr), nte = pooled(te, tes, words, what, K, Xte, Yte);
        double *W = ntr > C && nte > 0 ? fit(Xtr, Ytr, ntr, C, K) : NULL;
        if (!W) {
            printf("5. tokens under the box -> %s word: too few two-word expressions (%lld, %lld)\n",
                   what ? "shape" : "colour", (long long)ntr, (long long)nte);
            continue;
        }
        int64_t right = 0;
        for (int64_t r = 0; r < nte; r++) {
            int best = 0, truth = 0;
            double bv = -1e300;
            for (int k = 0; k < K; k++) {
                double v = W[C * K + k];
                for (int c = 0; c < C; c++) v += Xte[r * C + c] * W[c * K + k];
                if (v > bv) bv = v, best = k;
                if (Yte[r * K + k] > 0) truth = k;
            }
            right += best == truth;
        }
        printf("5. tokens under the box -> %-6s word: accuracy %.3f (chance 0.125; fit on %lld, tested on %lld)\n",
               what ? "shape" : "colour", (double)right / (double)nte, (long long)ntr, (long long)nte);
        free(W);
    }
    free(Xtr);
    free(Xte);
    free(Ytr);
    free(Yte);
    return st;
}

/* Fit on train, print test R^2 per output. */
static int probe(const char *what, const float *Xtr, const double *Ytr, int64_t ntr, const float *Xte,
                 const double *Yte, int64_t nte, int d, int k, const char *const *names) {
    double *W = fit(Xtr, Ytr, ntr, d, k);
    if (!W) {
        fprintf(stderr, "probe %s: the normal equations are singular\n", what);
        return 1;
    }
    printf("%-44s", what);
    for (int c = 0; c < k; c++) printf("  %s R2 %.3f", names[c], r2(W, Xte, Yte, nte, d, k, c));
    printf("   (fit on %lld, tested on %lld)\n", (long long)ntr, (long long)nte);
    free(W);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR WORLD_DIR [MAX_TRAIN_IMAGES [TRAIN TEST]]\n", argv[0]);
        return 2;
    }
    const int64_t max_train = argc > 3 ? atoll(argv[3]) : 500;
    char tr_path[4096], te_path[4096];
    const bool named = argc > 5;
    snprintf(tr_path, sizeof tr_path, "%s/%s", argv[2], named ? argv[4] : "grounding_train.json");
    snprintf(te_path, sizeof te_path, "%s/%s", argv[2], named ? argv[5] : "grounding_test.json");
    xvlm_model *model = NULL;
    xvlm_ctx *ctx = NULL;
    xv_grounding_set tr = {0}, te = {0};
    features ftr = {0}, fte = {0};
    int rc = 1;
    if (xvlm_model_load(argv[1], NULL, &model) != XVLM_OK || xvlm_ctx_new(model, &ctx) != XVLM_OK ||
        xv_grounding_set_read(tr_path, &(xv_fs_root){.root = argv[2]}, &tr) != XV_OK ||
        xv_grounding_set_read(te_path, &(xv_fs_root){.root = argv[2]}, &te) != XV_OK ||
        extract(ctx, &tr, max_train, &ftr) != XV_OK || extract(ctx, &te, te.n_images, &fte) != XV_OK) {
        fprintf(stderr, "position probe: %s\n", xv_error_message());
        goto done;
    }
    const xv_model *m = ctx->model->m;
    const int H = m->cfg.text.hidden, C = m->cfg.vision.vision_width;
    const int64_t P = xv_config_num_patches(&m->cfg);
    static const char *rc_names[2] = {"row", "col"}, *box_names[4] = {"cx", "cy", "w", "h"};
    rc = probe("1. Swin patch token -> (row, col)", ftr.tok, ftr.rc, ftr.n_images * P, fte.tok, fte.rc,
               fte.n_images * P, C, 2, rc_names);
    rc |= probe("2. fusion [CLS] -> true box", ftr.cls, ftr.box, ftr.n, fte.cls, fte.box, fte.n, H, 4, box_names);
    rc |= probe("3. image mean token -> true box", ftr.mean, ftr.box, ftr.n, fte.mean, fte.box, fte.n, C, 4,
                box_names);
    if (selection(ctx, &fte, &te) != XV_OK || content(&ftr, &tr, &fte, &te) != XV_OK) {
        fprintf(stderr, "position probe: %s\n", xv_error_message());
        rc = 1;
    }
done:
    features_free(&ftr);
    features_free(&fte);
    xv_grounding_set_free(&tr);
    xv_grounding_set_free(&te);
    xvlm_ctx_free(ctx);
    xvlm_model_free(model);
    return rc;
}
