/* SIGINT / SIGTERM during a training run: the handler only records the
 * signal; the run checks xv_stop_requested() after each step, writes a
 * checkpoint and returns, so an interrupted run resumes exactly. */
#ifndef XV_TRAIN_STOP_SIGNAL_H
#define XV_TRAIN_STOP_SIGNAL_H

#include <signal.h>

typedef struct {
    struct sigaction old_int, old_term;
} xv_stop_guard;

/* Catch SIGINT and SIGTERM until xv_stop_guard_end (the previous handlers
 * are kept in g and put back there). */
void xv_stop_guard_begin(xv_stop_guard *g);
void xv_stop_guard_end(const xv_stop_guard *g);
/* The signal caught since xv_stop_guard_begin, 0 when none. */
int xv_stop_requested(void);
/* The same agreed by every rank of an mpirun job (a collective, called by all
 * after the same step): the signal any rank caught, 0 when none did. */
int xv_stop_requested_anywhere(void);
/* "SIGINT" or "SIGTERM" (what the messages of a stopped command say). */
const char *xv_stop_signal_name(int sig);
/* The exit status of a command stopped by `sig`: 128 + sig (130 for SIGINT,
 * 143 for SIGTERM), as a shell reports a command the signal killed, so a
 * script tells an interrupted run from a failed one (1). */
int xv_stop_exit_status(int sig);

#endif
