/* Every case of shared/fixtures/tokenizer (made by the official BertTokenizer and
 * dataset/utils.py): token strings, ids, the cleaned caption (or its rejection),
 * caption tokens/ids and pretrain_input_ids must be identical.
 *
 * max_tokens: the fixture does not state it; its longest caption (case 74, 191
 * caption tokens) has 40 pretrain_input_ids, and every shorter one has exactly
 * 1 + its caption tokens, so the fixture was made with max_tokens 40 (the 4M
 * pretraining config). The test checks that inference instead of assuming it. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "data/caption.h"
#include "data/tokenizer.h"
#include "testutil.h"

#define FIXTURE_MAX_WORDS 30
#define FIXTURE_MAX_TOKENS 40

/* The case's text as bytes, from text_utf8_hex (exact even with NUL). */
static char *hex_decode(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Compares ids (and their token strings) with the fixture's arrays. */
static void check_tokens(const xv_tokenizer *t, int id, const char *what, const xv_ids *got,
                         const cJSON *tokens, const cJSON *ids) {
    int n = cJSON_GetArraySize(ids);
    CHECK(cJSON_GetArraySize(tokens) == n, "case %d %s: fixture arrays differ in length", id, what);
    CHECK((size_t)n == got->n, "case %d %s: %zu tokens, expected %d", id, what, got->n, n);
    for (int i = 0; i < n && (size_t)i < got->n; i++) {
        int want_id = cJSON_GetArrayItem(ids, i)->valueint;
        const char *want_tok = cJSON_GetArrayItem(tokens, i)->valuestring;
        const char *got_tok = xv_tokenizer_id_to_token(t, got->v[i]);
        CHECK(got->v[i] == want_id && strcmp(got_tok, want_tok) == 0,
              "case %d %s[%d]: got %s (%d), expected %s (%d)", id, what, i, got_tok, got->v[i], want_tok,
              want_id);
    }
}

static void check_case(const xv_tokenizer *t, const cJSON *c, int *max_tokens_seen) {
    int id = cJSON_GetObjectItem(c, "id")->valueint;
    size_t len;
    char *text = hex_decode(cJSON_GetObjectItem(c, "text_utf8_hex")->valuestring, &len);
    CHECK(len == strlen(cJSON_GetObjectItem(c, "text")->valuestring) &&
              memcmp(text, cJSON_GetObjectItem(c, "text")->valuestring, len) == 0,
          "case %d: text and text_utf8_hex agree", id);

    xv_ids ids = {0};
    CHECK_OK(xv_tokenize(t, text, len, &ids));
    check_tokens(t, id, "tokens", &ids, cJSON_GetObjectItem(c, "tokens"), cJSON_GetObjectItem(c, "ids"));
    xv_ids_free(&ids);

    char *caption = NULL;
    size_t cap_len = 0;
    xv_status s = xv_pre_caption(text, len, FIXTURE_MAX_WORDS, &caption, &cap_len);
    const cJSON *want_cap = cJSON_GetObjectItem(c, "pre_caption");
    if (cJSON_IsNull(want_cap)) {
        const char *err = cJSON_GetObjectItem(c, "pre_caption_error")->valuestring;
        CHECK(s == XV_ERR_INVALID_ARG && strstr(err, xv_error_message()) && strstr(err, "ValueError"),
              "case %d: pre_caption should reject (%s), got status %d", id, err, (int)s);
    } else {
        CHECK(s == XV_OK && cap_len == strlen(want_cap->valuestring) &&
                  memcmp(caption, want_cap->valuestring, cap_len) == 0,
              "case %d: pre_caption \"%s\", expected \"%s\"", id, s == XV_OK ? caption : xv_error_message(),
              want_cap->valuestring);
    }
    if (s == XV_OK && !cJSON_IsNull(want_cap)) {
        xv_ids cap_ids = {0};
        CHECK_OK(xv_tokenize(t, caption, cap_len, &cap_ids));
        check_tokens(t, id, "caption_tokens", &cap_ids, cJSON_GetObjectItem(c, "caption_tokens"),
                     cJSON_GetObjectItem(c, "caption_ids"));
        /* pretrain_input_ids = the unpadded part of the pretraining encoding */
        const cJSON *want = cJSON_GetObjectItem(c, "pretrain_input_ids");
        int n = cJSON_GetArraySize(want);
        if (n > *max_tokens_seen) *max_tokens_seen = n;
        CHECK((size_t)n == (cap_ids.n + 1 < FIXTURE_MAX_TOKENS ? cap_ids.n + 1 : FIXTURE_MAX_TOKENS),
              "case %d: %d pretrain ids is not min(1 + %zu, %d): another max_tokens?", id, n, cap_ids.n,
              FIXTURE_MAX_TOKENS);
        xv_text_batch b;
        xv_encode_opts o = xv_encode_pretrain(FIXTURE_MAX_TOKENS);
        const char *one[] = {caption};
        CHECK_OK(xv_encode_batch(t, one, 1, &o, &b));
        if (b.ids) {
            int mismatch = 0, real = 0;
            for (int i = 0; i < b.len; i++) {
                real += b.atts[i];
                int32_t expect = i < n ? cJSON_GetArrayItem(want, i)->valueint : 0;
                mismatch += b.ids[i] != expect || b.atts[i] != (i < n);
            }
            CHECK(b.len == FIXTURE_MAX_TOKENS && mismatch == 0 && real == n,
                  "case %d: pretrain encoding differs at %d positions", id, mismatch);
            xv_text_batch_free(&b);
        }
        xv_ids_free(&cap_ids);
    } else {
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(c, "pretrain_input_ids")), "case %d: no pretrain ids", id);
    }
    free(caption);
    free(text);
}

int main(void) {
    const char *dir = xv_fixtures_dir();
    if (!dir) return xv_test_skip("fixtures absent (set XV_FIXTURES)");
    char vocab[4096], cases[4096];
    snprintf(vocab, sizeof vocab, "%s/tokenizer/vocab.txt", dir);
    snprintf(cases, sizeof cases, "%s/tokenizer/cases.jsonl", dir);
    xv_tokenizer *t;
    if (xv_tokenizer_load(vocab, &t) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    size_t len;
    char *data = xv_test_read_file(cases, &len);
    CHECK(data != NULL, "read %s", cases);
    int n_cases = 0, max_tokens_seen = 0;
    for (char *line = data ? strtok(data, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        CHECK(c != NULL, "case line %d parses", n_cases + 1);
        if (c) check_case(t, c, &max_tokens_seen);
        cJSON_Delete(c);
        n_cases++;
    }
    CHECK(n_cases == 43, "%d cases (expected the fixture's 43)", n_cases);
    CHECK(max_tokens_seen == FIXTURE_MAX_TOKENS, "some case reaches max_tokens %d (longest %d)",
          FIXTURE_MAX_TOKENS, max_tokens_seen);
    free(data);
    xv_tokenizer_free(t);
    return xv_test_finish("test_tokenizer_fixtures");
}
