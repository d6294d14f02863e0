/* One thread count for OpenMP and OpenBLAS together (no oversubscription). */
#ifndef XV_CORE_THREADS_H
#define XV_CORE_THREADS_H

/* n <= 0 means all available cores. */
void xv_set_threads(int n);
int xv_get_threads(void);

#endif
