"""The one exception the bindings raise."""


class Error(Exception):
    """A failed xvlm call. str(error) is the library's message (naming the
    file, key or argument and the problem); error.status is the name of the C
    status, e.g. "XVLM_ERR_IO" or "XVLM_ERR_INVALID_ARG"."""

    def __init__(self, message, status="XVLM_ERR_INVALID_ARG"):
        super().__init__(message)
        self.status = status
