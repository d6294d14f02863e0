#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define XV_ERRMSG_MAX 2048

static _Thread_local char g_msg[XV_ERRMSG_MAX];

xv_status xv_error(xv_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return code;
}

xv_status xv_error_wrap(xv_status code, const char *fmt, ...) {
    char prefix[XV_ERRMSG_MAX];
    char old[XV_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    /* Truncation is acceptable for a message. */
    size_t np = strnlen(prefix, sizeof g_msg - 3);
    memcpy(g_msg, prefix, np);
    memcpy(g_msg + np, ": ", 2);
    size_t room = sizeof g_msg - np - 3;
    size_t no = strnlen(old, room);
    memcpy(g_msg + np + 2, old, no);
    g_msg[np + 2 + no] = '\0';
    return code;
}

void xv_error_clear(void) { g_msg[0] = '\0'; }

const char *xv_error_message(void) { return g_msg; }

const char *xv_status_name(xv_status s) {
    switch (s) {
    case XV_OK: return "ok";
    case XV_ERR_INVALID_ARG: return "invalid argument";
    case XV_ERR_IO: return "I/O error";
    case XV_ERR_FORMAT: return "malformed input";
    case XV_ERR_SHAPE: return "shape mismatch";
    case XV_ERR_NOMEM: return "out of memory";
    case XV_ERR_MISSING: return "missing";
    case XV_ERR_UNSUPPORTED: return "unsupported";
    case XV_ERR_NUMERIC: return "numeric error";
    case XV_ERR_INTERNAL: return "internal error";
    case XV_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
