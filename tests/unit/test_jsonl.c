/* JSON-lines reading for the pretraining data: base64, file listing, the
 * official rank/worker sharding (and its line-level fallback), malformed
 * lines, and resuming from a saved position. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/base64.h"
#include "data/jsonl.h"
#include "testutil.h"

static char g_dir[64];

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static char *path_of(const char *name) {
    static char path[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", g_dir, name);
    return path[k];
}

static void test_base64(void) {
    static const char *const plain[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 6; i++) {
        uint8_t *out;
        size_t n;
        CHECK_OK(xv_base64_decode(coded[i], strlen(coded[i]), 100, "t", &out, &n));
        CHECK(n == strlen(plain[i]) && memcmp(out, plain[i], n) == 0, "RFC 4648 vector %d", i);
        free(out);
        char *text = xv_base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        CHECK(text && !strcmp(text, coded[i]), "RFC 4648 vector %d encoded as %s", i, text ? text : "(null)");
        free(text);
    }
    uint8_t *out;
    size_t n;
    CHECK_OK(xv_base64_decode(" Zm9v\nYmFy\r\n", 12, 100, "t", &out, &n));
    CHECK(n == 6 && memcmp(out, "foobar", 6) == 0, "whitespace is skipped");
    free(out);
    CHECK(xv_base64_decode("Zm9v!mFy", 8, 100, "img", &out, &n) == XV_ERR_FORMAT && !out, "bad character");
    CHECK(strstr(xv_error_message(), "img") && strstr(xv_error_message(), "offset 4"),
          "message names label and offset: %s", xv_error_message());
    CHECK(xv_base64_decode("Zm9vYg", 6, 100, "t", &out, &n) == XV_ERR_FORMAT, "missing padding refused (as Python)");
    CHECK(xv_base64_decode("Zg==Zg==", 8, 100, "t", &out, &n) == XV_ERR_FORMAT, "data after padding");
    CHECK(xv_base64_decode("Z===", 4, 100, "t", &out, &n) == XV_ERR_FORMAT, "three '=' refused");
    CHECK(xv_base64_decode("", 0, 100, "t", &out, &n) == XV_ERR_FORMAT, "empty refused");
    CHECK(xv_base64_decode("Zm9vYmFy", 8, 5, "t", &out, &n) == XV_ERR_NOMEM, "output cap checked before allocating");
}

static void test_file_list(void) {
    mkdir(path_of("dir"), 0755);
    mkdir(path_of("dir/sub"), 0755);
    write_file("dir/part-b", "{}\n");
    write_file("dir/part-a", "{}\n");
    write_file("dir/_SUCCESS", "");
    write_file("dir/.part-a.crc", "x");
    write_file("single.json", "{}\n");
    const char *entries[] = {path_of("single.json"), path_of("dir")};
    xv_file_list l;
    CHECK_OK(xv_file_list_expand(entries, 2, &l));
    CHECK(l.n == 3, "3 data files, got %d", l.n);
    if (l.n == 3) {
        CHECK(strstr(l.paths[0], "single.json") && strstr(l.paths[1], "dir/part-a") && strstr(l.paths[2], "dir/part-b"),
              "entry order, then sorted directory: %s %s %s", l.paths[0], l.paths[1], l.paths[2]);
    }
    xv_file_list_free(&l);
    const char *missing[] = {path_of("nope")};
    CHECK(xv_file_list_expand(missing, 1, &l) == XV_ERR_MISSING && strstr(xv_error_message(), "nope"),
          "missing entry named: %s", xv_error_message());
    mkdir(path_of("empty"), 0755);
    const char *empty[] = {path_of("empty")};
    CHECK(xv_file_list_expand(empty, 1, &l) == XV_ERR_MISSING, "directory without data files");
}

/* Files s0..s4 with 3+i lines each: {"id": i*100+j}. */
enum { SH_FILES = 5 };
static int g_total_lines;

static void make_shard_files(xv_file_list *l) {
    l->n = SH_FILES;
    l->paths = calloc(SH_FILES, sizeof *l->paths);
    g_total_lines = 0;
    for (int i = 0; i < SH_FILES; i++) {
        char name[32], text[1024] = "";
        snprintf(name, sizeof name, "s%d.jsonl", i);
        for (int j = 0; j < 3 + i; j++) {
            char line[64];
            snprintf(line, sizeof line, "{\"id\": %d}\n", i * 100 + j);
            strcat(text, line);
            g_total_lines++;
        }
        write_file(name, text);
        l->paths[i] = strdup(path_of(name));
    }
}

/* All ids of one shard (repeat off); returns the count. */
static int read_shard(const xv_file_list *l, int n_files, int rank, int world, int worker, int workers, int *ids,
                      int cap) {
    xv_jsonl_shard sh;
    if (xv_jsonl_shard_make(n_files, rank, world, worker, workers, &sh) != XV_OK) return -1;
    xv_file_list sub = {l->paths, n_files};
    xv_jsonl_opts o = {.label = "test"};
    xv_jsonl_reader *r;
    int n = 0;
    if (xv_jsonl_open(&sub, &sh, &o, &r) == XV_OK) {
        cJSON *obj;
        while (xv_jsonl_next(r, &obj, NULL) == XV_OK && obj) {
            if (n < cap) ids[n++] = (int)cJSON_GetObjectItem(obj, "id")->valuedouble;
            cJSON_Delete(obj);
        }
        xv_jsonl_close(r);
    }
    xv_jsonl_shard_free(&sh);
    return n;
}

static void test_sharding(void) {
    xv_file_list l;
    make_shard_files(&l);
    /* The official split_shard of 5 files: ranks of 2 get [0,2) and [2,5). */
    xv_jsonl_shard sh;
    CHECK_OK(xv_jsonl_shard_make(5, 1, 2, 0, 1, &sh));
    CHECK(sh.n_files == 3 && sh.files[0] == 2 && sh.files[2] == 4 && sh.line_stride == 1, "rank 1 of 2: files 2..4");
    xv_jsonl_shard_free(&sh);
    CHECK_OK(xv_jsonl_shard_make(5, 1, 2, 1, 2, &sh)); /* its workers split [2,3,4] into [2] and [3,4] */
    CHECK(sh.n_files == 2 && sh.files[0] == 3 && sh.files[1] == 4, "rank 1 worker 1: files 3,4");
    xv_jsonl_shard_free(&sh);
    CHECK_OK(xv_jsonl_shard_make(1, 1, 3, 0, 1, &sh));
    CHECK(sh.n_files == 1 && sh.line_stride == 3 && sh.line_offset == 1, "one file, 3 ranks: every third line");
    xv_jsonl_shard_free(&sh);
    CHECK(xv_jsonl_shard_make(5, 2, 2, 0, 1, &sh) == XV_ERR_INVALID_ARG, "rank out of range");

    /* Every (n_files, world, workers): disjoint shards whose union is all lines. */
    int ids[256], seen[SH_FILES * 100];
    for (int nf = 1; nf <= SH_FILES; nf++)
        for (int world = 1; world <= 4; world++)
            for (int workers = 1; workers <= 3; workers++) {
                memset(seen, 0, sizeof seen);
                int total = 0, expect = 0;
                for (int i = 0; i < nf; i++) expect += 3 + i;
                for (int rank = 0; rank < world; rank++) {
                    int rank_lines = 0;
                    for (int wk = 0; wk < workers; wk++) {
                        int n = read_shard(&l, nf, rank, world, wk, workers, ids, 256);
                        CHECK(n >= 0, "shard opens");
                        for (int k = 0; k < n; k++) seen[ids[k]]++;
                        rank_lines += n;
                    }
                    /* A rank's share: its files (official split) or its lines. */
                    int share = 0;
                    if (world == 1) {
                        share = expect;
                    } else if (nf >= world) {
                        for (int i = nf * rank / world; i < nf * (rank + 1) / world; i++) share += 3 + i;
                    } else {
                        for (int i = 0; i < nf; i++)
                            for (int j = 0; j < 3 + i; j++) share += j % world == rank;
                    }
                    CHECK(rank_lines == share, "files %d world %d workers %d: rank %d reads %d lines, its share is %d", nf,
                          world, workers, rank, rank_lines, share);
                    total += rank_lines;
                }
                int dup = 0, miss = 0;
                for (int i = 0; i < nf; i++)
                    for (int j = 0; j < 3 + i; j++) dup += seen[i * 100 + j] > 1, miss += seen[i * 100 + j] == 0;
                CHECK(total == expect && dup == 0 && miss == 0,
                      "files %d world %d workers %d: %d lines read of %d, %d twice, %d never", nf, world, workers, total,
                      expect, dup, miss);
            }
    xv_file_list_free(&l);
}

static void test_malformed(void) {
    /* Line 1 good, 2 not JSON, 3 blank, 4 an array, 5 too long, 6 good with CRLF, 7 good without '\n'. */
    char long_line[300];
    memset(long_line, ' ', sizeof long_line);
    memcpy(long_line, "{\"id\": 5, \"pad\": \"", 18);
    memcpy(long_line + sizeof long_line - 4, "\"}\n", 4);
    char text[1024];
    snprintf(text, sizeof text, "{\"id\": 1}\n{\"id\": 2,\n   \n[1, 2]\n%s{\"id\": 6}\r\n{\"id\": 7}", long_line);
    write_file("bad.jsonl", text);
    xv_file_list l = {(char *[]){path_of("bad.jsonl")}, 1};
    xv_jsonl_shard sh;
    xv_jsonl_shard_make(1, 0, 1, 0, 1, &sh);
    int budget = -1;
    xv_jsonl_opts o = {.label = "test", .max_line_bytes = 200, .warn_budget = &budget};
    xv_jsonl_reader *r;
    CHECK_OK(xv_jsonl_open(&l, &sh, &o, &r));
    int got[8], n = 0;
    int64_t lines[8];
    cJSON *obj;
    xv_jsonl_where w;
    fprintf(stderr, "(expected warnings follow: lines 2, 4, 5 of bad.jsonl)\n");
    while (xv_jsonl_next(r, &obj, &w) == XV_OK && obj && n < 8) {
        lines[n] = w.line;
        got[n++] = (int)cJSON_GetObjectItem(obj, "id")->valuedouble;
        cJSON_Delete(obj);
    }
    CHECK(n == 3 && got[0] == 1 && got[1] == 6 && got[2] == 7, "good lines 1, 6, 7 read (%d)", n);
    CHECK(n == 3 && lines[0] == 1 && lines[1] == 6 && lines[2] == 7, "1-based line numbers");
    xv_jsonl_counts c = xv_jsonl_get_counts(r);
    CHECK(c.lines == 6 && c.records == 3 && c.malformed == 3, "counts: %lld lines, %lld records, %lld malformed",
          (long long)c.lines, (long long)c.records, (long long)c.malformed);
    CHECK(xv_jsonl_tell(r).done == 1, "stream ended");
    xv_jsonl_close(r);

    /* Only bad lines with repeat: an error, not an endless loop. */
    write_file("allbad.jsonl", "nope\n[]\n");
    xv_file_list l2 = {(char *[]){path_of("allbad.jsonl")}, 1};
    int quiet = 0;
    o = (xv_jsonl_opts){.label = "test", .repeat = true, .warn_budget = &quiet};
    CHECK_OK(xv_jsonl_open(&l2, &sh, &o, &r));
    CHECK(xv_jsonl_next(r, &obj, NULL) == XV_ERR_MISSING && !obj && strstr(xv_error_message(), "allbad.jsonl") &&
              strstr(xv_error_message(), "found no JSON object"),
          "a pass without records is an error naming the file: %s", xv_error_message());
    xv_jsonl_close(r);
    xv_jsonl_shard_free(&sh);
}

/* Read k records, save the position, and check that a fresh reader seeked
 * there returns the same continuation, across shuffled epochs. */
static void test_resume(void) {
    xv_file_list l;
    make_shard_files(&l);
    xv_jsonl_shard sh;
    xv_jsonl_shard_make(SH_FILES, 0, 1, 0, 1, &sh);
    xv_jsonl_opts o = {.label = "test", .repeat = true, .shuffle_files = true, .shuffle_key = 77};
    enum { FIRST = 13, REST = 60 };
    xv_jsonl_reader *a, *b;
    CHECK_OK(xv_jsonl_open(&l, &sh, &o, &a));
    CHECK_OK(xv_jsonl_open(&l, &sh, &o, &b));
    int ref[FIRST + REST];
    cJSON *obj;
    xv_jsonl_pos saved = {0};
    for (int i = 0; i < FIRST + REST; i++) {
        if (i == FIRST) saved = xv_jsonl_tell(a);
        xv_jsonl_next(a, &obj, NULL);
        ref[i] = obj ? (int)cJSON_GetObjectItem(obj, "id")->valuedouble : -1;
        cJSON_Delete(obj);
    }
    CHECK(xv_jsonl_tell(a).epoch >= 2, "the run crossed epochs (%lld)", (long long)xv_jsonl_tell(a).epoch);
    /* Shuffled epochs differ in file order but hold the same lines. */
    int first_epoch_order_differs = 0;
    for (int i = 0; i < g_total_lines; i++) first_epoch_order_differs |= ref[i] != ref[g_total_lines + i];
    CHECK(first_epoch_order_differs, "epochs 0 and 1 visit files in different orders");
    CHECK_OK(xv_jsonl_seek(b, &saved));
    int same = 1;
    for (int i = FIRST; i < FIRST + REST; i++) {
        xv_jsonl_next(b, &obj, NULL);
        same &= obj && (int)cJSON_GetObjectItem(obj, "id")->valuedouble == ref[i];
        cJSON_Delete(obj);
    }
    CHECK(same, "the continuation after seek equals the original stream");
    xv_jsonl_pos bad = saved;
    bad.offset += 1;
    CHECK(xv_jsonl_seek(b, &bad) == XV_ERR_FORMAT, "an offset inside a line is refused: %s", xv_error_message());
    bad = saved;
    bad.file = 99;
    CHECK(xv_jsonl_seek(b, &bad) == XV_ERR_INVALID_ARG, "a file index outside the shard is refused");
    xv_jsonl_close(a);
    xv_jsonl_close(b);
    xv_jsonl_shard_free(&sh);
    xv_file_list_free(&l);
}

/* One object per line and nothing after it; "\u0000" is carried as U+0001. */
static void test_record_strictness(void) {
    static const struct {
        const char *line;
        size_t len;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {"{\"a\": 1}", 8, NULL},
        {"  {\"a\": 1}  \t", 13, NULL},
        {"{\"a\": 1} {\"b\": 2}", 17, "bytes after the JSON object"},
        {"{\"a\": 1}junk", 12, "bytes after the JSON object"},
        {"{\"a\": 1}\0", 9, "raw NUL"},
        {"{\"a\": \"x\0y\"}", 12, "raw NUL"},
        {"[1, 2]", 6, "not a JSON object"},
        {"{\"a\": ", 6, "malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        memcpy(buf, cases[i].line, cases[i].len);
        cJSON *o;
        int nul;
        const char *why = xv_json_parse_record(buf, cases[i].len, &o, &nul);
        CHECK(cases[i].why ? why && strstr(why, cases[i].why) && !o : !why && o, "case %zu: %s", i, why ? why : "ok");
        cJSON_Delete(o);
    }
    char line[] = "{\"image\": \"a\\u0000.jpg\", \"t\": \"x\\\\u0000\"}";
    cJSON *o;
    int nul;
    CHECK(!xv_json_parse_record(line, strlen(line), &o, &nul) && o && nul == 1, "one NUL escape (%d)", nul);
    const cJSON *im = cJSON_GetObjectItem(o, "image"), *t = cJSON_GetObjectItem(o, "t");
    CHECK(im && !strcmp(im->valuestring, "a\x01.jpg") && xv_json_has_nul(im->valuestring, nul),
          "the path keeps its length and is known to hold a NUL");
    CHECK(t && !strcmp(t->valuestring, "x\\u0000") && !xv_json_has_nul(t->valuestring, nul), "an escaped backslash");
    cJSON_Delete(o);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_jsonl_test", g_dir, sizeof g_dir)) return 1;
    test_base64();
    test_file_list();
    test_sharding();
    test_malformed();
    test_record_strictness();
    test_resume();
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_jsonl");
}
