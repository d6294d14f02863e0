"""Checking what callers pass (image paths or arrays, texts, feature matrices)
before it reaches C, and the owned C sets the calls make from it."""
import ctypes
import os

import numpy as np

from ._error import Error
from ._owned import Owned
from ._library import Rgb, check, lib, string_array


def is_path(x):
    return isinstance(x, (str, bytes, os.PathLike))


def image_list(images):
    """A list of images from one image (a path or an HxWx3 array), a list of
    them, or an NxHxWx3 array."""
    if is_path(images):
        return [images]
    if isinstance(images, np.ndarray):
        return [images] if images.ndim == 3 else list(images) if images.ndim == 4 else [images]
    try:
        return list(images)
    except TypeError:
        raise Error("images: expected a path, an HxWx3 uint8 array or a list of them, "
                    f"got {type(images).__name__}") from None


def text_list(texts):
    """A list of texts from one str or a list of them."""
    if isinstance(texts, str):
        return [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise Error(f"texts: expected a str or a list of str, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise Error(f"text {i}: expected a str, got {type(t).__name__}")
    return texts


def rgb_array(a, i):
    """Image i as a C-ordered HxWx3 uint8 array, or a clear error."""
    if not isinstance(a, np.ndarray):
        raise Error(f"image {i}: expected a path or an HxWx3 uint8 array, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise Error(f"image {i}: expected dtype uint8 (RGB 0..255), got {a.dtype}")
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise Error(f"image {i}: expected shape (height, width, 3), got {a.shape}")
    return np.ascontiguousarray(a)


def feature_matrix(x, width, what):
    """x as a float32 [N, width] array (one row also accepted)."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != width:
        raise Error(f"{what}: expected shape (N, {width}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise Error(f"{what}: expected float features, got dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


class CSet(Owned):
    """An encoded image or text set."""

    def __init__(self, handle, free):
        self.handle, self._free = handle, free

    def close(self):
        if self.handle:
            self._free(self.handle)
            self.handle = None


def encode_image_group(ctx, images, first, params):
    """One C set from images that are all paths or all arrays; `first`
    numbers them in messages as the caller's list does."""
    L = lib()
    out = ctypes.c_void_p()
    n = len(images)
    if is_path(images[0]):
        paths, _keep = string_array(images, "image path", path=True)
        check(L.xvlm_encode_image_files(ctx, paths, n, ctypes.byref(params), ctypes.byref(out)))
    else:
        arrays = [rgb_array(a, first + i) for i, a in enumerate(images)]
        rgb = (Rgb * n)(*[Rgb(a.ctypes.data, a.shape[1], a.shape[0], a.strides[0]) for a in arrays])
        check(L.xvlm_encode_images_rgb(ctx, rgb, n, ctypes.byref(params), ctypes.byref(out)))
    return CSet(out, L.xvlm_images_free)


def encode_texts(ctx, texts, params):
    L = lib()
    out = ctypes.c_void_p()
    strings, _keep = string_array(texts, "text")
    check(L.xvlm_encode_texts(ctx, strings, len(texts), ctypes.byref(params), ctypes.byref(out)))
    return CSet(out, L.xvlm_texts_free)


def rows(ptr, n, width):
    """A float32 copy of the C matrix [n, width] at ptr."""
    if n == 0:
        return np.zeros((0, width), np.float32)
    if not ptr:
        raise Error("the model has no ITC projections (vision_proj, text_proj): it gives no features",
                    "XVLM_ERR_UNSUPPORTED")
    return np.ctypeslib.as_array(ptr, shape=(n, width)).copy()
