/* One thread count for OpenMP and OpenBLAS together (no oversubscription). */
#ifndef XV_CORE_THREADS_H
#define XV_CORE_THREADS_H

/* n <= 0 means all available cores. */
void xv_set_threads(int n);
int xv_get_threads(void);

/* For programs, first thing in main: re-executes the program with
 * OMP_WAIT_POLICY=passive unless that variable is set already, and returns
 * only when it did not re-execute. libgomp reads the policy once, when it is
 * loaded, so only the environment a program starts with can set it. By
 * default a thread that reaches the end of a parallel region spins for the
 * next one; on a machine shared with other jobs the thread it waits for is
 * often not running, and the spinning burns its time slices: the tiny fixture
 * model's training update at 2 threads took 3.76 CPU s spinning and 0.86 CPU s
 * passive (0.85 on one thread), the demo model's 3.56 against 0.13. */
void xv_threads_wait_passive(char **argv);

#endif
