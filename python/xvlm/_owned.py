"""The lifetime of everything that holds C memory."""


class Owned:
    """Holds C resources that close() releases (once; later calls do
    nothing): at the latest at the end of a with block, else when
    garbage-collected."""

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
