/* Error reporting: every fallible library call returns an xv_status and leaves a
 * human-readable message (naming the file, key or line) in a thread-local buffer.
 * The library never exits or aborts on bad input. */
#ifndef XV_CORE_ERROR_H
#define XV_CORE_ERROR_H

/* The library's status codes. include/xvlm.h restates them as xvlm_status
 * (XVLM_OK, ...) with the same values; src/api/public.c asserts they match. */
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
    XV_ERR_INTERNAL = 9,
    XV_ERR_INTERRUPTED = 10 /* stopped at a safe point on request (SIGINT / SIGTERM) */
} xv_status;

/* Set the thread's last error and return `code`, so callers can write
 * `return xv_error(XV_ERR_FORMAT, "%s: header too large", path);`. */
xv_status xv_error(xv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with context ("loading model: ..."), keep the code. */
xv_status xv_error_wrap(xv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void xv_error_clear(void);

/* The message of the thread's last failure ("" if none). */
const char *xv_error_message(void);

/* A short name of a status ("malformed input"). */
const char *xv_status_name(xv_status s);

/* Propagate a failing status. */
#define XV_TRY(expr)                                                                   \
    do {                                                                               \
        xv_status xv_try_s_ = (expr);                                                  \
        if (xv_try_s_ != XV_OK) return xv_try_s_;                                      \
    } while (0)

#endif
