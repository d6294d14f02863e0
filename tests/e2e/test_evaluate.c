/* `xvlm evaluate` and tasks/eval_*: the retrieval scores and recalls against
 * a direct restatement of Retrieval.py (per-row top-k, ITM of each row's
 * pairs, -100 floor, argsort ranks), grounding against per-expression
 * xvlm_ground calls and an independent IoU; then the command line: tables,
 * JSON, pictures, usage and runtime errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/threads.h"
#include "testutil.h"
#include "tasks/eval_grounding.h"
#include "tasks/eval_retrieval.h"

#define NI 6
#define TPI 2 /* captions per image */
#define K_TEST 3

static char g_dir[64], g_model[128];
static const char *g_bin;

static const char *const CAPTIONS[NI * TPI] = {
    "a red square",         "the red square on the left", "a green circle",    "two green circles",
    "a blue triangle",      "the blue shape",             "a big yellow car",  "a yellow bus",
    "a white dog",          "a dog with a man",           "a black cat",       "the cat on top",
};
static const int SIZES[NI][2] = {{80, 60}, {64, 64}, {100, 70}, {70, 90}, {64, 48}, {96, 96}};

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void make_data(void) {
    char path[256], buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = 0; i < NI; i++) {
        snprintf(path, sizeof path, "%s/img%d.jpg", g_dir, i);
        CHECK(xv_test_tiny_image(path, SIZES[i][0], SIZES[i][1], i), "image %d", i);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"image\": \"img%d.jpg\", \"caption\": [\"%s\", \"%s\"]}",
                              i ? ",\n" : "", i, CAPTIONS[TPI * i], CAPTIONS[TPI * i + 1]);
    }
    snprintf(buf + n, sizeof buf - n, "]\n");
    snprintf(path, sizeof path, "%s/ret.json", g_dir);
    write_text(path, buf);
    /* Grounding: two expressions on each of the first four images, sizes stated. */
    n = (size_t)snprintf(buf, sizeof buf, "[");
    for (int e = 0; e < 8; e++) {
        int i = e / 2, W = SIZES[i][0], H = SIZES[i][1];
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"image\": \"img%d.jpg\", \"text\": \"%s\", \"bbox\": [%d, %d, %d, %d], "
                              "\"width\": %d, \"height\": %d}",
                              e ? ",\n" : "", i, CAPTIONS[e], e % 3 * 5, e % 2 * 7, W / 2 + e, H / 2 + 1, W, H);
    }
    snprintf(buf + n, sizeof buf - n, "]\n");
    snprintf(path, sizeof path, "%s/ground.json", g_dir);
    write_text(path, buf);
}

/* ---- references ---- */

/* Indices of the k largest of row[0..n), best first, ties to the lower index
 * (torch.topk on distinct values). */
static void topk(const float *row, int n, int k, int *idx) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int used = 0;
            for (int q = 0; q < j; q++) used |= idx[q] == c;
            if (!used && (best < 0 || row[c] > row[best])) best = c;
        }
        idx[j] = best;
    }
}

/* np.argsort(row)[::-1] position of target. */
static int rank_of(const float *row, int n, int target) {
    int r = 0;
    for (int j = 0; j < n; j++) r += row[j] > row[target] || (row[j] == row[target] && j > target);
    return r;
}

static double pct(const int *ranks, int n, int K) {
    int h = 0;
    for (int i = 0; i < n; i++) h += ranks[i] < K;
    return 100.0 * h / n;
}

/* Recalls of score matrices as itm_eval computes them. */
static void recalls(const float *i2t, const float *t2i, xv_retrieval_result *r) {
    int ri[NI], rt[NI * TPI];
    for (int i = 0; i < NI; i++) {
        ri[i] = 1 << 30;
        for (int c = 0; c < TPI; c++) {
            int k = rank_of(i2t + i * NI * TPI, NI * TPI, TPI * i + c);
            if (k < ri[i]) ri[i] = k;
        }
    }
    for (int t = 0; t < NI * TPI; t++) rt[t] = rank_of(t2i + t * NI, NI, t / TPI);
    r->txt_r1 = pct(ri, NI, 1), r->txt_r5 = pct(ri, NI, 5), r->txt_r10 = pct(ri, NI, 10);
    r->img_r1 = pct(rt, NI * TPI, 1), r->img_r5 = pct(rt, NI * TPI, 5), r->img_r10 = pct(rt, NI * TPI, 10);
}

static void same_recalls(const xv_retrieval_result *a, const xv_retrieval_result *b, const char *what) {
    CHECK(a->txt_r1 == b->txt_r1 && a->txt_r5 == b->txt_r5 && a->txt_r10 == b->txt_r10 && a->img_r1 == b->img_r1 &&
              a->img_r5 == b->img_r5 && a->img_r10 == b->img_r10,
          "%s recalls: txt %g %g %g / %g %g %g, img %g %g %g / %g %g %g", what, a->txt_r1, a->txt_r5, a->txt_r10,
          b->txt_r1, b->txt_r5, b->txt_r10, a->img_r1, a->img_r5, a->img_r10, b->img_r1, b->img_r5, b->img_r10);
    CHECK(fabs(a->r_mean - (a->txt_r1 + a->txt_r5 + a->txt_r10 + a->img_r1 + a->img_r5 + a->img_r10) / 6) < 1e-9,
          "%s r_mean", what);
}

static void check_retrieval(xvlm_ctx *ctx) {
    char data[256];
    snprintf(data, sizeof data, "%s/ret.json", g_dir);
    xv_retrieval_set set;
    CHECK_OK(xv_retrieval_set_read(data, &(xv_fs_root){.root = g_dir}, &set));
    xv_eval_retrieval_opts o = xv_eval_retrieval_opts_default();
    o.k_test = K_TEST;
    o.pair_chunk = 5; /* several chunks */
    xv_eval_retrieval_result r;
    CHECK_OK(xv_eval_retrieval(ctx, &set, &o, &r));
    if (!r.sims) {
        xv_retrieval_set_free(&set);
        return;
    }
    /* Reference: encode the same way, then Retrieval.py row by row. */
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    xvlm_text_params tp = xvlm_text_params_default();
    CHECK_OK(xvlm_encode_image_files(ctx, (const char *const *)set.image_paths, NI, NULL, &im));
    CHECK_OK(xvlm_encode_texts(ctx, (const char *const *)set.texts, NI * TPI, &tp, &tx));
    float sims[NI * NI * TPI], simsT[NI * TPI * NI], i2t[NI * NI * TPI], t2i[NI * TPI * NI];
    CHECK_OK(xvlm_similarity(im, tx, sims));
    CHECK(!memcmp(sims, r.sims, sizeof sims), "ITC similarities are the API's");
    for (int i = 0; i < NI; i++)
        for (int t = 0; t < NI * TPI; t++) simsT[t * NI + i] = sims[i * NI * TPI + t];
    for (int a = 0; a < NI * NI * TPI; a++) i2t[a] = t2i[a] = -100.0f;
    int idx[K_TEST] = {0};
    xvlm_pair pairs[K_TEST];
    float lg[K_TEST];
    for (int i = 0; i < NI; i++) {
        topk(sims + i * NI * TPI, NI * TPI, K_TEST, idx);
        for (int j = 0; j < K_TEST; j++) pairs[j] = (xvlm_pair){i, idx[j]};
        CHECK_OK(xvlm_itm(ctx, im, tx, pairs, K_TEST, lg, NULL));
        for (int j = 0; j < K_TEST; j++) i2t[i * NI * TPI + idx[j]] = lg[j];
    }
    for (int t = 0; t < NI * TPI; t++) {
        topk(simsT + t * NI, NI, K_TEST, idx);
        for (int j = 0; j < K_TEST; j++) pairs[j] = (xvlm_pair){idx[j], t};
        CHECK_OK(xvlm_itm(ctx, im, tx, pairs, K_TEST, lg, NULL));
        for (int j = 0; j < K_TEST; j++) t2i[t * NI + idx[j]] = lg[j];
    }
    /* The same pair through the same encoder in another batch: only the
     * batch's padding length and row count differ, which can change fp32
     * summation order in a few ulps, far inside 1e-5 of logits of size ~1. */
    int floor_i2t = 0, floor_t2i = 0;
    for (int a = 0; a < NI * NI * TPI; a++) {
        CHECK(fabsf(r.score_i2t[a] - i2t[a]) <= 1e-5f * fmaxf(1, fabsf(i2t[a])), "score_i2t[%d] %g vs %g", a,
              r.score_i2t[a], i2t[a]);
        CHECK(fabsf(r.score_t2i[a] - t2i[a]) <= 1e-5f * fmaxf(1, fabsf(t2i[a])), "score_t2i[%d] %g vs %g", a,
              r.score_t2i[a], t2i[a]);
        floor_i2t += r.score_i2t[a] == -100.0f;
        floor_t2i += r.score_t2i[a] == -100.0f;
    }
    CHECK(floor_i2t == NI * (NI * TPI - K_TEST) && floor_t2i == NI * TPI * (NI - K_TEST),
          "only the top %d per row are re-scored: %d and %d at the floor", K_TEST, floor_i2t, floor_t2i);
    /* Each distinct pair once: at most the union of both top-k lists. */
    CHECK(r.itm_pairs >= NI * K_TEST && r.itm_pairs <= NI * K_TEST + NI * TPI * K_TEST, "itm pairs %lld",
          (long long)r.itm_pairs);

    xv_retrieval_result want;
    recalls(r.sims, simsT, &want);
    same_recalls(&r.itc, &want, "ITC");
    recalls(r.score_i2t, r.score_t2i, &want);
    same_recalls(&r.itm, &want, "ITM");
    for (int t = 0; t < NI * TPI; t++)
        CHECK(r.rank_t2i[t] == rank_of(r.score_t2i + t * NI, NI, t / TPI), "rank_t2i[%d]", t);
    CHECK(r.chance.img_r1 == 100.0 / NI && r.chance.img_r5 == 500.0 / NI && r.chance.img_r10 == 100,
          "chance text->image");
    xvlm_images_free(im);
    xvlm_texts_free(tx);
    xv_eval_retrieval_result_free(&r);
    xv_retrieval_set_free(&set);
}

/* computeIoU restated: inclusive pixel corners, strict overlap test. */
static double iou_ref(const double *a, const double *b) {
    double ax2 = a[0] + a[2] - 1, ay2 = a[1] + a[3] - 1, bx2 = b[0] + b[2] - 1, by2 = b[1] + b[3] - 1;
    double ix1 = a[0] > b[0] ? a[0] : b[0], iy1 = a[1] > b[1] ? a[1] : b[1];
    double ix2 = ax2 < bx2 ? ax2 : bx2, iy2 = ay2 < by2 ? ay2 : by2;
    double inter = (ix1 < ix2 && iy1 < iy2) ? (ix2 - ix1 + 1) * (iy2 - iy1 + 1) : 0;
    return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

static void check_grounding(xvlm_ctx *ctx) {
    char data[256];
    snprintf(data, sizeof data, "%s/ground.json", g_dir);
    xv_grounding_set set;
    CHECK_OK(xv_grounding_set_read(data, &(xv_fs_root){.root = g_dir}, &set));
    double mean_box[4];
    CHECK_OK(xv_grounding_mean_box(&set, "ground.json", mean_box));
    xv_eval_grounding_opts o = xv_eval_grounding_opts_default();
    o.pair_chunk = 3;
    xv_eval_grounding_result r;
    CHECK_OK(xv_eval_grounding(ctx, &set, mean_box, &o, &r));
    if (!r.pred) {
        xv_grounding_set_free(&set);
        return;
    }
    CHECK(set.n == 8 && set.n_images == 4, "8 expressions on 4 images");
    int hits = 0, base_hits = 0;
    for (int e = 0; e < set.n; e++) {
        xvlm_images *im = NULL;
        xvlm_texts *tx = NULL;
        const char *path = set.image_paths[set.image[e]], *text = set.texts[e];
        xvlm_text_params tp = {.max_words = 30, .max_tokens = 0};
        CHECK_OK(xvlm_encode_image_files(ctx, &path, 1, NULL, &im));
        CHECK_OK(xvlm_encode_texts(ctx, &text, 1, &tp, &tx));
        xvlm_pair p = {0, 0};
        xvlm_box b;
        CHECK_OK(xvlm_ground(ctx, im, tx, &p, 1, &b));
        double want[4] = {b.x, b.y, b.width, b.height};
        /* Same tensors through the same head; batch layout may move ulps. */
        for (int k = 0; k < 4; k++)
            CHECK(fabs(r.pred[e][k] - want[k]) <= 1e-4 * fmax(1, fabs(want[k])), "pred[%d][%d] %g vs %g", e, k,
                  r.pred[e][k], want[k]);
        CHECK(r.size[e][0] == SIZES[e / 2][0] && r.size[e][1] == SIZES[e / 2][1], "original size of %d", e);
        CHECK(fabs(r.iou[e] - iou_ref(set.bbox[e], r.pred[e])) < 1e-12, "IoU %d", e);
        hits += iou_ref(set.bbox[e], r.pred[e]) >= 0.5;
        int W = SIZES[e / 2][0], H = SIZES[e / 2][1];
        double mb[4] = {mean_box[0] * W, mean_box[1] * H, mean_box[2] * W, mean_box[3] * H};
        base_hits += iou_ref(set.bbox[e], mb) >= 0.5;
        xvlm_images_free(im);
        xvlm_texts_free(tx);
    }
    CHECK(r.accuracy == 100.0 * hits / 8, "accuracy %g vs %g", r.accuracy, 100.0 * hits / 8);
    CHECK(r.has_baseline && r.baseline_accuracy == 100.0 * base_hits / 8, "baseline %g vs %g", r.baseline_accuracy,
          100.0 * base_hits / 8);
    /* The boxes here are about half the image: the mean box overlaps most. */
    CHECK(base_hits >= 4, "mean box hits %d of 8", base_hits);
    xv_eval_grounding_result_free(&r);
    xv_grounding_set_free(&set);
}

/* ---- the command ---- */

static int is_png(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    size_t n = f ? fread(sig, 1, 8, f) : 0;
    if (f) fclose(f);
    return n == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8);
}

static int evaluate(const char *args, const char *out_file) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' evaluate %s > '%s' 2>&1", g_bin, args, out_file);
    return xv_test_run(cmd);
}

static void check_cli(void) {
    char args[1024], out[256], json[256], png[256];
    snprintf(out, sizeof out, "%s/out.txt", g_dir);
    snprintf(json, sizeof json, "%s/run1", g_dir);
    mkdir(json, 0755);
    snprintf(json, sizeof json, "%s/run1/retrieval.json", g_dir);
    snprintf(png, sizeof png, "%s/ret.png", g_dir);
    snprintf(args, sizeof args,
             "retrieval --model '%s' --data '%s/ret.json' --image-root '%s' --k-test 2 --out '%s' --examples '%s' "
             "--n-examples 3 --threads 1",
             g_model, g_dir, g_dir, json, png);
    CHECK(evaluate(args, out) == 0, "evaluate retrieval runs");
    char *text = xv_test_read_file(out, NULL), *js = xv_test_read_file(json, NULL);
    CHECK(text && strstr(text, "ITC top-k + ITM") && strstr(text, "chance") && strstr(text, "6 images, 12 texts"),
          "retrieval table:\n%s", text ? text : "");
    CHECK(js && strstr(js, "\"r_mean\"") && strstr(js, "\"k_test\":\t2") && strstr(js, "\"itm\""),
          "retrieval JSON:\n%s", js ? js : "");
    CHECK(is_png(png), "retrieval examples PNG");
    free(text);
    free(js);

    snprintf(json, sizeof json, "%s/run1/grounding.json", g_dir);
    snprintf(png, sizeof png, "%s/g.png", g_dir);
    snprintf(args, sizeof args,
             "grounding --model '%s' --data '%s/ground.json' --image-root '%s' --train '%s/ground.json' --out '%s' "
             "--examples '%s'",
             g_model, g_dir, g_dir, g_dir, json, png);
    CHECK(evaluate(args, out) == 0, "evaluate grounding runs");
    text = xv_test_read_file(out, NULL);
    js = xv_test_read_file(json, NULL);
    CHECK(text && strstr(text, "box head") && strstr(text, "mean training box") && strstr(text, "8 expressions"),
          "grounding table:\n%s", text ? text : "");
    CHECK(js && strstr(js, "\"baseline_accuracy\"") && strstr(js, "\"pred\"") && strstr(js, "\"iou\""),
          "grounding JSON");
    CHECK(is_png(png), "grounding grid PNG");
    /* The table shows the run's grounding accuracy as the JSON has it. */
    const char *acc = js ? strstr(js, "\"accuracy\":") : NULL;
    double accuracy = acc ? atof(acc + strlen("\"accuracy\":")) : -1;
    free(text);
    free(js);
    snprintf(args, sizeof args, "table '%s/run1'", g_dir);
    CHECK(evaluate(args, out) == 0, "evaluate table runs");
    text = xv_test_read_file(out, NULL);
    char want[32];
    snprintf(want, sizeof want, " %7.1f", accuracy);
    CHECK(text && strstr(text, "run1 ") && strstr(text, "chance") && strstr(text, want) && accuracy >= 0,
          "table with accuracy%s:\n%s", want, text ? text : "");
    free(text);
    snprintf(args, sizeof args, "table '%s/run1' '%s'", g_dir, g_model);
    CHECK(evaluate(args, out) == 1, "a folder without results is an error");

    /* Usage errors (2) and runtime errors (1), with a message. */
    const struct {
        const char *args;
        int rc;
        const char *msg;
    } bad[] = {
        {"captioning --model x --data y", 2, "retrieval, grounding, weak-grounding or table"},
        {"table", 2, "at least one run folder"},
        {"retrieval --data y", 2, "--model M is required"},
        {"retrieval --model x --data y --train z", 2, "--train applies to grounding only"},
        {"grounding --model M --data D --k-test 0", 2, "--k-test expects"},
        {"retrieval --model M --data /nonexistent.json", 1, "nonexistent.json"},
        {"grounding --model M --data G --train G", 1, "img0.jpg"}, /* images not found: no image root */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char a[1024], *p = a;
        /* Substitute M (model) and D/G (grounding file) into the template. */
        for (const char *s = bad[i].args; *s && p < a + sizeof a - 300; s++) {
            if (*s == 'M' && (s[1] == ' ' || !s[1])) p += sprintf(p, "'%s'", g_model);
            else if ((*s == 'D' || *s == 'G') && (s[1] == ' ' || !s[1]) && s[-1] == ' ')
                p += sprintf(p, "'%s/ground.json'", g_dir);
            else *p++ = *s;
        }
        *p = 0;
        int rc = evaluate(a, out);
        text = xv_test_read_file(out, NULL);
        CHECK(rc == bad[i].rc && text && strstr(text, bad[i].msg), "'%s': rc %d (want %d), output: %s", a, rc,
              bad[i].rc, text ? text : "");
        free(text);
    }
}

int main(void) {
    g_bin = getenv("XV_BIN");
    if (!g_bin) return xv_test_skip("XV_BIN not set");
    xv_set_threads(2);
    CHECK(xv_test_scratch_dir("xv_evaluate", g_dir, sizeof g_dir), "mkdtemp");
    snprintf(g_model, sizeof g_model, "%s/model", g_dir);
    mkdir(g_model, 0755);
    if (!xv_test_tiny_model_dir(g_model, 5, 1)) return xv_test_finish("test_evaluate");
    make_data();
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    CHECK_OK(xvlm_model_load(g_model, NULL, &m));
    if (m) CHECK_OK(xvlm_ctx_new(m, &ctx));
    if (ctx) {
        check_retrieval(ctx);
        check_grounding(ctx);
    }
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    check_cli();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!xv_test_failures) xv_test_run(cmd);
    return xv_test_finish("test_evaluate");
}
