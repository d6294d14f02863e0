"""libxvlm.so through ctypes: finding it, the structs and functions of
include/xvlm.h, and turning a failed status into xvlm.Error.

The structs below restate include/xvlm.h field by field; the tests compare
their sizes and offsets with what the C compiler lays out (python/tests).
"""
import ctypes
import ctypes.util
import os

from ._error import STATUS_NAMES, Error

c_float_p = ctypes.POINTER(ctypes.c_float)


class ModelParams(ctypes.Structure):
    _fields_ = [("vocab_path", ctypes.c_char_p), ("image_res", ctypes.c_int), ("text_heads", ctypes.c_int),
                ("copy_weights", ctypes.c_bool), ("precision", ctypes.c_int)]  # xvlm_precision: 0 fp32, 1 bf16


class ModelInfo(ctypes.Structure):
    _fields_ = [("image_res", ctypes.c_int), ("embed_dim", ctypes.c_int), ("image_tokens", ctypes.c_int),
                ("vision_width", ctypes.c_int), ("max_positions", ctypes.c_int), ("has_itc", ctypes.c_bool),
                ("has_itm", ctypes.c_bool), ("has_bbox", ctypes.c_bool), ("has_nlvr", ctypes.c_bool),
                ("text_layers", ctypes.c_int), ("fusion_layer", ctypes.c_int), ("map_side", ctypes.c_int),
                ("id", ctypes.c_char * 17)]


class ImageParams(ctypes.Structure):
    _fields_ = [("keep_tokens", ctypes.c_bool), ("batch", ctypes.c_int)]


class Rgb(ctypes.Structure):
    _fields_ = [("rgb", ctypes.c_void_p), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("stride", ctypes.c_size_t)]


class TextParams(ctypes.Structure):
    _fields_ = [("max_words", ctypes.c_int), ("max_tokens", ctypes.c_int)]


class Pair(ctypes.Structure):
    _fields_ = [("image", ctypes.c_int64), ("text", ctypes.c_int64)]


class CBox(ctypes.Structure):
    _fields_ = [(name, ctypes.c_float) for name in ("cx", "cy", "w", "h", "x", "y", "width", "height")]


class SearchParams(ctypes.Structure):
    _fields_ = [("k", ctypes.c_int), ("rerank", ctypes.c_int)]


class CHit(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int64), ("score", ctypes.c_float), ("itc", ctypes.c_float),
                ("itm_logit", ctypes.c_float), ("itm_prob", ctypes.c_float), ("reranked", ctypes.c_bool)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
WARN_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
STOP_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class IndexParams(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_int), ("tokens", ctypes.c_int), ("progress", PROGRESS_FN), ("warn", WARN_FN),
                ("user", ctypes.c_void_p), ("stop", STOP_FN)]


class IndexStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("total", "encoded", "reused", "skipped", "indexed")]


# Every struct of xvlm.h the bindings pass, by its C name (for the layout test).
STRUCTS = {"xvlm_model_params": ModelParams, "xvlm_model_info": ModelInfo, "xvlm_image_params": ImageParams,
           "xvlm_rgb": Rgb, "xvlm_text_params": TextParams, "xvlm_pair": Pair, "xvlm_box": CBox,
           "xvlm_search_params": SearchParams, "xvlm_hit": CHit, "xvlm_index_params": IndexParams,
           "xvlm_index_stats": IndexStats}

P = ctypes.c_void_p  # every opaque handle
P_OUT = ctypes.POINTER(ctypes.c_void_p)
STRINGS = ctypes.POINTER(ctypes.c_char_p)
_int, _i64, _status = ctypes.c_int, ctypes.c_int64, ctypes.c_int

# name: (result type, argument types), as declared in include/xvlm.h.
_SIGNATURES = {
    "xvlm_last_error": (ctypes.c_char_p, []),
    "xvlm_version": (ctypes.c_char_p, []),
    "xvlm_set_threads": (None, [_int]),
    "xvlm_get_threads": (_int, []),
    "xvlm_model_params_default": (ModelParams, []),
    "xvlm_model_load": (_status, [ctypes.c_char_p, ctypes.POINTER(ModelParams), P_OUT]),
    "xvlm_model_free": (None, [P]),
    "xvlm_model_get_info": (None, [P, ctypes.POINTER(ModelInfo)]),
    "xvlm_ctx_new": (_status, [P, P_OUT]),
    "xvlm_ctx_free": (None, [P]),
    "xvlm_image_params_default": (ImageParams, []),
    "xvlm_encode_image_files": (_status, [P, STRINGS, _int, ctypes.POINTER(ImageParams), P_OUT]),
    "xvlm_encode_images_rgb": (_status, [P, ctypes.POINTER(Rgb), _int, ctypes.POINTER(ImageParams), P_OUT]),
    "xvlm_images_free": (None, [P]),
    "xvlm_images_count": (_i64, [P]),
    "xvlm_images_features": (c_float_p, [P]),
    "xvlm_images_has_tokens": (ctypes.c_bool, [P]),
    "xvlm_images_path": (ctypes.c_char_p, [P, _i64]),
    "xvlm_images_size": (None, [P, _i64, ctypes.POINTER(_int), ctypes.POINTER(_int)]),
    "xvlm_text_params_default": (TextParams, []),
    "xvlm_encode_texts": (_status, [P, STRINGS, _int, ctypes.POINTER(TextParams), P_OUT]),
    "xvlm_texts_free": (None, [P]),
    "xvlm_texts_count": (_i64, [P]),
    "xvlm_texts_features": (c_float_p, [P]),
    "xvlm_texts_text": (ctypes.c_char_p, [P, _i64]),
    "xvlm_itm": (_status, [P, P, P, ctypes.POINTER(Pair), _int, c_float_p, c_float_p]),
    "xvlm_ground": (_status, [P, P, P, ctypes.POINTER(Pair), _int, ctypes.POINTER(CBox)]),
    "xvlm_search_params_default": (SearchParams, []),
    "xvlm_search_images": (_status, [P, P, P, _i64, ctypes.POINTER(SearchParams), ctypes.POINTER(CHit),
                                     ctypes.POINTER(_int)]),
    "xvlm_search_texts": (_status, [P, P, P, _i64, ctypes.POINTER(SearchParams), ctypes.POINTER(CHit),
                                    ctypes.POINTER(_int)]),
    "xvlm_index_open": (_status, [P, ctypes.c_char_p, P_OUT]),
    "xvlm_index_params_default": (IndexParams, []),
    "xvlm_index_build": (_status, [P, STRINGS, _i64, ctypes.c_char_p, ctypes.POINTER(IndexParams),
                                   ctypes.POINTER(IndexStats)]),
}


def _candidates():
    """Where the library may be, in the order tried, each with why."""
    env = os.environ.get("XVLM_LIBRARY")
    if env:  # an explicit choice is the only one tried
        return [(env, "$XVLM_LIBRARY")]
    here = os.path.dirname(os.path.abspath(__file__))
    found = [(os.path.join(here, name), "next to the package") for name in ("libxvlm.so.0", "libxvlm.so")]
    try:
        from . import _installed  # written by make install
        found.append((os.path.normpath(os.path.join(here, _installed.LIBRARY)), "where make install put it"))
    except ImportError:
        pass
    found.append(("libxvlm.so.0", "the system loader"))
    system = ctypes.util.find_library("xvlm")
    if system:
        found.append((system, "the system loader"))
    return found


def _load():
    tried = []
    for path, why in _candidates():
        if os.sep in path and not os.path.exists(path) and why != "$XVLM_LIBRARY":
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({why}): {e}")
    raise Error("cannot load libxvlm: " + "; ".join(tried) + ". Set XVLM_LIBRARY to the path of libxvlm.so.0, "
                "or install it (make install)", "XVLM_ERR_IO")


def _declare(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise Error(f"{lib._name}: has no {name} (a libxvlm older than these bindings?)",
                        "XVLM_ERR_MISSING") from None
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_lib = None
_path = None


def lib():
    """The loaded library (loaded on first use)."""
    global _lib, _path
    if _lib is None:
        loaded, _path = _load()
        _lib = _declare(loaded)
    return _lib


def library_path():
    """The file the library was loaded from."""
    lib()
    return _path


def check(status):
    """Raise xvlm.Error with the library's message when a call failed."""
    if status != 0:
        name = STATUS_NAMES[status] if 0 < status < len(STATUS_NAMES) else f"status {status}"
        raise Error(lib().xvlm_last_error().decode("utf-8", "replace"), name)


def encode_str(s, what, path=False):
    """A str as the bytes the C API takes: UTF-8 for texts, the file system's
    encoding for paths (str, bytes or os.PathLike)."""
    if path and isinstance(s, os.PathLike):
        s = os.fspath(s)
    if path and isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise Error(f"{what}: expected a {'path' if path else 'str'}, got {type(s).__name__}", "XVLM_ERR_INVALID_ARG")
    if "\0" in s:
        raise Error(f"{what}: contains a NUL character", "XVLM_ERR_INVALID_ARG")
    return os.fsencode(s) if path else s.encode("utf-8")


def string_array(strings, what, path=False):
    """A C array of char* for a list of str (or paths), and the bytes it points to."""
    encoded = [encode_str(s, f"{what} {i}", path) for i, s in enumerate(strings)]
    return (ctypes.c_char_p * len(encoded))(*encoded), encoded
