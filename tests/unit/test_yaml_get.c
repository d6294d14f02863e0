/* The typed YAML getters (io/yaml_tree.h): absent keys keep the caller's
 * default, present ones must have the type and range, and every refusal names
 * the file, the line and the dotted key. */
#include <stdlib.h>
#include <string.h>

#include "io/yaml_tree.h"
#include "testutil.h"

static const char *text = "n: 7\n"                      /* 1 */
                          "x: 0.5\n"                    /* 2 */
                          "flag: false\n"               /* 3 */
                          "s: 'seven'\n"                /* 4 */
                          "one: a.jsonl\n"              /* 5 */
                          "list: [a, b]\n"              /* 6 */
                          "mixed: [a, 3]\n"             /* 7 */
                          "nothing: ~\n"                /* 8 */
                          "big: 5000000000\n"           /* 9 */
                          "sec:\n"                      /* 10 */
                          "  inner: 3\n"                /* 11 */
                          "  word: yes\n"               /* 12 */
                          "  deeper: {k: [1, 2]}\n";    /* 13 */

/* `st` is a refusal whose message holds every one of `parts`. */
static void refused(xv_status st, const char *what, const char *const *parts) {
    CHECK(st != XV_OK, "%s: refused", what);
    for (; *parts; parts++)
        CHECK(strstr(xv_error_message(), *parts), "%s: message has \"%s\": %s", what, *parts, xv_error_message());
}

#define REFUSED(expr, ...) refused((expr), #expr, (const char *const[]){__VA_ARGS__, NULL})

int main(void) {
    xv_yaml_node *root = NULL;
    CHECK_OK(xv_yaml_parse(text, strlen(text), "t.yaml", &root));
    if (!root) return xv_test_finish("test_yaml_get");
    const xv_yaml_node *sec = NULL;
    CHECK_OK(xv_yaml_get_map(root, "sec", &sec));
    CHECK(sec && sec->line == 11 && !strcmp(sec->name, "sec") && !strcmp(sec->file, "t.yaml"), "section node");

    /* present keys of the right type */
    int i = -1;
    int64_t big = 0;
    double d = -1;
    bool b = true;
    const char *s = NULL;
    CHECK_OK(xv_yaml_get_int(root, "n", 0, 10, &i));
    CHECK_OK(xv_yaml_get_int64(root, "big", 0, INT64_MAX, &big));
    CHECK_OK(xv_yaml_get_double(root, "x", 0, 1, &d));
    CHECK_OK(xv_yaml_get_bool(root, "flag", &b));
    CHECK_OK(xv_yaml_get_string(root, "s", &s));
    CHECK(i == 7 && big == 5000000000LL && d == 0.5 && !b && s && !strcmp(s, "seven"), "values read");
    CHECK_OK(xv_yaml_get_double(root, "n", 0, 10, &d));
    CHECK(d == 7, "an integer is a number too");

    /* absent keys and absent sections keep the defaults */
    i = 42, d = 0.25, b = true, s = "default";
    CHECK_OK(xv_yaml_get_int(root, "absent", 0, 10, &i));
    CHECK_OK(xv_yaml_get_double(NULL, "x", 0, 1, &d));
    CHECK_OK(xv_yaml_get_bool(sec, "flag", &b));
    CHECK_OK(xv_yaml_get_string(root, "absent", &s));
    CHECK(i == 42 && d == 0.25 && b && !strcmp(s, "default"), "defaults kept");
    const xv_yaml_node *none = sec;
    CHECK_OK(xv_yaml_get_map(root, "absent", &none));
    CHECK(none == NULL, "an absent section is NULL");

    /* lists of strings: one string is a list of one */
    const char **v = NULL;
    int n = 0;
    CHECK_OK(xv_yaml_get_strings(root, "one", &v, &n));
    CHECK(v && n == 1 && !strcmp(v[0], "a.jsonl") && !v[1], "one string");
    free(v);
    v = NULL;
    CHECK_OK(xv_yaml_get_strings(root, "list", &v, &n));
    CHECK(v && n == 2 && !strcmp(v[1], "b") && !v[2], "a list");
    free(v);
    v = NULL;
    REFUSED(xv_yaml_get_strings(root, "mixed", &v, &n), "t.yaml:7:", "\"mixed[1]\" must be a string", "\"3\"");
    CHECK(v == NULL, "a refused list is not returned");

    /* refusals name file:line, the dotted key, what was expected and what was there */
    REFUSED(xv_yaml_get_int(root, "x", 0, 10, &i), "t.yaml:2:", "\"x\" must be an integer", "a number \"0.5\"");
    REFUSED(xv_yaml_get_int(root, "n", 0, 5, &i), "t.yaml:1:", "\"n\" = 7 outside [0, 5]");
    REFUSED(xv_yaml_get_int(root, "big", 0, 1000000000, &i), "t.yaml:9:", "\"big\" = 5000000000 outside");
    REFUSED(xv_yaml_get_double(root, "x", 0.75, 1, &d), "t.yaml:2:", "\"x\" = 0.5 outside [0.75, 1]");
    REFUSED(xv_yaml_get_double(root, "s", 0, 1, &d), "t.yaml:4:", "\"s\" must be a number", "a string \"seven\"");
    REFUSED(xv_yaml_get_bool(sec, "word", &b), "t.yaml:12:", "\"sec.word\" must be true or false", "\"yes\"");
    REFUSED(xv_yaml_get_int(root, "nothing", 0, 1, &i), "t.yaml:8:", "\"nothing\" must be an integer", "null");
    REFUSED(xv_yaml_get_string(sec, "inner", &s), "t.yaml:11:", "\"sec.inner\" must be a string");
    REFUSED(xv_yaml_get_map(root, "list", &none), "t.yaml:6:", "\"list\" must be a mapping");
    REFUSED(xv_yaml_require(sec, "gone", "an integer"), "t.yaml", "\"sec.gone\" is missing (an integer)");
    CHECK(i == 42 && d == 0.25 && b, "a refused key leaves the value alone");
    const xv_yaml_node *deeper = xv_yaml_get(sec, "deeper");
    const xv_yaml_node *k = xv_yaml_get(deeper, "k");
    CHECK(k && k->n == 2 && !strcmp(k->items[1]->name, "sec.deeper.k[1]") && k->items[1]->line == 13,
          "nested names: %s", k && k->n == 2 ? k->items[1]->name : "?");

    /* unknown keys become notes with their dotted names */
    char *notes = NULL;
    size_t len = 0;
    FILE *nf = open_memstream(&notes, &len);
    static const char *const known[] = {"inner", "deeper", NULL};
    xv_yaml_note_unknown(sec, known, nf);
    fclose(nf);
    CHECK(notes && !strcmp(notes, "note: t.yaml:12: unknown key \"sec.word\" ignored\n"), "notes: %s",
          notes ? notes : "");
    free(notes);
    xv_yaml_free(root);
    return xv_test_finish("test_yaml_get");
}
