/* The one option parser of the `xvlm` program (cli/options.c): --opt=value
 * and --opt value, short forms, repeatable options, ranges, a repeated
 * single-valued option, unknown options, positional arguments, required
 * options, the one-line usage error with its --help hint, and the help page
 * printed from the table with the destinations' defaults. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "testutil.h"

typedef struct {
    const char *model, *out, *mode;
    int threads, k;
    int64_t steps;
    uint64_t seed;
    float scale;
    bool json;
    xv_opt_list texts, pos;
} args;

static const char *const modes[] = {"fast", "exact", NULL};
static char g_err[4096], g_out[8192];

/* Parse the space-separated `line` against a fixed table; stderr and stdout
 * are captured into g_err / g_out. Returns the exit code, or -1 to go on. */
static int parse(const char *line, args *a) {
    *a = (args){.k = 10, .mode = "fast", .scale = 0.5f};
    const xv_opt opts[] = {
        {.name = "--model", .short_name = 'm', .kind = XV_OPT_STRING, .dest = &a->model, .value = "M",
         .help = "the model", .required = true},
        XV_OPT_THREADS(&a->threads),
        XV_OPT_OUT(&a->out, "FILE", "where to write", false),
        {.name = "--k", .kind = XV_OPT_INT, .dest = &a->k, .value = "N", .lo = 1, .hi = 100, .help = "results"},
        {.name = "--steps", .kind = XV_OPT_I64, .dest = &a->steps, .value = "N", .lo = 1, .hi = 1e12,
         .help = "steps", .unset = "the schedule's"},
        XV_OPT_SEED(&a->seed, "everything"),
        {.name = "--scale", .kind = XV_OPT_FLOAT, .dest = &a->scale, .value = "X", .lo = 0, .hi = 1, .help = "scale"},
        {.name = "--mode", .kind = XV_OPT_CHOICE, .dest = &a->mode, .value = "MODE", .choices = modes,
         .help = "how"},
        {.name = "--text", .kind = XV_OPT_STRINGS, .dest = &a->texts, .value = "T", .help = "texts"},
        XV_OPT_JSON(&a->json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {.cmd = "demo", .usage = "xvlm demo --model M", .opts = opts, .positional = &a->pos,
                              .max_positional = 2};
    char buf[1024], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "demo %s", line);
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    fflush(stdout), fflush(stderr);
    FILE *e = tmpfile(), *o = tmpfile();
    int save_err = dup(2), save_out = dup(1);
    dup2(fileno(e), 2), dup2(fileno(o), 1);
    int rc;
    bool go = xv_cli_parse(&spec, argc, argv, &rc);
    fflush(stdout), fflush(stderr);
    dup2(save_err, 2), dup2(save_out, 1);
    close(save_err), close(save_out);
    rewind(e), rewind(o);
    g_err[fread(g_err, 1, sizeof g_err - 1, e)] = '\0';
    g_out[fread(g_out, 1, sizeof g_out - 1, o)] = '\0';
    fclose(e), fclose(o);
    /* Values point into buf: copy what the checks read. */
    static char model[64], out[64], texts[4][64], pos[2][64];
    static const char *text_ptrs[4];
    if (a->model) a->model = strcpy(model, a->model);
    if (a->out) a->out = strcpy(out, a->out);
    for (int i = 0; i < a->texts.n && i < 4; i++) text_ptrs[i] = strcpy(texts[i], a->texts.items[i]);
    for (int i = 0; i < a->pos.n && i < 2; i++) a->pos.items[i] = strcpy(pos[i], a->pos.items[i]);
    if (a->texts.n) {
        free(a->texts.items);
        a->texts.items = text_ptrs;
    }
    return go ? -1 : rc;
}

/* A usage error: exit 2, one line naming the problem, then the hint. */
static void check_usage_error(const char *line, const char *what) {
    args a;
    int rc = parse(line, &a);
    char want[512];
    snprintf(want, sizeof want, "xvlm demo: %s\nTry 'xvlm demo --help'.\n", what);
    CHECK(rc == 2 && !strcmp(g_err, want), "'%s': rc %d, stderr '%s', want '%s'", line, rc, g_err, want);
    CHECK(g_out[0] == '\0', "'%s': nothing on stdout", line);
}

int main(void) {
    args a;
    /* --opt=value, --opt value, short forms (separate and attached), defaults kept */
    CHECK(parse("--model=dir -t 3 -ofile.bin --k 7 --steps=12 --seed 18446744073709551615 --scale 0.25 "
                "--mode exact --json",
                &a) == -1,
          "a full line parses: %s", g_err);
    CHECK(a.model && !strcmp(a.model, "dir") && a.threads == 3 && a.out && !strcmp(a.out, "file.bin") && a.k == 7,
          "=value, short forms, attached short value");
    CHECK(a.steps == 12 && a.seed == UINT64_MAX && a.scale == 0.25f && !strcmp(a.mode, "exact") && a.json,
          "int64, uint64 (full range), float, choice, flag");
    CHECK(parse("-m dir", &a) == -1 && a.k == 10 && a.threads == 0 && !strcmp(a.mode, "fast") && !a.json,
          "defaults stay when not given");
    /* repeatable option and positional arguments, "--" */
    CHECK(parse("-m d --text one --text=two p1 -- -p2", &a) == -1 && a.texts.n == 2 && !strcmp(a.texts.items[0], "one") &&
              !strcmp(a.texts.items[1], "two") && a.pos.n == 2 && !strcmp(a.pos.items[1], "-p2"),
          "repeatable values in order; positionals; after -- an argument is positional");
    xv_opt_list_free(&a.pos);

    check_usage_error("-m d --bogus 1", "unknown option '--bogus'");
    check_usage_error("-m d --bogus=1", "unknown option '--bogus'");
    check_usage_error("-m d -x", "unknown option '-x'");
    check_usage_error("-m d -m e", "--model given more than once");
    check_usage_error("-m d --json --json", "--json given more than once");
    check_usage_error("-m d --k 0", "--k expects an integer in 1..100, got '0'");
    check_usage_error("-m d --k 7x", "--k expects an integer in 1..100, got '7x'");
    check_usage_error("-m d -t 5000", "--threads expects an integer in 0..4096, got '5000'");
    check_usage_error("-m d --seed -1", "--seed expects a non-negative integer, got '-1'");
    check_usage_error("-m d --seed 18446744073709551616", "--seed expects a non-negative integer, got '18446744073709551616'");
    check_usage_error("-m d --scale 2", "--scale expects a number in 0..1, got '2'");
    check_usage_error("-m d --mode slow", "--mode expects one of fast, exact; got 'slow'");
    check_usage_error("-m d --json=yes", "--json takes no value");
    check_usage_error("-m d --k", "--k needs a value (N)");
    check_usage_error("--k 3", "--model M is required");
    check_usage_error("-m d a b c", "unexpected argument 'c'");

    /* --help: on stdout, exit 0, every option with its real default */
    CHECK(parse("--k 0 --help", &a) == 0 && g_err[0] == '\0', "--help wins, exit 0, nothing on stderr");
    CHECK(strstr(g_out, "usage: xvlm demo --model M") && strstr(g_out, "-m, --model M") &&
              strstr(g_out, "the model (required)") && strstr(g_out, "-t, --threads N") &&
              strstr(g_out, "(default all cores)") && strstr(g_out, "-o, --out FILE") &&
              strstr(g_out, "results (default 10)") && strstr(g_out, "(default the schedule's)") &&
              strstr(g_out, "scale (default 0.5)") && strstr(g_out, "how (one of fast exact) (default fast)") &&
              strstr(g_out, "-h, --help"),
          "help from the table with defaults:\n%s", g_out);
    CHECK(parse("-h", &a) == 0 && strstr(g_out, "--json"), "-h is --help");
    return xv_test_finish("test_cli_options");
}
