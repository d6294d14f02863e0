/* Error reporting: every fallible library call returns an xv_status and leaves a
 * human-readable message (naming the file, key or line) in a thread-local buffer.
 * The library never exits or aborts on bad input. */
#ifndef XV_CORE_ERROR_H
#define XV_CORE_ERROR_H

#include "xvlm.h" /* xv_status codes are part of the public API */

/* Set the thread's last error and return `code`, so callers can write
 * `return xv_error(XV_ERR_FORMAT, "%s: header too large", path);`. */
xv_status xv_error(xv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with context ("loading model: ..."), keep the code. */
xv_status xv_error_wrap(xv_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void xv_error_clear(void);

/* Propagate a failing status. */
#define XV_TRY(expr)                                                                   \
    do {                                                                               \
        xv_status xv_try_s_ = (expr);                                                  \
        if (xv_try_s_ != XV_OK) return xv_try_s_;                                      \
    } while (0)

#endif
