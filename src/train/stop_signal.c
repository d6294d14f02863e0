#include "train/stop_signal.h"

#include <stdint.h>

#include "dist/dist.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

void xv_stop_guard_begin(xv_stop_guard *g) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &g->old_int);
    sigaction(SIGTERM, &sa, &g->old_term);
}

void xv_stop_guard_end(const xv_stop_guard *g) {
    sigaction(SIGINT, &g->old_int, NULL);
    sigaction(SIGTERM, &g->old_term, NULL);
}

int xv_stop_requested(void) { return stop_signal; }

/* mpirun forwards a signal to every rank, but they may see it at different
 * steps: all stop at the step where any saw it. A failed agreement stops too
 * (SIGTERM); the next collective reports the cause. */
int xv_stop_requested_anywhere(void) {
    int32_t v = stop_signal;
    if (xv_dist_world() > 1 && xv_dist_allreduce_max_i32(&v, 1) != XV_OK) return SIGTERM;
    return v;
}
const char *xv_stop_signal_name(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

int xv_stop_exit_status(int sig) { return 128 + sig; }
