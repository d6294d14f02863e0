/* Sub-commands of the `xvlm` program. Each returns the process exit code
 * (0 ok, 1 runtime error, 2 usage error) and reads its options with the one
 * parser (options.h), which handles --help. */
#ifndef XV_CLI_COMMANDS_H
#define XV_CLI_COMMANDS_H

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} xv_command;

/* The table lives in main.c; add a line there for each new command. */
extern const xv_command xv_commands[];

#endif
