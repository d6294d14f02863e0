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

/* Under mpirun a command's non-zero status ends the whole job (MPI_Abort), as
 * a rank that failed alone would leave the others waiting. A command that
 * stops on every rank at the same point (an interrupted run, after its
 * checkpoint) sets this before returning, and the job ends normally. */
extern int xv_cli_ranks_stop_together;

#endif
