/* `xvlm tokenize`: JSON lines {"text": ...} on stdin -> one JSON object per line
 * with the fields of the official tokenizer fixture (shared/fixtures/tokenizer). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "data/caption.h"
#include "data/jsonl.h"
#include "data/tokenizer.h"

/* Longest input line accepted (a caption is a few hundred bytes). */
#define MAX_LINE_BYTES ((size_t)16 << 20)

static cJSON *token_array(const xv_tokenizer *t, const xv_ids *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(xv_tokenizer_id_to_token(t, ids->v[i])));
    return a;
}

static cJSON *id_array(const int32_t *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

static char *hex_of(const char *s, size_t n) {
    char *h = malloc(2 * n + 1);
    if (!h) return NULL;
    for (size_t i = 0; i < n; i++) sprintf(h + 2 * i, "%02x", (unsigned char)s[i]);
    h[2 * n] = '\0';
    return h;
}

/* Builds the output object for one input text; NULL with xv_error_message() set
 * when the text cannot be processed (invalid UTF-8). */
static cJSON *process_text(const xv_tokenizer *t, const char *text, int max_words, int max_tokens) {
    size_t len = strlen(text);
    xv_ids ids = {0}, cap_ids = {0};
    char *caption = NULL;
    if (xv_tokenize(t, text, len, &ids) != XV_OK) return NULL;
    xv_status cs = xv_pre_caption(text, len, max_words, &caption, NULL);
    /* Only the official rejection (empty caption) is an answer; anything else fails the line. */
    if ((cs != XV_OK && cs != XV_ERR_INVALID_ARG) ||
        (cs == XV_OK && xv_tokenize(t, caption, strlen(caption), &cap_ids) != XV_OK)) {
        xv_ids_free(&ids);
        free(caption);
        return NULL;
    }
    char *hex = hex_of(text, len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "text_utf8_hex", hex ? hex : "");
    cJSON_AddItemToObject(o, "tokens", token_array(t, &ids, ids.n));
    cJSON_AddItemToObject(o, "ids", id_array(ids.v, ids.n));
    if (cs == XV_OK) {
        cJSON_AddStringToObject(o, "pre_caption", caption);
        cJSON_AddNullToObject(o, "pre_caption_error");
        cJSON_AddItemToObject(o, "caption_tokens", token_array(t, &cap_ids, cap_ids.n));
        cJSON_AddItemToObject(o, "caption_ids", id_array(cap_ids.v, cap_ids.n));
        xv_text_batch b;
        xv_encode_opts opts = {.max_tokens = max_tokens};
        const char *one[] = {caption};
        if (xv_encode_batch(t, one, 1, &opts, &b) == XV_OK) {
            cJSON_AddItemToObject(o, "pretrain_input_ids", id_array(b.ids, (size_t)b.len));
            xv_text_batch_free(&b);
        } else {
            cJSON_AddNullToObject(o, "pretrain_input_ids");
        }
    } else {
        cJSON_AddNullToObject(o, "pre_caption");
        cJSON_AddStringToObject(o, "pre_caption_error", "ValueError: " XV_PRE_CAPTION_EMPTY);
        cJSON_AddNullToObject(o, "caption_tokens");
        cJSON_AddNullToObject(o, "caption_ids");
        cJSON_AddNullToObject(o, "pretrain_input_ids");
    }
    free(hex);
    free(caption);
    xv_ids_free(&ids);
    xv_ids_free(&cap_ids);
    return o;
}

static void emit(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s) puts(s);
    free(s);
}

static void line_error(size_t line_no, const char *msg) {
    fprintf(stderr, "xvlm tokenize: stdin line %zu: %s\n", line_no, msg);
    cJSON *o = cJSON_CreateObject();
    char buf[2300];
    snprintf(buf, sizeof buf, "line %zu: %s", line_no, msg);
    cJSON_AddStringToObject(o, "error", buf);
    emit(o);
    cJSON_Delete(o);
}

static int only_whitespace(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int xv_cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    int max_words = 30, max_tokens = 40;
    const xv_opt opts[] = {
        XV_OPT_VOCAB(&vocab, "the WordPiece vocabulary (vocab.txt)", true),
        {.name = "--max-words", .kind = XV_OPT_INT, .dest = &max_words, .value = "N", .lo = 0, .hi = 1000000,
         .help = "pre_caption's word limit"},
        {.name = "--max-tokens", .kind = XV_OPT_INT, .dest = &max_tokens, .value = "N", .lo = 1, .hi = 1000000,
         .help = "pretrain_input_ids' length limit"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "tokenize",
        .usage = "xvlm tokenize --vocab VOCAB [--max-words 30] [--max-tokens 40]",
        .about = "Reads JSON lines with a \"text\" field on stdin and writes one JSON object per line:\n"
                 "  tokens, ids           the BERT WordPiece tokenizer (uncased) on the raw text\n"
                 "  pre_caption           the official caption cleaning with max-words, or null with\n"
                 "  pre_caption_error     when the official code raises\n"
                 "  caption_tokens, caption_ids   the tokenizer on the cleaned caption\n"
                 "  pretrain_input_ids    [CLS] + caption tokens, cut to max-tokens (no [SEP], no padding)\n"
                 "An input \"id\" is copied. A line that cannot be read gives {\"error\": ...} (and a message\n"
                 "on stderr naming the line) and the exit status 1.\n",
        .opts = opts,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xv_tokenizer *t;
    if (xv_tokenizer_load(vocab, &t) != XV_OK) {
        fprintf(stderr, "xvlm tokenize: %s\n", xv_error_message());
        return 1;
    }
    int failed = 0;
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        if (only_whitespace(line, (size_t)got)) continue;
        if ((size_t)got > MAX_LINE_BYTES) {
            line_error(line_no, "line longer than 16 MiB");
            failed = 1;
            continue;
        }
        cJSON *in;
        int nul_escapes;
        const char *why = xv_json_parse_record(line, (size_t)got, &in, &nul_escapes);
        const cJSON *text = in ? cJSON_GetObjectItemCaseSensitive(in, "text") : NULL;
        if (why || !cJSON_IsString(text)) {
            line_error(line_no, why ? why : "expected a JSON object with a string field \"text\"");
            failed = 1;
            cJSON_Delete(in);
            continue;
        }
        cJSON *o = process_text(t, text->valuestring, max_words, max_tokens);
        if (!o) {
            line_error(line_no, xv_error_message());
            failed = 1;
        } else {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(in, "id");
            if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, 1));
            emit(o);
            cJSON_Delete(o);
        }
        cJSON_Delete(in);
    }
    free(line);
    xv_tokenizer_free(t);
    fflush(stdout);
    return failed;
}
