/* One model, three forms that every command opens alike: the folder that
 * xv_model_write makes (config.json, weights.safetensors, vocab.txt), that
 * folder's weights.safetensors alone, and a single .safetensors file; all give
 * the same model id and ITM logit. Refused with a message naming the problem:
 * a vocabulary larger than the embeddings, a safetensors file without config
 * metadata, a single file without a vocabulary. `xvlm convert --single-file`
 * writes a file that `xvlm match` reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model_folder.h"
#include "testutil.h"
#include "xvlm.h"

static char g_dir[256], g_image[300];

static char *in_dir(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static bool exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

/* Model id and the ITM logit of one pair, through the public API. */
static bool score(const char *model, const char *image, char id[17], float *logit) {
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    xvlm_images *im = NULL;
    xvlm_texts *tx = NULL;
    const char *text = "the red square on the left";
    xvlm_status st = xvlm_model_load(model, NULL, &m);
    if (st == XVLM_OK) st = xvlm_ctx_new(m, &ctx);
    if (st == XVLM_OK) st = xvlm_encode_image_files(ctx, &image, 1, NULL, &im);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, &text, 1, NULL, &tx);
    xvlm_pair pair = {0, 0};
    float out = 0;
    if (st == XVLM_OK) st = xvlm_itm(ctx, im, tx, &pair, 1, &out, NULL);
    if (st == XVLM_OK) {
        xvlm_model_info info;
        xvlm_model_get_info(m, &info);
        memcpy(id, info.id, 17);
        *logit = out;
    }
    CHECK(st == XVLM_OK, "%s: %s", model, xvlm_last_error());
    xvlm_texts_free(tx), xvlm_images_free(im), xvlm_ctx_free(ctx), xvlm_model_free(m);
    return st == XVLM_OK;
}

static void forms_agree(const xv_model *m, const char *image) {
    CHECK_OK(xv_model_folder_write(in_dir("out"), m, in_dir("src/vocab.txt")));
    CHECK(exists(in_dir("out/config.json")) && exists(in_dir("out/weights.safetensors")) &&
              exists(in_dir("out/vocab.txt")),
          "the folder holds config.json, weights.safetensors and vocab.txt");
    CHECK_OK(xv_model_folder_write(in_dir("one.safetensors"), m, in_dir("src/vocab.txt")));
    const char *forms[3] = {in_dir("out"), in_dir("out/weights.safetensors"), in_dir("one.safetensors")};
    char ids[3][17] = {{0}};
    float logits[3] = {0};
    for (int i = 0; i < 3; i++) score(forms[i], image, ids[i], &logits[i]);
    for (int i = 1; i < 3; i++)
        CHECK(!strcmp(ids[0], ids[i]) && logits[0] == logits[i], "%s: id %s logit %g, the folder's %s %g", forms[i],
              ids[i], logits[i], ids[0], logits[0]);
}

static void refusals(const xv_model *m) {
    /* a vocabulary of more entries than the word embeddings have rows */
    FILE *f = fopen(in_dir("big_vocab.txt"), "w");
    if (f) fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 5; f && i < m->cfg.text.vocab + 1; i++) fprintf(f, "w%d\n", i);
    if (f) fclose(f);
    CHECK(xv_model_folder_write(in_dir("bad"), m, in_dir("big_vocab.txt")) == XV_ERR_SHAPE &&
              strstr(xv_error_message(), "big_vocab.txt") && strstr(xv_error_message(), "entries"),
          "a too large vocabulary is refused: %s", xv_error_message());
    CHECK(!exists(in_dir("bad/config.json")), "nothing written for a refused vocabulary");

    /* a weights-only safetensors file (no config metadata) */
    CHECK_OK(xv_model_save(m, in_dir("weights_only.safetensors")));
    xvlm_model *um = NULL;
    xvlm_model_params p = xvlm_model_params_default();
    p.vocab_path = in_dir("src/vocab.txt");
    CHECK(xvlm_model_load(in_dir("weights_only.safetensors"), &p, &um) == XVLM_ERR_MISSING &&
              strstr(xvlm_last_error(), "\"config\" metadata"),
          "weights without config: %s", xvlm_last_error());
    CHECK(xvlm_model_load(in_dir("weights_only.safetensors"), NULL, &um) == XVLM_ERR_MISSING &&
              strstr(xvlm_last_error(), "vocab.txt"),
          "a single file without vocabulary: %s", xvlm_last_error());
    xvlm_model_free(um);
}

/* convert --single-file and --vocab, then match on the file. */
static void convert_cli(const char *image) {
    const char *bin = getenv("XV_BIN"), *src = getenv("XV_SOURCE_DIR");
    if (!bin || !src) return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' convert --text-heads 2 '%s/tests/data/torch/tiny_fixture.th' '%s' > /dev/null 2>&1",
             bin, src, in_dir("conv.safetensors"));
    CHECK(xv_test_run(cmd) != 0, "convert to a single file without a vocabulary fails");
    snprintf(cmd, sizeof cmd,
             "'%s' convert --single-file --text-heads 2 --vocab '%s' '%s/tests/data/torch/tiny_fixture.th' '%s' > "
             "/dev/null && '%s' match -m '%s' --image '%s' --text 'a dog' --json > '%s'",
             bin, in_dir("src/vocab.txt"), src, in_dir("conv.model"), bin, in_dir("conv.model"), image,
             in_dir("match.json"));
    CHECK(xv_test_run(cmd) == 0, "convert --single-file, then match on the file");
    char *out = xv_test_read_file(in_dir("match.json"), NULL);
    CHECK(out && strstr(out, "itm_logit"), "match printed a logit: %s", out ? out : "(nothing)");
    free(out);
}

int main(void) {
    CHECK(xv_test_scratch_dir("xv_model_folder", g_dir, sizeof g_dir), "scratch dir");
    mkdir(in_dir("src"), 0755);
    if (!xv_test_tiny_model_dir(in_dir("src"), 11, true)) return xv_test_finish("test_model_folder");
    snprintf(g_image, sizeof g_image, "%s/photo.jpg", g_dir);
    CHECK(xv_test_tiny_image(g_image, 48, 40, 3), "image");
    xv_model *m = NULL;
    CHECK_OK(xv_model_load_dir(in_dir("src"), true, &m));
    if (m) {
        forms_agree(m, g_image);
        refusals(m);
    }
    xv_model_free(m);
    convert_cli(g_image);
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_model_folder");
}
