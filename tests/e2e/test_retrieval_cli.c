/* Retrieval and grounding for users, end to end on a random tiny model:
 * the public API (xvlm.h) and the `match`, `ground`, `index`, `search`
 * commands give the same ITC similarities, ITM logits/probabilities and
 * boxes as the model functions compute directly on the same preprocessed
 * tensors, and as `xvlm forward` writes; plus the documented error paths.
 *
 * Tolerance: |got - ref| <= 1e-5·max(1, |ref|). Both sides run the same fp32
 * operations; only batch composition differs (BLAS may block a batch of 16
 * differently from a batch of 1), which moves results by a few ulps (~1e-7
 * relative), far below the bound; a wrong mask, token or layer moves them by
 * 1e-2 or more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "data/caption.h"
#include "data/tokenizer.h"
#include "data/transforms.h"
#include "model/losses.h"
#include "nn/layers.h"
#include "xvlm.h"

#define NI 4
#define NT 3
static const char *const TEXTS[NT] = {"A red square on the left.", "two blue circles", "the small green triangle"};
static const int SIZES[NI][2] = {{50, 40}, {64, 64}, {90, 30}, {33, 71}};

static char g_dir[64], g_model[128], g_img[NI][160];
static const char *g_bin;

static int close_to(double got, double ref) { return fabs(got - ref) <= 1e-5 * fmax(1.0, fabs(ref)); }

/* ---- references: the model functions on one image / one text at a time ---- */
typedef struct {
    xv_model *m;
    xv_tokenizer *tok;
    int R, T, C, H, E;
    float px[NI][3 * 64 * 64];
    float emb[NI][5 * 64]; /* [T, C]: T = 1 + 4 patches */
    float ifeat[NI][8];
    int w[NI], h[NI];
    int32_t ids[NT][40];
    int len[NT];
    float states[NT][40 * 16];
    float tfeat[NT][8];
    float itm[NI][NT][2];
    float box[NI][NT][4];
} refs;

static void ref_image(refs *r, int i) {
    xv_image im;
    CHECK_OK(xv_image_load(g_img[i], &im));
    r->w[i] = im.width;
    r->h[i] = im.height;
    CHECK_OK(xv_transform_test(&im, r->R, r->px[i]));
    xv_image_free(&im);
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *x = xv_tensor_wrap_f32(g, r->px[i], XV_SHAPE(1, 3, r->R, r->R));
    xv_tensor *e = xv_model_vision(g, r->m, x, NULL);
    xv_tensor *f = xv_model_image_feat(g, r->m, e);
    CHECK_OK(xv_graph_status(g));
    if (f) {
        memcpy(r->emb[i], e->data, sizeof(float) * (size_t)e->numel);
        memcpy(r->ifeat[i], f->data, sizeof(float) * (size_t)f->numel);
    }
    xv_graph_free(g);
}

static void ref_text(refs *r, int t) {
    char *clean;
    size_t n;
    CHECK_OK(xv_pre_caption(TEXTS[t], strlen(TEXTS[t]), 30, &clean, &n));
    xv_text_batch tb;
    xv_encode_opts o = xv_encode_finetune(40);
    CHECK_OK(xv_encode_batch(r->tok, (const char *const *)&clean, 1, &o, &tb));
    free(clean);
    r->len[t] = tb.len;
    memcpy(r->ids[t], tb.ids, sizeof(int32_t) * (size_t)tb.len);
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    xv_tensor *ids = xv_tensor_wrap_i32(g, tb.ids, XV_SHAPE(1, tb.len));
    xv_tensor *atts = xv_tensor_wrap_i32(g, tb.atts, XV_SHAPE(1, tb.len));
    xv_tensor *s = xv_model_text(g, r->m, ids, atts, NULL);
    xv_tensor *f = xv_model_text_feat(g, r->m, s);
    CHECK_OK(xv_graph_status(g));
    if (f) {
        memcpy(r->states[t], s->data, sizeof(float) * (size_t)s->numel);
        memcpy(r->tfeat[t], f->data, sizeof(float) * (size_t)f->numel);
    }
    xv_graph_free(g);
    xv_text_batch_free(&tb);
}

/* ITM logits and the box of (image i, text t), one pair per graph. */
static void ref_pair(refs *r, int i, int t) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, false);
    int32_t atts[40];
    for (int k = 0; k < r->len[t]; k++) atts[k] = 1;
    xv_tensor *s = xv_tensor_wrap_f32(g, r->states[t], XV_SHAPE(1, r->len[t], r->H));
    xv_tensor *a = xv_tensor_wrap_i32(g, atts, XV_SHAPE(1, r->len[t]));
    xv_tensor *e = xv_tensor_wrap_f32(g, r->emb[i], XV_SHAPE(1, r->T, r->C));
    xv_tensor *cls = xv_nn_token(g, xv_model_fusion(g, r->m, s, a, e, NULL), 0);
    xv_tensor *lg = xv_mlp_head_forward(g, &r->m->itm_head, cls);
    xv_tensor *box = xv_bbox_predict(g, r->m, e, s, a, NULL);
    CHECK_OK(xv_graph_status(g));
    if (lg && box) {
        memcpy(r->itm[i][t], lg->data, sizeof(float) * 2);
        memcpy(r->box[i][t], box->data, sizeof(float) * 4);
    }
    xv_graph_free(g);
}

static double ref_sim(const refs *r, int i, int t) {
    double s = 0;
    for (int k = 0; k < r->E; k++) s += (double)r->ifeat[i][k] * r->tfeat[t][k];
    return s;
}

static double ref_prob(const refs *r, int i, int t) {
    return 1.0 / (1.0 + exp((double)r->itm[i][t][0] - r->itm[i][t][1]));
}

/* Grounding_bbox.py's float32 conversion to pixels. */
static void ref_pixels(const refs *r, int i, int t, float out[4]) {
    const float *c = r->box[i][t];
    volatile float W = (float)r->w[i], H = (float)r->h[i];
    volatile float x = c[0] * W, y = c[1] * H, bw = c[2] * W, bh = c[3] * H;
    volatile float hx = bw / 2.0f, hy = bh / 2.0f;
    out[0] = x - hx;
    out[1] = y - hy;
    out[2] = bw;
    out[3] = bh;
}

static void make_refs(refs *r) {
    CHECK_OK(xv_model_load_dir(g_model, true, &r->m));
    char vocab[256];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_model);
    CHECK_OK(xv_tokenizer_load(vocab, &r->tok));
    if (!r->m || !r->tok) return;
    r->R = r->m->cfg.vision.image_res;
    r->T = 1 + xv_config_num_patches(&r->m->cfg);
    r->C = r->m->cfg.vision.vision_width;
    r->H = r->m->cfg.text.hidden;
    r->E = r->m->cfg.embed_dim;
    CHECK(r->R == 64 && r->T == 5 && r->C == 64 && r->H == 16 && r->E == 8, "tiny sizes");
    for (int i = 0; i < NI; i++) ref_image(r, i);
    for (int t = 0; t < NT; t++) ref_text(r, t);
    for (int i = 0; i < NI; i++)
        for (int t = 0; t < NT; t++) ref_pair(r, i, t);
}

/* ---- A: the public API ---- */

/* One thread's work with its own context on the shared model. */
typedef struct {
    const xvlm_model *m;
    const char *const *paths;
    float feat[NI * 8], logit[NI * NT];
    xvlm_status st;
} thread_job;

static void *thread_main(void *u) {
    thread_job *j = u;
    xvlm_ctx *ctx = NULL;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_pair pairs[NI * NT];
    for (int p = 0; p < NI * NT; p++) pairs[p] = (xvlm_pair){p / NT, p % NT};
    j->st = xvlm_ctx_new(j->m, &ctx);
    if (j->st == XVLM_OK) j->st = xvlm_encode_image_files(ctx, j->paths, NI, NULL, &im);
    if (j->st == XVLM_OK) j->st = xvlm_encode_texts(ctx, TEXTS, NT, NULL, &tx);
    if (j->st == XVLM_OK) j->st = xvlm_itm(ctx, im, tx, pairs, NI * NT, j->logit, NULL);
    if (j->st == XVLM_OK) memcpy(j->feat, xvlm_images_features(im), sizeof j->feat);
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    xvlm_ctx_free(ctx);
    return NULL;
}

/* The documented rule: the model shared read-only, one context per thread. */
static void check_threads(const xvlm_model *m, const char *const *paths, const float *feat, const float *logit) {
    thread_job jobs[3];
    pthread_t th[3];
    for (int k = 0; k < 3; k++) {
        jobs[k] = (thread_job){.m = m, .paths = paths};
        CHECK(pthread_create(&th[k], NULL, thread_main, &jobs[k]) == 0, "thread %d", k);
    }
    for (int k = 0; k < 3; k++) pthread_join(th[k], NULL);
    int bad = 0;
    for (int k = 0; k < 3; k++) {
        CHECK(jobs[k].st == XVLM_OK, "thread %d ran", k);
        for (int i = 0; i < NI * 8; i++) bad += !close_to(jobs[k].feat[i], feat[i]);
        for (int i = 0; i < NI * NT; i++) bad += !close_to(jobs[k].logit[i], logit[i]);
    }
    CHECK(bad == 0, "3 threads sharing the model: same features and logits (%d off)", bad);
}
static void check_api(const refs *r) {
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    CHECK_OK(xvlm_model_load(g_model, NULL, &m));
    if (!m) return;
    CHECK_OK(xvlm_ctx_new(m, &ctx));
    xvlm_model_info info;
    xvlm_model_get_info(m, &info);
    CHECK(info.image_res == 64 && info.embed_dim == 8 && info.image_tokens == 5 && info.has_itm && info.has_bbox,
          "model info");
    CHECK(strlen(info.id) == 16, "model id '%s'", info.id);

    const char *paths[NI];
    for (int i = 0; i < NI; i++) paths[i] = g_img[i];
    xvlm_image_params ip = xvlm_image_params_default();
    ip.batch = 3; /* batches of 3 and 1 */
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    CHECK_OK(xvlm_encode_image_files(ctx, paths, NI, &ip, &im));
    CHECK_OK(xvlm_encode_texts(ctx, TEXTS, NT, NULL, &tx));
    if (!im || !tx) goto done;
    CHECK(xvlm_images_count(im) == NI && xvlm_texts_count(tx) == NT, "counts");
    int bad = 0;
    for (int i = 0; i < NI; i++) {
        int w, h;
        xvlm_images_size(im, i, &w, &h);
        CHECK(w == SIZES[i][0] && h == SIZES[i][1], "image %d size %dx%d", i, w, h);
        CHECK(xvlm_images_path(im, i) && !strcmp(xvlm_images_path(im, i), g_img[i]), "image %d path", i);
        for (int k = 0; k < r->E; k++) bad += !close_to(xvlm_images_features(im)[i * r->E + k], r->ifeat[i][k]);
    }
    CHECK(bad == 0, "image features = xv_model_image_feat (%d off)", bad);
    CHECK(!strcmp(xvlm_texts_text(tx, 0), "a red square on the left"), "pre_caption: '%s'", xvlm_texts_text(tx, 0));
    bad = 0;
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < r->E; k++) bad += !close_to(xvlm_texts_features(tx)[t * r->E + k], r->tfeat[t][k]);
    CHECK(bad == 0, "text features = xv_model_text_feat (%d off)", bad);

    float sim[NI * NT], logit[NI * NT], prob[NI * NT];
    xvlm_pair pairs[NI * NT];
    xvlm_box boxes[NI * NT];
    CHECK_OK(xvlm_similarity(im, tx, sim));
    for (int i = 0; i < NI; i++)
        for (int t = 0; t < NT; t++) pairs[i * NT + t] = (xvlm_pair){i, t};
    CHECK_OK(xvlm_itm(ctx, im, tx, pairs, NI * NT, logit, prob));
    CHECK_OK(xvlm_ground(ctx, im, tx, pairs, NI * NT, boxes));
    int bs = 0, bl = 0, bp = 0, bb = 0;
    for (int i = 0; i < NI; i++)
        for (int t = 0; t < NT; t++) {
            int p = i * NT + t;
            float px[4];
            ref_pixels(r, i, t, px);
            bs += !close_to(sim[p], ref_sim(r, i, t));
            bl += !close_to(logit[p], r->itm[i][t][1]);
            bp += !close_to(prob[p], ref_prob(r, i, t));
            const float got[8] = {boxes[p].cx, boxes[p].cy, boxes[p].w, boxes[p].h,
                                  boxes[p].x, boxes[p].y, boxes[p].width, boxes[p].height};
            for (int k = 0; k < 4; k++) bb += !close_to(got[k], r->box[i][t][k]) + !close_to(got[4 + k], px[k]);
        }
    CHECK(bs == 0, "similarities (%d off)", bs);
    CHECK(bl == 0 && bp == 0, "ITM logits (%d off) and probabilities (%d off)", bl, bp);
    CHECK(bb == 0, "boxes, normalised and in pixels (%d off)", bb);
    check_threads(m, paths, xvlm_images_features(im), logit);

    /* The same images from memory (RGB with a row stride) and as tensors. */
    xvlm_rgb rgb[NI];
    xv_image dec[NI];
    uint8_t *padded[NI];
    for (int i = 0; i < NI; i++) {
        CHECK_OK(xv_image_load(g_img[i], &dec[i]));
        size_t stride = (size_t)dec[i].width * 3 + 5;
        padded[i] = calloc((size_t)dec[i].height, stride);
        for (int y = 0; y < dec[i].height; y++)
            memcpy(padded[i] + (size_t)y * stride, xv_image_px(&dec[i], 0, y), (size_t)dec[i].width * 3);
        rgb[i] = (xvlm_rgb){padded[i], dec[i].width, dec[i].height, stride};
    }
    xvlm_images *im_rgb = NULL, *im_px = NULL;
    CHECK_OK(xvlm_encode_images_rgb(ctx, rgb, NI, &ip, &im_rgb));
    float px_all[NI][3 * 64 * 64];
    for (int i = 0; i < NI; i++) memcpy(px_all[i], r->px[i], sizeof px_all[i]);
    CHECK_OK(xvlm_encode_images_tensor(ctx, &px_all[0][0], NI, &ip, &im_px));
    if (im_rgb && im_px) {
        size_t nb = sizeof(float) * NI * (size_t)r->E;
        CHECK(!memcmp(xvlm_images_features(im_rgb), xvlm_images_features(im), nb), "RGB input = file input (bitwise)");
        CHECK(!memcmp(xvlm_images_features(im_px), xvlm_images_features(im), nb), "tensor input = file input (bitwise)");
        CHECK(xvlm_images_path(im_rgb, 0) == NULL, "memory images have no path");
    }
    for (int i = 0; i < NI; i++) {
        xv_image_free(&dec[i]);
        free(padded[i]);
    }

    /* Search: ITC order, then the top `rerank` by ITM logit, the rest -100. */
    xvlm_hit hits[NI];
    int nh = 0;
    xvlm_search_params sp = {.k = NI, .rerank = 2};
    CHECK_OK(xvlm_search_images(ctx, im, tx, 1, &sp, hits, &nh));
    CHECK(nh == NI, "all %d images returned (%d)", NI, nh);
    int itc_order[NI] = {0, 1, 2, 3};
    for (int a = 0; a < NI; a++)
        for (int b = a + 1; b < NI; b++)
            if (ref_sim(r, itc_order[b], 1) > ref_sim(r, itc_order[a], 1)) {
                int tmp = itc_order[a];
                itc_order[a] = itc_order[b];
                itc_order[b] = tmp;
            }
    int top2[2] = {itc_order[0], itc_order[1]};
    if (r->itm[top2[1]][1][1] > r->itm[top2[0]][1][1]) top2[0] = itc_order[1], top2[1] = itc_order[0];
    CHECK(nh == NI && hits[0].index == top2[0] && hits[1].index == top2[1] && hits[2].index == itc_order[2] &&
              hits[3].index == itc_order[3],
          "search order: re-ranked by ITM, then ITC");
    for (int k = 0; k < nh; k++) {
        int i = (int)hits[k].index;
        CHECK(close_to(hits[k].itc, ref_sim(r, i, 1)), "hit %d itc", k);
        if (k < 2)
            CHECK(hits[k].reranked && close_to(hits[k].score, r->itm[i][1][1]) && close_to(hits[k].itm_prob, ref_prob(r, i, 1)),
                  "hit %d: score = ITM logit", k);
        else
            CHECK(!hits[k].reranked && hits[k].score == -100.0f && isnan(hits[k].itm_logit), "hit %d: -100 floor", k);
    }
    xvlm_hit th[NT];
    CHECK_OK(xvlm_search_texts(ctx, tx, im, 2, &(xvlm_search_params){.k = NT, .rerank = NT}, th, &nh));
    int best = 0;
    for (int t = 1; t < NT; t++)
        if (r->itm[2][t][1] > r->itm[2][best][1]) best = t;
    CHECK(nh == NT && th[0].index == best && close_to(th[0].score, r->itm[2][best][1]), "image -> texts search");

    /* Index round trip: what is saved is what is read. */
    char path[256];
    snprintf(path, sizeof path, "%s/api.index", g_dir);
    CHECK_OK(xvlm_index_save(im, path, XVLM_TOKENS_F32));
    xvlm_images *back = NULL;
    CHECK_OK(xvlm_index_open(m, path, &back));
    if (back) {
        float l2[NI * NT];
        CHECK(!memcmp(xvlm_images_features(back), xvlm_images_features(im), sizeof(float) * NI * (size_t)r->E),
              "index features round trip");
        CHECK(!strcmp(xvlm_images_path(back, 3), g_img[3]), "index paths round trip");
        CHECK_OK(xvlm_itm(ctx, back, tx, pairs, NI * NT, l2, NULL));
        CHECK(!memcmp(l2, logit, sizeof l2), "ITM from index tokens = from the encoded set (bitwise)");
    }
    xvlm_images_free(back);
    xvlm_images_free(im_rgb);
    xvlm_images_free(im_px);
done:
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
}

/* ---- B..E: the commands ---- */

/* Run `xvlm ARGS > out 2> err`; returns the exit code. */
static int xvlm(const char *args, char **out, char **err) {
    printf("$ xvlm %s\n", args);
    xv_test_cli_result r = xv_test_cli(g_dir, args, NULL);
    if (out) *out = r.out, r.out = NULL;
    if (err) *err = r.err, r.err = NULL;
    xv_test_cli_free(&r);
    return r.status;
}

static cJSON *xvlm_json(const char *args) {
    char *out = NULL, *err = NULL;
    int rc = xvlm(args, &out, &err);
    CHECK(rc == 0, "exit %d: %s", rc, err ? err : "");
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    CHECK(rc != 0 || j, "JSON output: %s", out ? out : "(none)");
    free(out);
    free(err);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void check_match(const refs *r) {
    char args[1024];
    snprintf(args, sizeof args, "match --model '%s' --image '%s' --text '%s' --text '%s' --json", g_model, g_img[2],
             TEXTS[0], TEXTS[2]);
    cJSON *j = xvlm_json(args);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == 2, "two results");
    for (int k = 0; k < 2 && k < cJSON_GetArraySize(res); k++) {
        const cJSON *e = cJSON_GetArrayItem(res, k);
        int t = k ? 2 : 0;
        CHECK(close_to(num(e, "itm_logit"), r->itm[2][t][1]), "match logit %g vs %g", num(e, "itm_logit"),
              r->itm[2][t][1]);
        CHECK(close_to(num(e, "itm_prob"), ref_prob(r, 2, t)), "match prob");
        CHECK(close_to(num(e, "itc"), ref_sim(r, 2, t)), "match itc");
    }
    CHECK(num(j, "width") == SIZES[2][0] && num(j, "height") == SIZES[2][1], "match image size");
    cJSON_Delete(j);
}

static void check_ground(const refs *r) {
    char args[1024], png[160];
    snprintf(png, sizeof png, "%s/ground.png", g_dir);
    snprintf(args, sizeof args, "ground --model '%s' --image '%s' --text '%s' --text '%s' --draw '%s' --json", g_model,
             g_img[3], TEXTS[1], TEXTS[2], png);
    cJSON *j = xvlm_json(args);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == 2, "two boxes");
    for (int k = 0; k < 2 && k < cJSON_GetArraySize(res); k++) {
        const cJSON *e = cJSON_GetArrayItem(res, k);
        const cJSON *bx = cJSON_GetObjectItemCaseSensitive(e, "box"), *bn = cJSON_GetObjectItemCaseSensitive(e, "box_normalized");
        float px[4];
        ref_pixels(r, 3, k + 1, px);
        for (int c = 0; c < 4; c++) {
            CHECK(close_to(cJSON_GetArrayItem(bx, c)->valuedouble, px[c]), "ground box[%d]", c);
            CHECK(close_to(cJSON_GetArrayItem(bn, c)->valuedouble, r->box[3][k + 1][c]), "ground normalised[%d]", c);
        }
    }
    cJSON_Delete(j);
    xv_image drawn;
    xv_status st = xv_image_load(png, &drawn);
    CHECK(st == XV_OK, "--draw wrote a PNG: %s", xvlm_last_error());
    if (st == XV_OK) {
        CHECK(drawn.width == SIZES[3][0] && drawn.height == SIZES[3][1], "drawing has the image's size");
        xv_image_free(&drawn);
    }
}

/* search --json over an index: the ITC stage and the re-ranked logits. */
static void check_search_index(const refs *r, const char *tokens, double tol_scale) {
    char args[1024], index[160];
    snprintf(index, sizeof index, "%s/%s.index", g_dir, tokens);
    char list[160];
    snprintf(list, sizeof list, "%s/list.txt", g_dir);
    snprintf(args, sizeof args, "index --model '%s' --images '%s' --out '%s' --tokens %s --batch 3", g_model, list,
             index, tokens);
    CHECK(xvlm(args, NULL, NULL) == 0, "index --tokens %s", tokens);
    snprintf(args, sizeof args, "search --model '%s' --index '%s' --text '%s' --k 3 --rerank 2 --json", g_model, index,
             TEXTS[0]);
    cJSON *j = xvlm_json(args);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == 3, "3 results");
    double prev = INFINITY, worst = 0;
    for (int k = 0; k < cJSON_GetArraySize(res); k++) {
        const cJSON *e = cJSON_GetArrayItem(res, k);
        int i = (int)num(e, "index");
        CHECK(i >= 0 && i < NI, "index %d", i);
        if (i < 0 || i >= NI) continue;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
        char *real = realpath(g_img[i], NULL);
        CHECK(cJSON_IsString(p) && real && !strcmp(p->valuestring, real), "path of hit %d is absolute", k);
        free(real);
        CHECK(close_to(num(e, "itc"), ref_sim(r, i, 0)), "search itc of image %d", i);
        if (k < 2) {
            double d = fabs(num(e, "itm_logit") - r->itm[i][0][1]);
            worst = fmax(worst, d / fmax(1.0, fabs(r->itm[i][0][1])));
            CHECK(d <= 1e-5 * tol_scale * fmax(1.0, fabs(r->itm[i][0][1])), "tokens %s: re-ranked logit of image %d off by %g",
                  tokens, i, d);
            CHECK(num(e, "score") <= prev, "sorted by score");
            prev = num(e, "score");
        } else {
            CHECK(num(e, "score") == -100 && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(e, "itm_logit")),
                  "not re-ranked: -100");
        }
    }
    printf("tokens %s: re-ranked logits within %.2e (relative) of the in-memory model\n", tokens, worst);
    cJSON_Delete(j);
}

static void check_search_texts(const refs *r) {
    char args[1024], texts[160];
    snprintf(texts, sizeof texts, "%s/texts.txt", g_dir);
    FILE *f = fopen(texts, "w");
    for (int t = 0; t < NT; t++) fprintf(f, "%s\n\n", TEXTS[t]); /* blank lines are skipped */
    fclose(f);
    snprintf(args, sizeof args, "search --model '%s' --image '%s' --texts '%s' --k 3 --rerank 3 --json", g_model,
             g_img[1], texts);
    cJSON *j = xvlm_json(args);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == NT, "all texts ranked");
    for (int k = 0; k < cJSON_GetArraySize(res); k++) {
        const cJSON *e = cJSON_GetArrayItem(res, k);
        int t = (int)num(e, "index");
        CHECK(t >= 0 && t < NT && close_to(num(e, "itm_logit"), r->itm[1][t][1]) && close_to(num(e, "itc"), ref_sim(r, 1, t)),
              "image -> text hit %d", k);
    }
    cJSON_Delete(j);
}

/* ---- F: the same numbers as `xvlm forward` ---- */
static void put_i64(xv_st_writer *w, const char *name, const int64_t *v, int64_t rows, int64_t cols) {
    CHECK_OK(xv_st_writer_add(w, name, XV_ST_I64, XV_SHAPE(rows, cols), v, false));
}

static void check_forward(const refs *r) {
    enum { B = 3 };
    int L = 0;
    for (int t = 0; t < B; t++) L = r->len[t] > L ? r->len[t] : L;
    int64_t ids[B * 40], atts[B * 40], pos[B] = {0}, lab[B] = {-100, -100, -100}, group[B] = {0, 1, 3};
    int64_t full[B * 5];
    float target[B * 4];
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < L; k++) {
            ids[b * L + k] = k < r->len[b] ? r->ids[b][k] : 0;
            atts[b * L + k] = k < r->len[b];
        }
        for (int k = 0; k < 5; k++) full[b * 5 + k] = 1; /* the whole image visible */
        for (int k = 0; k < 4; k++) target[b * 4 + k] = 0.25f + 0.1f * (float)k;
    }
    xv_st_writer *w = NULL;
    CHECK_OK(xv_st_writer_new(&w));
    CHECK_OK(xv_st_writer_add(w, "image.image", XV_ST_F32, XV_SHAPE(B, 3, 64, 64), r->px, false));
    CHECK_OK(xv_st_writer_add(w, "region.image", XV_ST_F32, XV_SHAPE(NI, 3, 64, 64), r->px, false));
    const char *pre[2] = {"image.", "region."};
    for (int s = 0; s < 2; s++) {
        char n[64];
        snprintf(n, sizeof n, "%stext_ids", pre[s]), put_i64(w, n, ids, B, L);
        snprintf(n, sizeof n, "%stext_ids_masked", pre[s]), put_i64(w, n, ids, B, L);
        snprintf(n, sizeof n, "%stext_atts", pre[s]), put_i64(w, n, atts, B, L);
        snprintf(n, sizeof n, "%smasked_pos", pre[s]), put_i64(w, n, pos, B, 1);
        snprintf(n, sizeof n, "%smasked_ids", pre[s]), put_i64(w, n, lab, B, 1);
    }
    CHECK_OK(xv_st_writer_add(w, "region.idx_to_group_img", XV_ST_I64, XV_SHAPE(B), group, false));
    put_i64(w, "region.image_atts", full, B, 5);
    CHECK_OK(xv_st_writer_add(w, "region.target_bbox", XV_ST_F32, XV_SHAPE(B, 4), target, false));
    char in[160], out[160], args[1024];
    snprintf(in, sizeof in, "%s/forward_in.safetensors", g_dir);
    snprintf(out, sizeof out, "%s/forward_out.safetensors", g_dir);
    CHECK_OK(xv_st_writer_write(w, in));
    xv_st_writer_free(w);
    snprintf(args, sizeof args, "forward --model '%s' --inputs '%s' --out '%s'", g_model, in, out);
    CHECK(xvlm(args, NULL, NULL) == 0, "xvlm forward");
    xv_st_file *f = NULL;
    CHECK_OK(xv_st_open(out, &f));
    if (!f) return;
    float ifeat[B * 8], tfeat[B * 8], logits[3 * B * 2], box[B * 4];
    CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "image.image_feat"), ifeat));
    CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "image.text_feat"), tfeat));
    CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "image.itm_logits"), logits));
    CHECK_OK(xv_st_read_f32(f, xv_st_find(f, "region.bbox_pred"), box));
    int bad = 0;
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < 8; k++) bad += !close_to(ifeat[b * 8 + k], r->ifeat[b][k]) + !close_to(tfeat[b * 8 + k], r->tfeat[b][k]);
        /* Rows [0, B) are the positive pairs (text b, image b). */
        bad += !close_to(logits[b * 2], r->itm[b][b][0]) + !close_to(logits[b * 2 + 1], r->itm[b][b][1]);
        for (int k = 0; k < 4; k++) bad += !close_to(box[b * 4 + k], r->box[group[b]][b][k]);
    }
    CHECK(bad == 0, "xvlm forward's features, positive ITM logits and boxes = the API's (%d off)", bad);
    xv_st_close(f);
}

/* ---- G: errors are clear messages, never crashes ---- */
static void expect_fail(const char *args, int want_rc, const char *needle) {
    char *err = NULL;
    int rc = xvlm(args, NULL, &err);
    CHECK(rc == want_rc && err && strstr(err, needle), "exit %d (want %d), stderr has '%s': %s", rc, want_rc, needle,
          err ? err : "");
    free(err);
}

static void check_errors(void) {
    char args[1024], other[128], novocab[128], index[160], list[160];
    snprintf(index, sizeof index, "%s/f32.index", g_dir);
    snprintf(args, sizeof args, "match --model '%s' --image '%s/nope.jpg' --text 'a dog'", g_model, g_dir);
    expect_fail(args, 1, "nope.jpg");
    snprintf(args, sizeof args, "match --model '%s' --image '%s' --text '...'", g_model, g_img[0]);
    expect_fail(args, 1, "empty after cleaning");
    snprintf(args, sizeof args, "search --model '%s' --index '%s' --text '?!'", g_model, index);
    expect_fail(args, 1, "empty after cleaning");
    snprintf(args, sizeof args, "search --model '%s' --index '%s' --text 'a red car' --k 50 --json", g_model, index);
    char *out = NULL, *err = NULL;
    CHECK(xvlm(args, &out, &err) == 0 && err && strstr(err, "warning") && strstr(err, "50"), "k > index: warned");
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "results")) == NI, "k clamped to %d", NI);
    cJSON_Delete(j);
    free(out);
    free(err);

    snprintf(other, sizeof other, "%s/other", g_dir);
    mkdir(other, 0755);
    xv_test_tiny_model_dir(other, 99, 1);
    snprintf(args, sizeof args, "search --model '%s' --index '%s' --text 'a red car'", other, index);
    expect_fail(args, 1, "another model");

    snprintf(novocab, sizeof novocab, "%s/novocab", g_dir);
    mkdir(novocab, 0755);
    xv_test_tiny_model_dir(novocab, 7, 0);
    snprintf(args, sizeof args, "match --model '%s' --image '%s' --text 'a dog'", novocab, g_img[0]);
    expect_fail(args, 1, "vocab.txt");
    snprintf(args, sizeof args, "ground --model '%s/none' --image '%s' --text 'a dog'", g_dir, g_img[0]);
    expect_fail(args, 1, "no such model");
    snprintf(args, sizeof args, "search --model '%s' --text 'a dog'", g_model);
    expect_fail(args, 2, "either --index");
    snprintf(args, sizeof args, "index --model '%s' --images '%s' --out x --batch 0", g_model, g_dir);
    expect_fail(args, 2, "--batch");

    /* A single image where the list or folder goes: refused by name before
     * anything is written (no index, no INDEX.parts/). */
    char photo_index[200], parts[220];
    snprintf(photo_index, sizeof photo_index, "%s/photo.index", g_dir);
    snprintf(parts, sizeof parts, "%s.parts", photo_index);
    snprintf(args, sizeof args, "index -m '%s' --images '%s' -o '%s'", g_model, g_img[0], photo_index);
    expect_fail(args, 1, "is a JPEG image, not a folder or a list of images");
    struct stat sb;
    CHECK(stat(photo_index, &sb) != 0 && stat(parts, &sb) != 0, "index --images photo.jpg left nothing behind");

    /* The CLI conventions: --opt=value, short forms, one-line usage errors. */
    snprintf(args, sizeof args, "match -m '%s' --image='%s' --text='a dog' --json -t 1", g_model, g_img[0]);
    CHECK(xvlm(args, &out, &err) == 0 && out && out[0] == '{', "match with =values and short forms: %s",
          err ? err : "");
    free(out);
    free(err);
    snprintf(args, sizeof args, "ground -m '%s' -m '%s' --image '%s' --text x", g_model, g_model, g_img[0]);
    CHECK(xvlm(args, &out, &err) == 2 && err && !strcmp(err, "xvlm ground: --model given more than once\n"
                                                               "Try 'xvlm ground --help'.\n"),
          "a repeated option: one line and the hint, got '%s'", err ? err : "");
    free(out);
    free(err);

    /* Missing and corrupt images in a list are skipped with a warning. */
    snprintf(list, sizeof list, "%s/bad_list.txt", g_dir);
    FILE *f = fopen(list, "w");
    fprintf(f, "img0.jpg\nmissing.jpg\ncorrupt.jpg\nimg1.jpg\n");
    fclose(f);
    snprintf(args, sizeof args, "%s/corrupt.jpg", g_dir);
    f = fopen(args, "wb");
    fputs("\xff\xd8\xff\xe0 not really a jpeg", f);
    fclose(f);
    snprintf(args, sizeof args, "index --model '%s' --images '%s' --out '%s/bad.index'", g_model, list, g_dir);
    CHECK(xvlm(args, &out, &err) == 0, "index with bad entries still succeeds");
    CHECK(err && strstr(err, "missing.jpg") && strstr(err, "corrupt.jpg") && strstr(err, "warning"),
          "both bad images warned: %s", err ? err : "");
    CHECK(out && strstr(out, "indexed 2 images") && strstr(out, "skipped 2"), "summary: %s", out ? out : "");
    free(out);
    free(err);
}

int main(void) {
    g_bin = getenv("XV_BIN");
    if (!g_bin) return xv_test_skip("XV_BIN not set");
    xvlm_set_threads(2);
    CHECK(xv_test_scratch_dir("xv_retrieval", g_dir, sizeof g_dir), "mkdtemp");
    snprintf(g_model, sizeof g_model, "%s/model", g_dir);
    mkdir(g_model, 0755);
    if (!xv_test_tiny_model_dir(g_model, 11, 1)) return xv_test_finish("test_retrieval_cli");
    char list[160];
    snprintf(list, sizeof list, "%s/list.txt", g_dir);
    FILE *f = fopen(list, "w");
    for (int i = 0; i < NI; i++) {
        snprintf(g_img[i], sizeof g_img[i], "%s/img%d.jpg", g_dir, i);
        CHECK(xv_test_tiny_image(g_img[i], SIZES[i][0], SIZES[i][1], i), "image %d", i);
        fprintf(f, "img%d.jpg\n", i); /* relative to the list's folder */
    }
    fclose(f);

    static refs r;
    make_refs(&r);
    if (!r.m || !r.tok) return xv_test_finish("test_retrieval_cli");
    check_api(&r);
    check_match(&r);
    check_ground(&r);
    check_search_index(&r, "f32", 1);
    check_search_index(&r, "none", 1);
    /* binary16 tokens carry 11 significant bits (relative error <= 2^-11 per
     * value, 4.9e-4), so the logits may move by that order: the bound is 200x
     * the fp32 one (2e-3), still far below a real mistake. (This random model
     * barely attends to the image: measured 1e-7.) */
    check_search_index(&r, "f16", 200);
    check_search_texts(&r);
    check_forward(&r);
    check_errors();
    xv_model_free(r.m);
    xv_tokenizer_free(r.tok);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!xv_test_failures) xv_test_run(cmd);
    return xv_test_finish("test_retrieval_cli");
}
