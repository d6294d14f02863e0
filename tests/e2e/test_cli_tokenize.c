/* `xvlm tokenize` ($XV_BIN) on the texts of shared/fixtures/tokenizer/cases.jsonl:
 * every output field must equal the official fixture's. Also its error paths:
 * malformed lines are named by number, bad usage and bad vocabs fail cleanly. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "testutil.h"

static char g_tmp[64];

/* Runs `xvlm tokenize ARGS < in > out 2> err`; returns the exit status. */
static int run(const char *args, const char *in) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "\"%s\" tokenize %s < %s/in > %s/out 2> %s/err", getenv("XV_BIN"), args, in,
             g_tmp, g_tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_fixture_cases(const char *dir) {
    char path[4096], args[4096];
    snprintf(path, sizeof path, "%s/tokenizer/cases.jsonl", dir);
    char *cases = xv_test_read_file(path, NULL);
    CHECK(cases != NULL, "read %s", path);
    if (!cases) return;
    /* input: only id and text of each case */
    cJSON *expected = cJSON_CreateArray();
    char in_path[128];
    snprintf(in_path, sizeof in_path, "%s/in", g_tmp);
    FILE *in = fopen(in_path, "wb");
    for (char *line = strtok(cases, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "id", cJSON_Duplicate(cJSON_GetObjectItem(c, "id"), 1));
        cJSON_AddItemToObject(o, "text", cJSON_Duplicate(cJSON_GetObjectItem(c, "text"), 1));
        char *s = cJSON_PrintUnformatted(o);
        fprintf(in, "%s\n", s);
        free(s);
        cJSON_Delete(o);
        cJSON_AddItemToArray(expected, c);
    }
    fclose(in);
    snprintf(args, sizeof args, "--vocab %s/tokenizer/vocab.txt --max-words 30 --max-tokens 40", dir);
    CHECK(run(args, g_tmp) == 0, "exit status 0");
    char out_path[128];
    snprintf(out_path, sizeof out_path, "%s/out", g_tmp);
    char *out = xv_test_read_file(out_path, NULL);
    int n = 0, fields = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"), n++) {
        cJSON *got = cJSON_Parse(line);
        cJSON *want = cJSON_GetArrayItem(expected, n);
        CHECK(got && want, "output line %d", n + 1);
        if (!got || !want) {
            cJSON_Delete(got);
            continue;
        }
        for (cJSON *f = want->child; f; f = f->next, fields++) {
            cJSON *g = cJSON_GetObjectItemCaseSensitive(got, f->string);
            CHECK(g && cJSON_Compare(f, g, 1), "case %d field %s differs", cJSON_GetObjectItem(want, "id")->valueint,
                  f->string);
        }
        cJSON_Delete(got);
    }
    CHECK(n == cJSON_GetArraySize(expected), "%d output lines for %d cases", n, cJSON_GetArraySize(expected));
    CHECK(fields == 10 * n, "compared %d fields (10 per case)", fields);
    free(out);
    free(cases);
    cJSON_Delete(expected);
}

static void test_errors(const char *dir) {
    char args[4096], in_path[128];
    snprintf(args, sizeof args, "--vocab %s/tokenizer/vocab.txt", dir);
    snprintf(in_path, sizeof in_path, "%s/in", g_tmp);
    /* Line 5's NUL is dropped by the tokenizer as BERT's _clean_text drops it;
     * lines 8 and 9 hold something after the object. */
    xv_test_write_file(in_path, "{\"text\": \"A dog.\"}\n\n{\"text\": 5}\nnot json\n{\"text\": \"ok\\u0000cut\"}\n"
                  "{\"text\": \"bad \xff byte\"}\n{\"text\": \"fine\"}\n{\"text\": \"a\"} {\"text\": \"b\"}\n"
                  "{\"text\": \"a\"}junk\n");
    CHECK(run(args, g_tmp) == 1, "malformed lines -> exit 1");
    char path[128];
    snprintf(path, sizeof path, "%s/err", g_tmp);
    char *err = xv_test_read_file(path, NULL);
    CHECK(err && strstr(err, "line 3") && strstr(err, "line 4") && strstr(err, "line 6") && strstr(err, "line 8:") &&
              strstr(err, "line 9: bytes after the JSON object"),
          "stderr names lines 3, 4, 6, 8, 9: %s", err ? err : "");
    CHECK(err && strstr(err, "byte offset 4"), "invalid UTF-8 names the offset: %s", err ? err : "");
    CHECK(err && !strstr(err, "line 1:") && !strstr(err, "line 5") && !strstr(err, "line 7"),
          "good lines are not errors");
    free(err);
    snprintf(path, sizeof path, "%s/out", g_tmp);
    char *out = xv_test_read_file(path, NULL);
    /* "okcut" with the fixture vocabulary; a text cut at the NUL would give ["o","##k"] */
    CHECK(out && strstr(out, "\"tokens\":[\"o\",\"##k\",\"##c\",\"##u\",\"##t\"]"), "the NUL is dropped, not a cut: %s",
          out ? out : "");
    int lines = 0, errors = 0;
    for (char *l = out ? strtok(out, "\n") : NULL; l; l = strtok(NULL, "\n")) {
        lines++;
        errors += strstr(l, "\"error\"") != NULL;
    }
    CHECK(lines == 8 && errors == 5, "one output per non-blank line (%d), 5 errors (%d)", lines, errors);
    free(out);

    CHECK(run("--help", g_tmp) == 0, "--help");
    CHECK(run("", g_tmp) == 2, "no --vocab: usage error");
    CHECK(run("--vocab", g_tmp) == 2, "--vocab without a value");
    snprintf(args, sizeof args, "--vocab %s/tokenizer/vocab.txt --max-words -3", dir);
    CHECK(run(args, g_tmp) == 2, "negative --max-words");
    snprintf(args, sizeof args, "--vocab %s/tokenizer/cases.jsonl", dir);
    CHECK(run(args, g_tmp) == 1, "a file that is no vocab");
    snprintf(path, sizeof path, "%s/err", g_tmp);
    err = xv_test_read_file(path, NULL);
    CHECK(err && strstr(err, "cases.jsonl") && strstr(err, "[PAD]"), "names the file and the tokens: %s",
          err ? err : "");
    free(err);
}

int main(void) {
    const char *dir = xv_fixtures_dir();
    if (!dir) return xv_test_skip("fixtures absent (set XV_FIXTURES)");
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN (the xvlm program) not set");
    if (!xv_test_scratch_dir("xv_cli_tokenize", g_tmp, sizeof g_tmp)) return 1;
    test_fixture_cases(dir);
    test_errors(dir);
    xv_test_remove_dir(g_tmp);
    return xv_test_finish("test_cli_tokenize");
}
