/* xvlm — X-VLM (multi-grained vision-language model) in C. Public API.
 *
 * Conventions: every fallible call returns an xv_status; on failure
 * xvlm_last_error() describes what went wrong (file, key, expected/actual).
 * The library never exits on bad input. */
#ifndef XVLM_H
#define XVLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XVLM_VERSION_MAJOR 0
#define XVLM_VERSION_MINOR 1
#define XVLM_VERSION_PATCH 0
#define XVLM_VERSION_STRING "0.1.0"

typedef enum {
    XV_OK = 0,
    XV_ERR_INVALID_ARG = 1, /* a caller passed something out of contract */
    XV_ERR_IO = 2,          /* open/read/write/mmap failed */
    XV_ERR_FORMAT = 3,      /* a file's content is malformed or hostile */
    XV_ERR_SHAPE = 4,       /* tensor shapes do not fit together */
    XV_ERR_NOMEM = 5,       /* an allocation failed or a limit was hit */
    XV_ERR_MISSING = 6,     /* a required key/tensor/file is absent */
    XV_ERR_UNSUPPORTED = 7, /* valid input that this build cannot handle */
    XV_ERR_NUMERIC = 8,     /* NaN/Inf where a finite value is required */
    XV_ERR_INTERNAL = 9
} xv_status;

/* The message of the last failing call on this thread ("" if none). */
const char *xvlm_last_error(void);
const char *xvlm_status_name(xv_status s);
const char *xvlm_version(void);

/* Threads used by xvlm (OpenMP and BLAS together, no oversubscription).
 * n <= 0 means all available cores. */
void xvlm_set_threads(int n);
int xvlm_get_threads(void);

#ifdef __cplusplus
}
#endif

#endif
