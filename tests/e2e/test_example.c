/* examples/retrieve_and_ground builds against include/xvlm.h alone (see
 * CMakeLists.txt) and runs: on a tiny model and three images it prints the
 * ranking and the box that the same API calls give here; a bad model path is
 * a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "xvlm.h"

int main(void) {
    const char *ex = getenv("XV_EXAMPLE");
    if (!ex) return xv_test_skip("XV_EXAMPLE not set");
    char dir[64], model[96], img[3][96], cmd[1024], out[128];
    CHECK(xv_test_scratch_dir("xv_example", dir, sizeof dir), "mkdtemp");
    snprintf(model, sizeof model, "%s/model", dir);
    mkdir(model, 0755);
    if (!xv_test_tiny_model_dir(model, 5, 1)) return xv_test_finish("test_example");
    for (int i = 0; i < 3; i++) {
        snprintf(img[i], sizeof img[i], "%s/photo%d.jpg", dir, i);
        CHECK(xv_test_tiny_image(img[i], 40 + 10 * i, 30 + 7 * i, i + 2), "image %d", i);
    }
    const char *query = "the yellow square on the left";
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s' '%s' > '%s'", ex, model, query, img[0], img[1], img[2], out);
    CHECK(xv_test_run(cmd) == 0, "example runs");
    char *text = xv_test_read_file(out, NULL);
    printf("%s", text ? text : "(no output)\n");

    /* The same calls in-process. */
    xvlm_model *m = NULL;
    xvlm_ctx *ctx = NULL;
    xvlm_images *g = NULL;
    xvlm_texts *q = NULL;
    const char *paths[3] = {img[0], img[1], img[2]};
    CHECK_OK(xvlm_model_load(model, NULL, &m));
    if (m) CHECK_OK(xvlm_ctx_new(m, &ctx));
    if (ctx) {
        CHECK_OK(xvlm_encode_image_files(ctx, paths, 3, NULL, &g));
        CHECK_OK(xvlm_encode_texts(ctx, &query, 1, NULL, &q));
    }
    if (g && q) {
        xvlm_hit hits[3];
        int n = 0;
        xvlm_search_params sp = xvlm_search_params_default();
        sp.k = 3;
        CHECK_OK(xvlm_search_images(ctx, g, q, 0, &sp, hits, &n));
        xvlm_pair pair = {hits[0].index, 0};
        xvlm_box box;
        CHECK_OK(xvlm_ground(ctx, g, q, &pair, 1, &box));
        char line[512];
        snprintf(line, sizeof line, "1. %s  itm %.4f (logit %.4f)  itc %.4f\n", paths[hits[0].index], hits[0].itm_prob,
                 hits[0].itm_logit, hits[0].itc);
        CHECK(text && strstr(text, line), "best match printed: %s", line);
        snprintf(line, sizeof line, "x %.1f y %.1f width %.1f height %.1f\n", box.x, box.y, box.width, box.height);
        CHECK(text && strstr(text, line), "box printed: %s", line);
    }
    free(text);
    xvlm_texts_free(q);
    xvlm_images_free(g);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);

    snprintf(cmd, sizeof cmd, "'%s' '%s/missing' 'a dog' '%s' 2> '%s'", ex, dir, img[0], out);
    CHECK(xv_test_run(cmd) == 1, "missing model: exit 1");
    text = xv_test_read_file(out, NULL);
    CHECK(text && strstr(text, "no such model"), "clear message: %s", text ? text : "");
    free(text);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!xv_test_failures) xv_test_run(cmd);
    return xv_test_finish("test_example");
}
