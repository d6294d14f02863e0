/* The one option parser of the `xvlm` program. Each command declares its
 * options as a table (xv_opt entries ending with {0}); xv_cli_parse reads
 * argv against it and --help is printed from the same table, with the
 * defaults read from the destinations (so it shows the real ones).
 *
 * Conventions every command gets from here:
 *   --opt value and --opt=value; -x value and -xvalue for short forms;
 *   -h / --help prints the help on stdout (exit 0);
 *   a usage error prints one line "xvlm CMD: what is wrong" and the hint
 *   "Try 'xvlm CMD --help'." on stderr (exit 2): an unknown option (named),
 *   a missing or out-of-range value, a single-valued option given twice, a
 *   missing required option, an unexpected argument;
 *   "--" ends the options (what follows is positional). */
#ifndef XV_CLI_OPTIONS_H
#define XV_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    XV_OPT_FLAG,     /* no value; dest bool*, set to true */
    XV_OPT_INT,      /* dest int*, in [lo, hi] */
    XV_OPT_I64,      /* dest int64_t*, in [lo, hi] */
    XV_OPT_U64,      /* dest uint64_t* (seeds: every non-negative 64-bit integer) */
    XV_OPT_FLOAT,    /* dest float*, in [lo, hi] */
    XV_OPT_STRING,   /* dest const char** (points into argv) */
    XV_OPT_OPTIONAL, /* dest const char**: the value if one follows that is not an option, else "" */
    XV_OPT_STRINGS,  /* repeatable; dest xv_opt_list* (append) */
    XV_OPT_CHOICE,   /* dest const char**, one of choices (NULL-terminated) */
} xv_opt_kind;

/* The values of a repeatable option, or the positional arguments. Owned by
 * the caller after parsing: xv_opt_list_free. */
typedef struct {
    const char **items; /* point into argv */
    int n;
} xv_opt_list;

void xv_opt_list_free(xv_opt_list *l);

typedef struct {
    const char *name;  /* "--model" */
    char short_name;   /* 'm' for -m, or 0 */
    xv_opt_kind kind;
    void *dest;
    const char *value; /* the value's name in the help ("DIR"); NULL for flags */
    const char *help;  /* may span lines ("\n" then the continuation) */
    double lo, hi;     /* range of INT / I64 / FLOAT */
    const char *const *choices;
    const char *unset; /* help: what a 0 / NULL default means ("all cores"); NULL hides it */
    bool required;
} xv_opt;

typedef struct {
    const char *cmd;       /* "index", "evaluate": errors read "xvlm <cmd>: ..." */
    const char *usage;     /* the synopsis lines, printed after "usage: " */
    const char *about;     /* what the command does, before the options (may be NULL) */
    const xv_opt *opts;    /* ends with an entry whose name is NULL */
    const char *footer;    /* after the options (may be NULL) */
    xv_opt_list *positional; /* NULL: positional arguments are an error */
    int max_positional;    /* with positional: at most this many (0 = any number) */
} xv_cli_spec;

/* Parse argv[1..argc-1] (argv[0] is the command name). Returns true when the
 * command should go on; false when it should exit with *exit_code (0 after
 * --help, 2 after a usage error, already printed). On false nothing needs
 * freeing. */
bool xv_cli_parse(const xv_cli_spec *s, int argc, char **argv, int *exit_code);

/* The help page, from the table. */
void xv_cli_help(FILE *f, const xv_cli_spec *s);

/* Print "xvlm CMD: <message>" and the --help hint on stderr; returns 2 (the
 * usage exit status), for checks made after parsing. */
int xv_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The options that mean the same in every command, defined once. */
#define XV_OPT_THREADS(target)                                                                              \
    {.name = "--threads", .short_name = 't', .kind = XV_OPT_INT, .dest = (target), .value = "N",             \
     .help = "threads; a run is deterministic for a given N", .lo = 0, .hi = 4096, .unset = "all cores"}
#define XV_OPT_SEED(target, what) \
    {.name = "--seed", .kind = XV_OPT_U64, .dest = (target), .value = "S", .help = "seed of " what}
#define XV_OPT_JSON(target) {.name = "--json", .kind = XV_OPT_FLAG, .dest = (target), .help = "one JSON object on stdout"}
#define XV_OPT_OUT(target, value_name, what, is_required)                                                    \
    {.name = "--out", .short_name = 'o', .kind = XV_OPT_STRING, .dest = (target), .value = (value_name),     \
     .help = (what), .required = (is_required)}
/* The dataset path policy (core/fs.h's xv_fs_root *policy): --image-root DIR
 * (relative image names are joined to DIR and must resolve inside it) and
 * --allow-outside-root (they may resolve anywhere). */
#define XV_OPT_IMAGE_ROOT(policy, what)                                                                      \
    {.name = "--image-root", .kind = XV_OPT_STRING, .dest = &(policy)->root, .value = "DIR", .help = (what)}, \
    {.name = "--allow-outside-root", .kind = XV_OPT_FLAG, .dest = &(policy)->allow_outside_root,             \
     .help = "accept image paths that resolve outside --image-root\n"                                        \
             "(absolute, \"..\", symbolic links out of it)"}
#define XV_OPT_VOCAB(target, what, is_required) \
    {.name = "--vocab", .kind = XV_OPT_STRING, .dest = (target), .value = "FILE", .help = (what), .required = (is_required)}
/* Conversion of an official checkpoint: what cannot always be inferred. */
#define XV_OPT_IMAGE_RES(target)                                                                          \
    {.name = "--image-res", .kind = XV_OPT_INT, .dest = (target), .value = "R", .lo = 32, .hi = 8192,     \
     .help = "checkpoint: input resolution in pixels", .unset = "the checkpoint's own, or inferred"}
#define XV_OPT_TEXT_HEADS(target)                                                                         \
    {.name = "--text-heads", .kind = XV_OPT_INT, .dest = (target), .value = "N", .lo = 1, .hi = 1024,     \
     .help = "checkpoint: BERT attention heads", .unset = "hidden size / 64"}
#define XV_OPT_END {.name = NULL}

#endif
