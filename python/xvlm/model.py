"""xvlm.Model: a loaded X-VLM and what it computes for images and texts
(include/xvlm.h, "Retrieval and grounding")."""
import ctypes
import math
import threading
from typing import NamedTuple

import numpy as np

from ._error import Error
from ._inputs import encode_image_group, encode_texts, feature_matrix, image_list, is_path, rows, text_list
from ._owned import Owned
from ._library import CBox, CHit, ModelInfo, Pair, SearchParams, check, encode_str, lib


class Info(NamedTuple):
    """What xvlm_model_get_info reports."""
    image_res: int      # input pixels per side
    embed_dim: int      # ITC feature width
    image_tokens: int   # vision tokens kept per image
    vision_width: int   # channels of a vision token
    max_positions: int  # longest text the text encoder accepts, in tokens
    has_itc: bool
    has_itm: bool
    has_bbox: bool
    id: str             # 16 hex digits naming the model (indexes carry it)


class Box(NamedTuple):
    """Where a text is in an image: in pixels of the original image (x, y,
    width, height) and as the box head gives it, relative to the image
    (cx, cy, w, h)."""
    x: float
    y: float
    width: float
    height: float
    cx: float
    cy: float
    w: float
    h: float

    @property
    def pixels(self):
        return (self.x, self.y, self.width, self.height)

    @property
    def normalized(self):
        return (self.cx, self.cy, self.w, self.h)


class Hit(NamedTuple):
    """One search result, ranked as Retrieval.py ranks: `score` is the ITM
    logit when re-ranked (else -100; the ITC similarity with rerank=0);
    itm_logit and itm_prob are NaN when not re-ranked."""
    index: int    # into the gallery (the index's images, or the texts given)
    path: str     # the image file (text -> image search), else None
    text: str     # the cleaned text (image -> text search), else None
    score: float
    itc: float
    itm_logit: float
    itm_prob: float
    reranked: bool


def hits_from_c(chits, n, path_of=None, text_of=None):
    return [Hit(h.index, path_of(h.index) if path_of else None, text_of(h.index) if text_of else None, h.score,
                h.itc, h.itm_logit if h.reranked else math.nan, h.itm_prob if h.reranked else math.nan,
                bool(h.reranked)) for h in chits[:n]]


def search_params(k, rerank, gallery_size):
    """The C search parameters; k is clamped to the gallery as the C API clamps it."""
    if gallery_size == 0:
        raise Error("search: the gallery is empty")
    if int(k) < 1 or int(rerank) < 0:
        raise Error(f"search: k must be >= 1 and rerank >= 0 (got k={k}, rerank={rerank})")
    return SearchParams(min(int(k), gallery_size), int(rerank))


class Model(Owned):
    """A loaded X-VLM: a model folder, a single-file .safetensors model, or an
    official .th/.pth checkpoint (with vocab.txt beside it), as the xvlm
    program accepts them.

    threads: threads used by every xvlm call in this process (OpenMP and
    BLAS; None leaves the current setting, <= 0 means all cores).

    One Model may be used from several Python threads: its calls take turns
    (each holds the model's one C context). Release it with close() or a
    with block; garbage collection releases it otherwise."""

    _model = _ctx = None  # C handles, set once made

    def __init__(self, path, threads=None, vocab=None, image_res=0, text_heads=0, copy_weights=False,
                 precision="fp32"):
        self._lock = threading.Lock()
        L = lib()
        if threads is not None:
            L.xvlm_set_threads(int(threads))
        params = L.xvlm_model_params_default()
        vocab_bytes = encode_str(vocab, "vocab", path=True) if vocab is not None else None
        params.vocab_path = vocab_bytes
        params.image_res, params.text_heads, params.copy_weights = int(image_res), int(text_heads), bool(copy_weights)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
        params.precision = 1 if precision == "bf16" else 0
        model, ctx = ctypes.c_void_p(), ctypes.c_void_p()
        check(L.xvlm_model_load(encode_str(path, "model path", path=True), ctypes.byref(params), ctypes.byref(model)))
        self._model = model
        check(L.xvlm_ctx_new(model, ctypes.byref(ctx)))
        self._ctx = ctx
        info = ModelInfo()
        L.xvlm_model_get_info(model, ctypes.byref(info))
        self.info = Info(info.image_res, info.embed_dim, info.image_tokens, info.vision_width, info.max_positions,
                         info.has_itc, info.has_itm, info.has_bbox, info.id.decode("ascii"))
        self.path = path

    # ---- lifetime ----
    def close(self):
        """Free the context and the model (idempotent; waits for a call in
        progress on another thread)."""
        if not (self._ctx or self._model):
            return
        with self._lock:
            if self._ctx:
                lib().xvlm_ctx_free(self._ctx)
                self._ctx = None
            if self._model:
                lib().xvlm_model_free(self._model)
                self._model = None

    def _handle(self):
        """The C model."""
        if not self._model:
            raise Error("the model is closed")
        return self._model

    def _context(self):
        """The C context, for a call made while holding self._lock."""
        if not self._ctx:
            raise Error("the model is closed")
        return self._ctx

    # ---- encoding ----
    @staticmethod
    def _image_params(keep_tokens, batch):
        p = lib().xvlm_image_params_default()
        p.keep_tokens = keep_tokens
        if batch is not None:
            p.batch = int(batch)
        return p

    def _text_set(self, texts, max_words=None, max_tokens=None):
        p = lib().xvlm_text_params_default()
        if max_words is not None:
            p.max_words = int(max_words)
        if max_tokens is not None:
            p.max_tokens = int(max_tokens)
        with self._lock:
            return encode_texts(self._context(), texts, p)

    def _one_image(self, image):
        """The C set (with vision tokens) of one image: a path or an HxWx3 uint8 array."""
        if not (is_path(image) or isinstance(image, np.ndarray)):
            raise Error(f"image: expected a path or an HxWx3 uint8 array, got {type(image).__name__}")
        with self._lock:
            return encode_image_group(self._context(), [image], 0, self._image_params(True, None))

    def encode_images(self, images, batch=None):
        """Normalised ITC features, float32 [N, embed_dim], of images given as
        paths (JPEG/PNG) and/or HxWx3 uint8 RGB arrays (the official test
        transform is applied to both)."""
        images = image_list(images)
        feats = np.zeros((len(images), self.info.embed_dim), np.float32)
        p = self._image_params(False, batch)
        start = 0
        while start < len(images):  # runs of paths and of arrays, each one C call
            end = start + 1
            while end < len(images) and is_path(images[end]) == is_path(images[start]):
                end += 1
            with self._lock:
                with encode_image_group(self._context(), images[start:end], start, p) as s:
                    feats[start:end] = rows(lib().xvlm_images_features(s.handle), end - start, feats.shape[1])
            start = end
        return feats

    def encode_texts(self, texts, max_words=None, max_tokens=None):
        """Normalised ITC features, float32 [N, embed_dim], of texts after
        pre_caption (max_words, default 30) and WordPiece ([CLS] + tokens, at
        most max_tokens, default 40)."""
        texts = text_list(texts)
        with self._text_set(texts, max_words, max_tokens) as s:
            return rows(lib().xvlm_texts_features(s.handle), len(texts), self.info.embed_dim)

    def similarity(self, image_features, text_features):
        """ITC similarities [N_images, N_texts] of features from encode_images
        and encode_texts: cosine similarities, as xvlm_similarity gives them
        (Retrieval.py's image_embeds @ text_embeds.t(), no temperature)."""
        im = feature_matrix(image_features, self.info.embed_dim, "image features")
        tx = feature_matrix(text_features, self.info.embed_dim, "text features")
        return im @ tx.T

    # ---- scoring ----
    @staticmethod
    def _texts_for_one_image(text, what):
        """The texts of a call on one image, and the C pairs (image 0, text i)."""
        texts = text_list(text)
        if not texts:
            raise Error(f"{what}: give at least one text")
        return texts, (Pair * len(texts))(*[Pair(0, i) for i in range(len(texts))])

    def match(self, image, text):
        """Image-text matching: (probability, logit) of the ITM head for one
        text, or two float32 arrays for a list of texts."""
        texts, pairs = self._texts_for_one_image(text, "match")
        n = len(texts)
        logit, prob = (ctypes.c_float * n)(), (ctypes.c_float * n)()
        with self._one_image(image) as im, self._text_set(texts) as tx, self._lock:
            check(lib().xvlm_itm(self._context(), im.handle, tx.handle, pairs, n, logit, prob))
        if isinstance(text, str):
            return float(prob[0]), float(logit[0])
        return np.array(prob, np.float32), np.array(logit, np.float32)

    def ground(self, image, text):
        """The Box each text describes in the image (Grounding_bbox.py): one
        Box for a str, a list of Box for a list of texts. Texts are not cut to
        a token count, as in Grounding_bbox.py."""
        texts, pairs = self._texts_for_one_image(text, "ground")
        n = len(texts)
        boxes = (CBox * n)()
        with self._one_image(image) as im, self._text_set(texts, max_tokens=0) as tx, self._lock:
            check(lib().xvlm_ground(self._context(), im.handle, tx.handle, pairs, n, boxes))
        out = [Box(b.x, b.y, b.width, b.height, b.cx, b.cy, b.w, b.h) for b in boxes]
        return out[0] if isinstance(text, str) else out

    def search_texts(self, image, texts, k=10, rerank=16):
        """Image -> texts: the texts ranked for the image as Retrieval.py ranks
        (ITC top max(k, rerank), the best `rerank` re-scored by ITM); a list
        of Hit with .text set."""
        texts = text_list(texts)
        sp = search_params(k, rerank, len(texts))
        hits, n = (CHit * sp.k)(), ctypes.c_int()
        with self._one_image(image) as im, self._text_set(texts) as tx, self._lock:
            check(lib().xvlm_search_texts(self._context(), tx.handle, im.handle, 0, ctypes.byref(sp), hits,
                                          ctypes.byref(n)))
            text_of = lambda i: lib().xvlm_texts_text(tx.handle, i).decode("utf-8")  # noqa: E731
            return hits_from_c(hits, n.value, text_of=text_of)

    def __repr__(self):
        state = "closed" if not self._model else f"id {self.info.id}, embed_dim {self.info.embed_dim}"
        return f"xvlm.Model({self.path!r}, {state})"


__all__ = ["Model", "Box", "Hit", "Info"]
