/* xvlm_model_load on official PyTorch checkpoints (tests/data/torch), converted
 * on the fly: a missing vocab.txt and an un-inferable head count are refused
 * with a hint; with the hint followed the model has the same id and computes
 * bitwise the same features and ITM logits as the `xvlm convert` output
 * loaded from a folder; a retrieval checkpoint (no bbox_head) refuses
 * grounding by name; the commands accept a checkpoint for --model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>

#include "testutil.h"
#include "xvlm.h"

static char g_dir[64];

typedef struct {
    xvlm_model *m;
    xvlm_ctx *ctx;
    xvlm_images *im;
    xvlm_texts *tx;
    float logit[2];
} loaded;

static void load_and_run(const char *path, const xvlm_model_params *p, const char *image, loaded *L) {
    memset(L, 0, sizeof *L);
    CHECK_OK(xvlm_model_load(path, p, &L->m));
    if (!L->m) return;
    CHECK_OK(xvlm_ctx_new(L->m, &L->ctx));
    const char *texts[2] = {"a red car", "two dogs on the left"};
    CHECK_OK(xvlm_encode_image_files(L->ctx, &image, 1, NULL, &L->im));
    CHECK_OK(xvlm_encode_texts(L->ctx, texts, 2, NULL, &L->tx));
    xvlm_pair pairs[2] = {{0, 0}, {0, 1}};
    if (L->im && L->tx) CHECK_OK(xvlm_itm(L->ctx, L->im, L->tx, pairs, 2, L->logit, NULL));
}

static void unload(loaded *L) {
    xvlm_images_free(L->im);
    xvlm_texts_free(L->tx);
    xvlm_ctx_free(L->ctx);
    xvlm_model_free(L->m);
}

int main(void) {
    const char *src = getenv("XV_SOURCE_DIR"), *bin = getenv("XV_BIN");
    if (!src || !bin) return xv_test_skip("XV_SOURCE_DIR / XV_BIN not set");
    CHECK(xv_test_scratch_dir("xv_api_ckpt", g_dir, sizeof g_dir), "mkdtemp");
    /* Checkpoints are converted once into the model cache: keep it in g_dir. */
    char cache[160];
    snprintf(cache, sizeof cache, "%s/cache", g_dir);
    setenv("XV_CACHE_DIR", cache, 1);
    char th[128], vocab[128], conv[128], image[128], cmd[1024];
    snprintf(th, sizeof th, "%s/micro.th", g_dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_dir);
    snprintf(conv, sizeof conv, "%s/converted", g_dir);
    snprintf(image, sizeof image, "%s/photo.jpg", g_dir);
    snprintf(cmd, sizeof cmd, "cp '%s/tests/data/torch/micro_pretrain_fp32.th' '%s'", src, th);
    CHECK(xv_test_run(cmd) == 0, "copy the checkpoint");
    CHECK(xv_test_tiny_image(image, 120, 90, 4), "image");

    xvlm_model *m = NULL;
    xvlm_model_params p = xvlm_model_params_default();
    CHECK(xvlm_model_load(th, &p, &m) == XVLM_ERR_MISSING && strstr(xvlm_last_error(), "vocab.txt"),
          "no vocab.txt beside the checkpoint: %s", xvlm_last_error());
    CHECK(xv_test_tiny_vocab(vocab), "vocab");
    /* Hidden size 8: BERT's hidden/64 rule gives no head count. */
    CHECK(xvlm_model_load(th, &p, &m) != XVLM_OK && strstr(xvlm_last_error(), "--text-heads"),
          "un-inferable config: hint given: %s", xvlm_last_error());
    CHECK(m == NULL, "nothing returned on failure");

    p.text_heads = 2;
    loaded a, b;
    load_and_run(th, &p, image, &a);
    snprintf(cmd, sizeof cmd, "'%s' convert --text-heads 2 '%s' '%s' > /dev/null && cp '%s' '%s/'", bin, th, conv, vocab,
             conv);
    CHECK(xv_test_run(cmd) == 0, "xvlm convert");
    load_and_run(conv, NULL, image, &b);
    if (a.m && b.m && a.im && b.im && a.tx && b.tx) {
        xvlm_model_info ia, ib;
        xvlm_model_get_info(a.m, &ia);
        xvlm_model_get_info(b.m, &ib);
        CHECK(!strcmp(ia.id, ib.id), "same model id (%s, %s)", ia.id, ib.id);
        CHECK(ia.image_res == 96 && ia.embed_dim == 4, "config from the checkpoint: %d px, embed %d", ia.image_res,
              ia.embed_dim);
        CHECK(!memcmp(xvlm_images_features(a.im), xvlm_images_features(b.im), 4 * sizeof(float)) &&
                  !memcmp(xvlm_texts_features(a.tx), xvlm_texts_features(b.tx), 8 * sizeof(float)) &&
                  !memcmp(a.logit, b.logit, sizeof a.logit),
              "checkpoint on the fly = converted folder, bitwise");
    }
    unload(&a);
    unload(&b);

    /* A retrieval checkpoint (float16, bare state_dict, no bbox_head). */
    char th16[128];
    snprintf(th16, sizeof th16, "%s/retrieval.th", g_dir);
    snprintf(cmd, sizeof cmd, "cp '%s/tests/data/torch/micro_retrieval_fp16.th' '%s'", src, th16);
    CHECK(xv_test_run(cmd) == 0, "copy");
    p.vocab_path = vocab;
    CHECK(xvlm_model_load(th16, &p, &m) != XVLM_OK && strstr(xvlm_last_error(), "--image-res"),
          "no config in the checkpoint, window 3: resolution asked for: %s", xvlm_last_error());
    p.image_res = 96;
    load_and_run(th16, &p, image, &a);
    if (a.ctx && a.im && a.tx) {
        xvlm_model_info info;
        xvlm_model_get_info(a.m, &info);
        CHECK(info.has_itm && !info.has_bbox, "retrieval parts");
        xvlm_pair pair = {0, 0};
        xvlm_box box;
        CHECK(xvlm_ground(a.ctx, a.im, a.tx, &pair, 1, &box) == XVLM_ERR_UNSUPPORTED &&
                  strstr(xvlm_last_error(), "bbox_head"),
              "grounding refused by name: %s", xvlm_last_error());
        CHECK(isfinite(a.logit[0]) && isfinite(a.logit[1]), "ITM works");
    }
    unload(&a);

    snprintf(cmd, sizeof cmd, "'%s' match --model '%s' --text-heads 2 --image '%s' --text 'a red car' > /dev/null", bin,
             th, image);
    CHECK(xv_test_run(cmd) == 0, "xvlm match --model CHECKPOINT.th");
    /* One cache entry per checkpoint and conversion options: the command
     * reused the library's entry, and failed conversions left none. */
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 2", cache);
    CHECK(xv_test_run(cmd) == 0, "two cache entries (micro.th with 2 heads, retrieval.th at 96 px)");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!xv_test_failures) xv_test_run(cmd);
    return xv_test_finish("test_api_checkpoint");
}
