#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Where the help text of each option starts. */
#define HELP_COLUMN 24

void xv_opt_list_free(xv_opt_list *l) {
    if (!l) return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int xv_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xvlm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'xvlm %s --help'.\n", cmd);
    va_end(ap);
    return 2;
}

/* ---- help ---- */

/* The default held by the destination, as text; false when there is none
 * worth showing. */
static bool default_text(const xv_opt *o, char *buf, size_t n) {
    if (o->required) return snprintf(buf, n, "required"), true;
    bool zero = false;
    switch (o->kind) {
    case XV_OPT_INT: zero = *(const int *)o->dest == 0, snprintf(buf, n, "%d", *(const int *)o->dest); break;
    case XV_OPT_I64:
        zero = *(const int64_t *)o->dest == 0, snprintf(buf, n, "%lld", (long long)*(const int64_t *)o->dest);
        break;
    case XV_OPT_U64:
        zero = *(const uint64_t *)o->dest == 0,
        snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)o->dest);
        break;
    case XV_OPT_FLOAT: zero = *(const float *)o->dest == 0, snprintf(buf, n, "%g", (double)*(const float *)o->dest); break;
    case XV_OPT_STRING:
    case XV_OPT_CHOICE: {
        const char *v = *(const char *const *)o->dest;
        zero = v == NULL;
        snprintf(buf, n, "%s", v ? v : "");
        break;
    }
    default: return false; /* flags, lists, optional values: nothing to show */
    }
    if (zero && o->unset) snprintf(buf, n, "%s", o->unset);
    else if (zero && (o->kind == XV_OPT_STRING || o->kind == XV_OPT_CHOICE)) return false;
    return true;
}

static void print_option(FILE *f, const xv_opt *o) {
    char left[128];
    int w = snprintf(left, sizeof left, "  %c%c%s%s%s%s", o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
                     o->short_name ? ", " : "  ", o->name, o->value ? " " : "", o->value ? o->value : "");
    if (o->kind == XV_OPT_OPTIONAL) w = snprintf(left, sizeof left, "      %s [%s]", o->name, o->value);
    if (o->kind == XV_OPT_STRINGS) snprintf(left + w, sizeof left - (size_t)w, " ...");
    fputs(left, f);
    if ((int)strlen(left) + 1 >= HELP_COLUMN) fprintf(f, "\n%*s", HELP_COLUMN, "");
    else fprintf(f, "%*s", HELP_COLUMN - (int)strlen(left), "");
    for (const char *p = o->help ? o->help : ""; *p; p++) {
        fputc(*p, f);
        if (*p == '\n') fprintf(f, "%*s", HELP_COLUMN, "");
    }
    if (o->kind == XV_OPT_CHOICE) {
        fputs(" (one of", f);
        for (const char *const *c = o->choices; *c; c++) fprintf(f, " %s", *c);
        fputc(')', f);
    }
    char def[256];
    if (default_text(o, def, sizeof def)) fprintf(f, o->required ? " (%s)" : " (default %s)", def);
    fputc('\n', f);
}

void xv_cli_help(FILE *f, const xv_cli_spec *s) {
    fprintf(f, "usage: %s\n", s->usage);
    if (s->about) fprintf(f, "\n%s", s->about);
    fprintf(f, "\noptions:\n");
    for (const xv_opt *o = s->opts; o->name; o++) print_option(f, o);
    fprintf(f, "  -h, --help            this help\n");
    if (s->footer) fprintf(f, "\n%s", s->footer);
}

/* ---- parsing ---- */

static bool append(xv_opt_list *l, const char *v, int cap) {
    if (!l->items) {
        l->items = calloc((size_t)cap, sizeof *l->items);
        if (!l->items) return false;
    }
    l->items[l->n++] = v;
    return true;
}

/* Store value v in o's destination; false after printing the usage error. */
static bool store(const char *cmd, const xv_opt *o, const char *v, int argc) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case XV_OPT_INT:
    case XV_OPT_I64: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno || (double)x < o->lo || (double)x > o->hi) {
            xv_cli_usage_error(cmd, "%s expects an integer in %.0f..%.0f, got '%s'", o->name, o->lo, o->hi, v);
            return false;
        }
        if (o->kind == XV_OPT_INT) *(int *)o->dest = (int)x;
        else *(int64_t *)o->dest = x;
        return true;
    }
    case XV_OPT_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || errno) {
            xv_cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", o->name, v);
            return false;
        }
        *(uint64_t *)o->dest = x;
        return true;
    }
    case XV_OPT_FLOAT: {
        float x = strtof(v, &end);
        if (!*v || *end || errno || !isfinite(x) || x < o->lo || x > o->hi) {
            xv_cli_usage_error(cmd, "%s expects a number in %g..%g, got '%s'", o->name, o->lo, o->hi, v);
            return false;
        }
        *(float *)o->dest = x;
        return true;
    }
    case XV_OPT_CHOICE:
        for (const char *const *c = o->choices; *c; c++)
            if (!strcmp(*c, v)) {
                *(const char **)o->dest = *c;
                return true;
            }
        {
            char list[256] = "";
            for (const char *const *c = o->choices; *c; c++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", c == o->choices ? "" : ", ", *c);
            xv_cli_usage_error(cmd, "%s expects one of %s; got '%s'", o->name, list, v);
        }
        return false;
    case XV_OPT_STRINGS:
        if (!append(o->dest, v, argc)) {
            fprintf(stderr, "xvlm %s: out of memory\n", cmd);
            return false;
        }
        return true;
    default: *(const char **)o->dest = v; return true;
    }
}

static const xv_opt *find_long(const xv_opt *opts, const char *a, size_t len) {
    for (const xv_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, a, len)) return o;
    return NULL;
}

static const xv_opt *find_short(const xv_opt *opts, char c) {
    for (const xv_opt *o = opts; o->name; o++)
        if (o->short_name && o->short_name == c) return o;
    return NULL;
}

static bool wants_help(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
    return false;
}

/* One option argument argv[*i]; false after printing the usage error. */
static bool parse_option(const xv_cli_spec *s, int argc, char **argv, int *i, int *seen) {
    const char *a = argv[*i], *attached = NULL;
    const xv_opt *o;
    if (a[1] == '-') {
        const char *eq = strchr(a, '=');
        o = find_long(s->opts, a, eq ? (size_t)(eq - a) : strlen(a));
        if (eq) attached = eq + 1;
        if (!o) {
            xv_cli_usage_error(s->cmd, "unknown option '%.*s'", (int)(eq ? eq - a : (int)strlen(a)), a);
            return false;
        }
    } else {
        o = find_short(s->opts, a[1]);
        if (a[2]) attached = a[2] == '=' ? a + 3 : a + 2;
        if (!o) {
            xv_cli_usage_error(s->cmd, "unknown option '-%c'", a[1]);
            return false;
        }
    }
    if (o->kind != XV_OPT_STRINGS && seen[o - s->opts]++) {
        xv_cli_usage_error(s->cmd, "%s given more than once", o->name);
        return false;
    }
    if (o->kind == XV_OPT_FLAG) {
        if (attached) {
            xv_cli_usage_error(s->cmd, "%s takes no value", o->name);
            return false;
        }
        *(bool *)o->dest = true;
        return true;
    }
    const char *v = attached;
    if (!v && o->kind == XV_OPT_OPTIONAL) v = *i + 1 < argc && argv[*i + 1][0] != '-' ? argv[++*i] : "";
    if (!v && *i + 1 < argc) v = argv[++*i];
    if (!v) {
        xv_cli_usage_error(s->cmd, "%s needs a value (%s)", o->name, o->value);
        return false;
    }
    return store(s->cmd, o, v, argc);
}

static void free_lists(const xv_cli_spec *s) {
    for (const xv_opt *o = s->opts; o->name; o++)
        if (o->kind == XV_OPT_STRINGS) xv_opt_list_free(o->dest);
    xv_opt_list_free(s->positional);
}

static bool parse_all(const xv_cli_spec *s, int argc, char **argv, int *seen) {
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && !strcmp(a, "--")) {
            only_positional = true;
        } else if (!only_positional && a[0] == '-' && a[1]) {
            if (!parse_option(s, argc, argv, &i, seen)) return false;
        } else if (!s->positional || (s->max_positional && s->positional->n >= s->max_positional)) {
            xv_cli_usage_error(s->cmd, "unexpected argument '%s'", a);
            return false;
        } else if (!append(s->positional, a, argc)) {
            fprintf(stderr, "xvlm %s: out of memory\n", s->cmd);
            return false;
        }
    }
    for (const xv_opt *o = s->opts; o->name; o++)
        if (o->required && !seen[o - s->opts]) {
            xv_cli_usage_error(s->cmd, "%s %s is required", o->name, o->value ? o->value : "");
            return false;
        }
    return true;
}

bool xv_cli_parse(const xv_cli_spec *s, int argc, char **argv, int *exit_code) {
    if (wants_help(argc, argv)) {
        xv_cli_help(stdout, s);
        *exit_code = 0;
        return false;
    }
    int n = 0;
    while (s->opts[n].name) n++;
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    if (s->positional) *s->positional = (xv_opt_list){0};
    bool ok = seen && parse_all(s, argc, argv, seen);
    if (!seen) fprintf(stderr, "xvlm %s: out of memory\n", s->cmd);
    free(seen);
    if (!ok) free_lists(s);
    *exit_code = ok ? 0 : 2;
    return ok;
}
