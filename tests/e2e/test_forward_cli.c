/* The `xvlm forward` contract beyond the golden data: a model folder written
 * by xv_model_save + xv_config_to_json, a step without ITM negatives (drawn
 * with --seed and written out), byte-identical output for the same thread
 * count, agreement across thread counts, --grads naming every parameter
 * (tied names included), and usage / runtime exit codes. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "model/model.h"
#include "testutil.h"

static char g_dir[64];

static void write_model(xv_model **out) {
    const char *js =
        "{\"vision\": {\"image_res\": 64, \"window_size\": 8, \"embed_dim\": 8, \"depths\": [2, 2, 1, 1],"
        " \"num_heads\": [1, 2, 2, 4], \"vision_width\": 64, \"patch_size\": 32},"
        " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 32, \"vocab_size\": 60, \"max_position_embeddings\": 10, \"fusion_layer\": 1},"
        " \"embed_dim\": 8}";
    xv_model_config c;
    xv_model *m = xv_test_random_model(js, 21, &c);
    if (!m) return;
    CHECK(xv_test_save_model_dir(m, &c, g_dir), "model folder %s", g_dir);
    *out = m;
}

/* An image-text step of 3 pairs, integers as I64 like the golden inputs,
 * valid or with one flaw. */
typedef enum { INPUTS_GOOD, INPUTS_BAD_SHAPE, INPUTS_BAD_VALUE } inputs_kind;
static void write_inputs(const char *path, inputs_kind kind) {
    enum { B = 3, L = 7, M = 2, R = 64 };
    xv_st_writer *w = NULL;
    CHECK_OK(xv_st_writer_new(&w));
    float *img = malloc(sizeof(float) * B * 3 * R * R);
    xv_test_fill_uniform(img, B * 3 * R * R, -1.5f, 1.5f, 8);
    CHECK_OK(xv_st_writer_add(w, "image.image", XV_ST_F32, XV_SHAPE(B, 3, R, R), img, false));
    int64_t ids[B * L], atts[B * L], masked[B * L], pos[B * M], lab[B * M];
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < L; t++) {
            bool on = t < L - b;
            ids[b * L + t] = on ? (t == 0 ? 5 : 6 + (b * 7 + t * 3) % 50) : 0;
            atts[b * L + t] = on;
            masked[b * L + t] = t == 2 ? 4 : ids[b * L + t];
        }
        pos[b * M] = 2;
        lab[b * M] = ids[b * L + 2];
        pos[b * M + 1] = 0;
        lab[b * M + 1] = -100;
    }
    if (kind == INPUTS_BAD_VALUE) pos[1] = L; /* past the text */
    CHECK_OK(xv_st_writer_add(w, "image.text_ids", XV_ST_I64, XV_SHAPE(B, L), ids, false));
    CHECK_OK(xv_st_writer_add(w, "image.text_atts", XV_ST_I64, XV_SHAPE(B, L), atts, false));
    CHECK_OK(xv_st_writer_add(w, "image.text_ids_masked", XV_ST_I64, XV_SHAPE(B, L), masked, false));
    CHECK_OK(xv_st_writer_add(w, "image.masked_pos", XV_ST_I64, XV_SHAPE(B, M), pos, false));
    if (kind == INPUTS_BAD_SHAPE) /* the same values, transposed shape */
        CHECK_OK(xv_st_writer_add(w, "image.masked_ids", XV_ST_I64, XV_SHAPE(M, B), lab, false));
    else
        CHECK_OK(xv_st_writer_add(w, "image.masked_ids", XV_ST_I64, XV_SHAPE(B, M), lab, false));
    CHECK_OK(xv_st_writer_write(w, path));
    xv_st_writer_free(w);
    free(img);
}

static double max_rel_diff(const xv_st_file *a, const xv_st_file *b, int *n) {
    double worst = 0;
    *n = 0;
    for (int i = 0; i < xv_st_count(a); i++) {
        const xv_st_tensor *x = xv_st_at(a, i), *y = xv_st_find(b, x->name);
        if (x->dtype != XV_ST_F32) continue;
        CHECK(y && y->numel == x->numel, "%s in both", x->name);
        if (!y || y->numel != x->numel) continue;
        float *u = malloc(x->nbytes + 4), *v = malloc(x->nbytes + 4);
        CHECK_OK(xv_st_read_f32(a, x, u));
        CHECK_OK(xv_st_read_f32(b, y, v));
        double mx = 1, d = 0;
        for (int64_t k = 0; k < x->numel; k++) {
            mx = fmax(mx, fabs(u[k]));
            d = fmax(d, fabs((double)u[k] - v[k]));
        }
        worst = fmax(worst, d / mx);
        (*n)++;
        free(u);
        free(v);
    }
    return worst;
}

int main(void) {
    const char *bin = getenv("XV_BIN");
    if (!bin) return xv_test_skip("XV_BIN not set");
    CHECK(xv_test_scratch_dir("xv_forward_cli", g_dir, sizeof g_dir), "mkdtemp");
    xv_model *m = NULL;
    write_model(&m);
    if (!m) return xv_test_finish("test_forward_cli");
    char in[128], o1[128], o2[128], o3[128], og[128], cmd[1024];
    snprintf(in, sizeof in, "%s/in.safetensors", g_dir);
    snprintf(o1, sizeof o1, "%s/o1.safetensors", g_dir);
    snprintf(o2, sizeof o2, "%s/o2.safetensors", g_dir);
    snprintf(o3, sizeof o3, "%s/o3.safetensors", g_dir);
    snprintf(og, sizeof og, "%s/og.safetensors", g_dir);
    write_inputs(in, INPUTS_GOOD);

    const char *fmt = "'%s' forward --model '%s' --inputs '%s' --out '%s' --threads %d --seed 5%s";
    snprintf(cmd, sizeof cmd, fmt, bin, g_dir, in, o1, 1, "");
    CHECK(xv_test_run(cmd) == 0, "forward, 1 thread");
    snprintf(cmd, sizeof cmd, fmt, bin, g_dir, in, o2, 1, "");
    CHECK(xv_test_run(cmd) == 0, "forward again");
    snprintf(cmd, sizeof cmd, fmt, bin, g_dir, in, o3, 2, "");
    CHECK(xv_test_run(cmd) == 0, "forward, 2 threads");
    snprintf(cmd, sizeof cmd, fmt, bin, g_dir, in, og, 2, " --grads");
    CHECK(xv_test_run(cmd) == 0, "forward --grads");

    size_t n1 = 0, n2 = 0;
    char *b1 = xv_test_read_file(o1, &n1), *b2 = xv_test_read_file(o2, &n2);
    CHECK(b1 && b2 && n1 > 0 && n1 == n2 && !memcmp(b1, b2, n1), "same thread count: byte-identical output");
    free(b1);
    free(b2);

    xv_st_file *f1 = NULL, *f3 = NULL, *fg = NULL;
    CHECK_OK(xv_st_open(o1, &f1));
    CHECK_OK(xv_st_open(o3, &f3));
    CHECK_OK(xv_st_open(og, &fg));
    if (f1 && f3 && fg) {
        const xv_st_tensor *ni = xv_st_find(f1, "image.itm_neg_image_idx"),
                           *nt = xv_st_find(f1, "image.itm_neg_text_idx");
        CHECK(ni && nt && ni->dtype == XV_ST_I64 && ni->numel == 3, "drawn negatives written");
        if (ni && nt) {
            int32_t a[3], b[3];
            CHECK_OK(xv_st_read_i32(f1, ni, a));
            CHECK_OK(xv_st_read_i32(f1, nt, b));
            for (int k = 0; k < 3; k++) CHECK(a[k] != k && b[k] != k && a[k] >= 0 && a[k] < 3, "negative %d", k);
        }
        int n;
        /* Thread counts change only the fp32 summation order. */
        double d = max_rel_diff(f1, f3, &n);
        CHECK(n >= 13 && d <= 1e-5, "1 vs 2 threads: %d tensors, worst relative diff %.3e", n, d);
        printf("1 vs 2 threads: worst relative diff %.3e over %d tensors\n", d, n);
        int grads = 0;
        for (int i = 0; i < xv_st_count(fg); i++) grads += !strncmp(xv_st_at(fg, i)->name, "image.grad.", 11);
        CHECK(grads == m->params.n + m->params.n_alias, "%d gradients written, expected %d", grads,
              m->params.n + m->params.n_alias);
        CHECK(xv_st_find(fg, "image.grad.text_encoder.cls.predictions.decoder.weight") &&
                  xv_st_find(fg, "image.grad.temp") && xv_st_find(fg, "image.grad.bbox_head.3.bias"),
              "tied, scalar and unreached parameters have gradients");
        const xv_st_tensor *gb = xv_st_find(fg, "image.grad.bbox_head.3.bias");
        float z[4] = {1, 1, 1, 1};
        if (gb) CHECK_OK(xv_st_read_f32(fg, gb, z));
        CHECK(z[0] == 0 && z[3] == 0, "the image step does not reach bbox_head: zeros");
    }
    xv_st_close(f1);
    xv_st_close(f3);
    xv_st_close(fg);

    /* Exit codes: usage errors 2, runtime errors 1. */
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --inputs '%s' 2>/dev/null", bin, g_dir, in);
    CHECK(xv_test_run(cmd) == 2, "missing --out is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --inputs '%s' --out '%s' --threads x 2>/dev/null", bin,
             g_dir, in, o2);
    CHECK(xv_test_run(cmd) == 2, "bad --threads is a usage error");
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s/nothing' --inputs '%s' --out '%s' 2>/dev/null", bin, g_dir,
             in, o2);
    CHECK(xv_test_run(cmd) == 1, "missing model folder is a runtime error");
    /* A flawed inputs file is a runtime error naming the input and the problem:
     * its shape against the sizes read before it, its values by the model's
     * batch check. */
    const struct {
        inputs_kind kind;
        const char *needle;
    } flawed[] = {
        {INPUTS_BAD_SHAPE, "input image.masked_ids has shape [2, 3], expected [B, M] = [3, 2]"},
        {INPUTS_BAD_VALUE, "step image.: pretrain batch: masked_pos[0][1] = 7 outside [0, 7)"},
    };
    for (size_t i = 0; i < sizeof flawed / sizeof *flawed; i++) {
        char bad[160], err[160];
        snprintf(bad, sizeof bad, "%s/bad%zu.safetensors", g_dir, i);
        snprintf(err, sizeof err, "%s/bad%zu.err", g_dir, i);
        write_inputs(bad, flawed[i].kind);
        snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --inputs '%s' --out '%s' 2>'%s'", bin, g_dir, bad, o2,
                 err);
        CHECK(xv_test_run(cmd) == 1, "flawed inputs %zu are a runtime error", i);
        snprintf(cmd, sizeof cmd, "grep -qF '%s' '%s'", flawed[i].needle, err);
        CHECK(xv_test_run(cmd) == 0, "flawed inputs %zu: the message names \"%s\"", i, flawed[i].needle);
    }
    snprintf(cmd, sizeof cmd, "'%s' forward --help | grep -q 'grad.<name>'", bin);
    CHECK(xv_test_run(cmd) == 0, "--help documents the outputs");

    xv_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0, "cleanup");
    return xv_test_finish("test_forward_cli");
}
