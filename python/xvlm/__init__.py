"""Python bindings of xvlm (X-VLM in C) over libxvlm.so: encode images and
texts into normalised ITC features, score image-text pairs (ITC, ITM),
locate what a text describes (grounding), build and search image indexes.
numpy arrays in and out; failures raise xvlm.Error with the library's
message. docs/python.md has the install command and a tour.

    import xvlm
    with xvlm.Model("model/") as model:
        print(model.match("dog.jpg", "a dog on a sofa"))   # (probability, logit)
"""
from ._error import Error
from ._library import library_path, lib as _lib
from .index import BuildStats, Index
from .model import Box, Hit, Info, Model


def version():
    """The version of the loaded libxvlm, e.g. "0.1.0"."""
    return _lib().xvlm_version().decode("ascii")


def set_threads(n):
    """Threads used by xvlm in this process (n <= 0: all cores)."""
    _lib().xvlm_set_threads(int(n))


def get_threads():
    return _lib().xvlm_get_threads()


__all__ = ["Model", "Index", "Error", "Box", "Hit", "Info", "BuildStats", "library_path", "version", "set_threads",
           "get_threads"]
