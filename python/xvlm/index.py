"""xvlm.Index: image indexes on disk (what `xvlm index` writes and `xvlm
search` reads), built, opened and searched through a Model."""
import ctypes
import os
from typing import NamedTuple

from ._error import Error
from ._inputs import CSet, is_path, rows
from ._owned import Owned
from ._library import PROGRESS_FN, WARN_FN, CHit, IndexStats, check, encode_str, lib, string_array
from .model import hits_from_c, search_params

TOKENS = {"none": 0, "f16": 1, "f32": 2}  # xvlm_tokens


class BuildStats(NamedTuple):
    """What Index.build did (xvlm_index_stats)."""
    total: int    # paths given
    encoded: int  # encoded by this call
    reused: int   # found encoded by an interrupted earlier build
    skipped: int  # unreadable: left out of the index
    indexed: int  # entries in the finished index


class Index(Owned):
    """An image index opened for a model: its features are mapped from the
    file. Release it with close() or a with block."""

    _set = None  # the C image set, once opened

    def __init__(self, model, handle, path):  # use Index.open or Index.build
        self._set = CSet(handle, lib().xvlm_images_free)
        self.model, self.path = model, os.fspath(path)
        self.build_stats = None
        self.warnings = []

    @classmethod
    def open(cls, model, path):
        """Open the index at `path`, made by `xvlm index` or Index.build with
        this model (an index of another model is refused, naming both)."""
        out = ctypes.c_void_p()
        check(lib().xvlm_index_open(model._handle(), encode_str(path, "index path", path=True), ctypes.byref(out)))
        return cls(model, out, path)

    @classmethod
    def build(cls, model, image_paths, out, tokens="f16", batch=None, progress=None):
        """Encode the images at `image_paths` into the index file `out` and
        open it. Resumable as `xvlm index` is: an interrupted build called
        again with the same paths continues where it stopped. tokens: what
        re-ranking will read ("f16", "f32" or "none": features only, the
        re-ranked images are then re-encoded from their files). progress:
        called as progress(done, total) after each batch. Unreadable images
        are skipped; their messages are in index.warnings and their count in
        index.build_stats.skipped (none readable: xvlm.Error)."""
        if tokens not in TOKENS:
            raise Error(f"tokens: expected one of {', '.join(TOKENS)}, got {tokens!r}")
        paths = [image_paths] if is_path(image_paths) else list(image_paths)
        if not paths:
            raise Error("Index.build: no image paths given")
        c_paths, _keep = string_array(paths, "image path", path=True)
        L = lib()
        p = L.xvlm_index_params_default()
        p.tokens = TOKENS[tokens]
        if batch is not None:
            p.batch = int(batch)
        warnings = []
        # The callbacks must outlive the call: kept in locals until it returns.
        on_progress = PROGRESS_FN(lambda user, done, total: progress(done, total)) if progress else PROGRESS_FN()
        on_warn = WARN_FN(lambda user, message: warnings.append(message.decode("utf-8", "replace")))
        p.progress, p.warn = on_progress, on_warn
        stats = IndexStats()
        with model._lock:
            check(L.xvlm_index_build(model._context(), c_paths, len(paths), encode_str(out, "index path", path=True),
                                     ctypes.byref(p), ctypes.byref(stats)))
        if stats.indexed == 0:  # as `xvlm index`: an index of nothing is a failure
            raise Error(f"{os.fspath(out)}: none of the {stats.total} images could be read"
                        + (f" ({warnings[0]}, ...)" if warnings else ""), "XVLM_ERR_IO")
        index = cls.open(model, out)
        index.build_stats = BuildStats(stats.total, stats.encoded, stats.reused, stats.skipped, stats.indexed)
        index.warnings = warnings
        return index

    def _handle(self):
        if not self._set.handle:
            raise Error(f"{self.path}: the index is closed")
        return self._set.handle

    @staticmethod
    def _path(handle, i):
        """The file of entry i (None when it came from memory)."""
        p = lib().xvlm_images_path(handle, i)
        return os.fsdecode(p) if p is not None else None

    def __len__(self):
        return lib().xvlm_images_count(self._handle())

    @property
    def paths(self):
        """The absolute path of each indexed image."""
        h = self._handle()
        return [self._path(h, i) for i in range(len(self))]

    @property
    def sizes(self):
        """(width, height) of each indexed image."""
        h, w, hh = self._handle(), ctypes.c_int(), ctypes.c_int()
        out = []
        for i in range(len(self)):
            lib().xvlm_images_size(h, i, ctypes.byref(w), ctypes.byref(hh))
            out.append((w.value, hh.value))
        return out

    @property
    def features(self):
        """The normalised ITC features, float32 [len(index), embed_dim] (a copy)."""
        return rows(lib().xvlm_images_features(self._handle()), len(self), self.model.info.embed_dim)

    @property
    def has_tokens(self):
        """Whether the index keeps vision tokens (else re-ranking re-encodes images)."""
        return bool(lib().xvlm_images_has_tokens(self._handle()))

    def search(self, text, k=10, rerank=16):
        """Text -> images, as `xvlm search` ranks: the ITC top max(k, rerank),
        the best `rerank` re-scored by ITM (0: ITC only). A list of Hit with
        .path set, best first."""
        if not isinstance(text, str):
            raise Error(f"search: expected one query str, got {type(text).__name__}")
        sp = search_params(k, rerank, len(self))
        hits, n = (CHit * sp.k)(), ctypes.c_int()
        L = lib()
        with self.model._text_set([text]) as q, self.model._lock:
            check(L.xvlm_search_images(self.model._context(), self._handle(), q.handle, 0, ctypes.byref(sp), hits,
                                       ctypes.byref(n)))
        h = self._handle()
        return hits_from_c(hits, n.value, path_of=lambda i: self._path(h, i))

    def close(self):
        if self._set:
            self._set.close()

    def __repr__(self):
        return f"xvlm.Index({self.path!r}, {len(self) if self._set.handle else 'closed'})"


__all__ = ["Index", "BuildStats"]
