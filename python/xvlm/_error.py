"""The one exception the bindings raise."""

# xvlm_status of include/xvlm.h, by value.
STATUS_NAMES = ("XVLM_OK", "XVLM_ERR_INVALID_ARG", "XVLM_ERR_IO", "XVLM_ERR_FORMAT", "XVLM_ERR_SHAPE",
                "XVLM_ERR_NOMEM", "XVLM_ERR_MISSING", "XVLM_ERR_UNSUPPORTED", "XVLM_ERR_NUMERIC", "XVLM_ERR_INTERNAL",
                "XVLM_ERR_INTERRUPTED")


class Error(Exception):
    """A failed xvlm call. str(error) is the library's message (naming the
    file, key or argument and the problem); error.status is the name of the C
    status, e.g. "XVLM_ERR_IO" or "XVLM_ERR_INVALID_ARG" (problems the
    bindings find before calling C are XVLM_ERR_INVALID_ARG)."""

    def __init__(self, message, status="XVLM_ERR_INVALID_ARG"):
        super().__init__(message)
        self.status = status
