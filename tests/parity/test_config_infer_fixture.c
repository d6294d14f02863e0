/* The config inferred from the official tiny model's state_dict shapes equals
 * the configuration the official code was run with (fixtures/tiny/config.json,
 * sections "vision" and "text", and embed_dim). Only the number of BERT heads
 * is not in the shapes (given, as `xvlm convert --text-heads 2` would). */
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "io/safetensors.h"
#include "io/xvlm_config_infer.h"
#include "testutil.h"

static cJSON *read_json(const char *path) {
    uint8_t *text = NULL;
    size_t n;
    if (xv_fs_read_file(path, 1 << 16, &text, &n) != XV_OK) return NULL;
    cJSON *j = cJSON_Parse((const char *)text);
    free(text);
    return j;
}

int main(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("fixtures not found");
    char wpath[1024], cpath[1024];
    snprintf(wpath, sizeof wpath, "%s/tiny/weights.safetensors", fx);
    snprintf(cpath, sizeof cpath, "%s/tiny/config.json", fx);
    xv_st_file *w = NULL;
    CHECK_OK(xv_st_open(wpath, &w));
    cJSON *want = read_json(cpath);
    CHECK(want != NULL, "%s parses", cpath);
    if (!w || !want) return xv_test_finish("test_config_infer_fixture");

    int n = xv_st_count(w);
    xv_named_shape *shapes = malloc(sizeof *shapes * (size_t)n);
    for (int i = 0; i < n; i++) {
        const xv_st_tensor *t = xv_st_at(w, i);
        shapes[i] = (xv_named_shape){t->name, t->ndim, t->shape};
    }
    /* The fixture's own config stands in for the checkpoint's 'config'. */
    xv_infer_opts o = {.text_heads = 2};
    cJSON *got = NULL;
    CHECK_OK(xv_infer_xvlm_config(shapes, n, want, &o, &got));
    if (got) {
        static const char *sections[] = {"vision", "text"};
        for (int s = 0; s < 2; s++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(got, sections[s]);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(want, sections[s]);
            CHECK(cJSON_GetArraySize(a) == cJSON_GetArraySize(b), "%s: %d keys, fixture %d", sections[s],
                  cJSON_GetArraySize(a), cJSON_GetArraySize(b));
            const cJSON *e;
            cJSON_ArrayForEach(e, b) {
                const cJSON *mine = cJSON_GetObjectItemCaseSensitive(a, e->string);
                char *x = mine ? cJSON_PrintUnformatted(mine) : NULL, *y = cJSON_PrintUnformatted(e);
                CHECK(mine && cJSON_Compare(mine, e, true), "%s.%s: inferred %s, official %s", sections[s], e->string,
                      x ? x : "(missing)", y);
                cJSON_free(x), cJSON_free(y);
            }
        }
        static const char *top[] = {"embed_dim", "temp", "temp_clamp", "head_layer_norm_eps", "max_tokens"};
        for (size_t i = 0; i < sizeof top / sizeof *top; i++)
            CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(got, top[i]), cJSON_GetObjectItemCaseSensitive(want, top[i]),
                                true),
                  "%s differs", top[i]);
        /* Without the checkpoint's config the resolution follows the window (7 -> 224). */
        cJSON *bare = NULL;
        CHECK_OK(xv_infer_xvlm_config(shapes, n, NULL, &o, &bare));
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bare, "vision"), "image_res");
        CHECK(cJSON_IsNumber(res) && res->valueint == 224, "image_res from the window");
        cJSON_Delete(bare);
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(shapes);
    xv_st_close(w);
    return xv_test_finish("test_config_infer_fixture");
}
