/* Fail the Nth allocation, the SQLite way, so a test can walk every
 * allocation of an operation and check each failure is reported and cleaned
 * up. Only a test linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 *   --wrap=strndup,--wrap=aligned_alloc
 * gets the hook (tests/CMakeLists.txt: XV_ALLOC_FAIL_WRAP): every such call
 * made by the statically linked libxvlm and the test goes through a counter.
 * cJSON (a shared library) is routed through the same counter by
 * xv_alloc_fail_install. Allocations inside other shared libraries (libc's own
 * getline/realpath, libzip, libpng, libjpeg) are not counted. */
#ifndef XV_TEST_ALLOC_FAIL_H
#define XV_TEST_ALLOC_FAIL_H

#include <stdbool.h>

/* Route cJSON's allocations through the counter; call once at start. */
void xv_alloc_fail_install(void);
/* From now on, count allocations and make the nth fail (n >= 1); n = 0
 * counts without failing. Only that one allocation fails: the code may
 * retry or fall back after it. */
void xv_alloc_fail_arm(long n);
/* Stop counting. Returns how many allocations were counted since arm. */
long xv_alloc_fail_disarm(void);
/* Whether the armed failure was injected (the count reached n). */
bool xv_alloc_fail_injected(void);

#endif
