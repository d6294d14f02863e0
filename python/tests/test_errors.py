"""Bad input raises xvlm.Error with a message that names what is wrong (the
library's own message where the library finds the problem), never a crash;
released objects refuse further use."""
import os
import subprocess
import sys
import unittest

import numpy as np

import xvlm
from world import TEXTS, WorldTest


class TestErrors(WorldTest):
    def assertError(self, fn, *words, status=None):
        with self.assertRaises(xvlm.Error) as caught:
            fn()
        for word in words:
            self.assertIn(word, str(caught.exception))
        if status:
            self.assertEqual(caught.exception.status, status)
        return caught.exception

    def test_missing_model(self):
        missing = self.w.path("no-such-model")
        self.assertError(lambda: xvlm.Model(missing), missing, "no such model")
        weights_only = os.path.join(self.w.model, "weights.safetensors")
        self.assertError(lambda: xvlm.Model(weights_only), weights_only, "config")

    def test_missing_image_file(self):
        missing = self.w.path("missing.jpg")
        for call in (lambda: self.model.encode_images([self.w.images[0], missing]),
                     lambda: self.model.match(missing, TEXTS[0]), lambda: self.model.ground(missing, TEXTS[0])):
            self.assertError(call, missing, status="XVLM_ERR_IO")

    def test_corrupt_image_file(self):
        bad = self.w.path("corrupt.jpg")
        with open(bad, "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
        self.assertError(lambda: self.model.encode_images([bad]), bad)

    def test_wrong_array_dtype_or_shape(self):
        pixels = self.w.pixels(0)
        self.assertError(lambda: self.model.encode_images([pixels.astype(np.float32)]), "image 0", "uint8", "float32")
        self.assertError(lambda: self.model.encode_images([self.w.images[0], pixels[:, :, 0]]), "image 1", "shape",
                         "(height, width, 3)")
        rgba = np.zeros(pixels.shape[:2] + (4,), np.uint8)
        self.assertError(lambda: self.model.match(rgba, TEXTS[0]), "shape", str(rgba.shape))
        self.assertError(lambda: self.model.encode_images([np.zeros((0, 5, 3), np.uint8)]), "shape")
        self.assertError(lambda: self.model.encode_images([[1, 2, 3]]), "image 0", "list")
        self.assertError(lambda: self.model.ground(42, TEXTS[0]), "image", "int")

    def test_bad_texts(self):
        self.assertError(lambda: self.model.encode_texts(["a dog", "?!..."]), "text 1", "empty after cleaning",
                         status="XVLM_ERR_INVALID_ARG")
        self.assertError(lambda: self.model.encode_texts(["a dog", 7]), "text 1", "int")
        self.assertError(lambda: self.model.encode_texts(["nul\0inside"]), "NUL")
        self.assertError(lambda: self.model.match(self.w.images[0], []), "at least one text")

    def test_bad_features_and_search_arguments(self):
        d = self.model.info.embed_dim
        self.assertError(lambda: self.model.similarity(np.zeros((2, d + 1)), np.zeros((1, d))), "image features",
                         f"(N, {d})")
        self.assertError(lambda: self.model.similarity(np.zeros((2, d)), np.zeros((1, d), np.int32)), "float")
        self.assertError(lambda: self.model.search_texts(self.w.images[0], TEXTS, k=0), "k must be >= 1")
        self.assertError(lambda: self.model.search_texts(self.w.images[0], []), "empty")

    def test_bad_index(self):
        missing = self.w.path("missing.index")
        self.assertError(lambda: xvlm.Index.open(self.model, missing), missing)
        self.assertError(lambda: xvlm.Index.build(self.model, self.w.images, self.w.path("x.index"), tokens="f8"),
                         "tokens", "f16")
        self.assertError(lambda: xvlm.Index.build(self.model, [], self.w.path("x.index")), "no image paths")
        unreadable = self.w.path("gone.jpg")
        self.assertError(lambda: xvlm.Index.build(self.model, [unreadable], self.w.path("x.index")),
                         "none of the 1 images", unreadable, status="XVLM_ERR_IO")
        other = xvlm.Model(self.w.model, image_res=0)  # same model: its index opens
        with xvlm.Index.build(other, self.w.images[:2], self.w.path("two.index")) as index:
            self.assertEqual(len(index), 2)
            self.assertError(lambda: index.search(["two", "queries"]), "one query str")
        self.assertError(lambda: index.search(TEXTS[0]), "closed")
        other.close()

    def test_precision(self):
        with self.assertRaises(ValueError):
            xvlm.Model(self.w.model, precision="fp16")
        try:
            m = xvlm.Model(self.w.model, precision="bf16")
        except xvlm.Error as e:  # a CPU without AVX512-BF16 or AMX says so
            self.assertIn("bf16 precision needs", str(e))
            return
        with m, xvlm.Model(self.w.model) as ref:
            got, want = m.encode_texts(TEXTS), ref.encode_texts(TEXTS)
            self.assertFalse(np.array_equal(got, want))  # the bf16 products ran
            # bf16 rounding (2^-9 per operand) through a few layers: the tiny fixture's bound
            self.assertLess(np.abs(got - want).max(), 2 ** -6 * max(1.0, np.abs(want).max()))

    def test_closed_model(self):
        m = xvlm.Model(self.w.model)
        with m:
            self.assertEqual(m.encode_texts(TEXTS).shape[0], 3)
        m.close()  # a second close does nothing
        self.assertError(lambda: m.encode_texts(TEXTS), "closed")
        self.assertError(lambda: m.match(self.w.images[0], TEXTS[0]), "closed")
        self.assertIn("closed", repr(m))

    def test_library_not_found(self):
        missing = self.w.path("libxvlm-missing.so")
        env = dict(os.environ, XVLM_LIBRARY=missing)
        code = "import xvlm\ntry:\n    xvlm.Model('m')\nexcept xvlm.Error as e:\n    print(e)\n"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.dirname(xvlm.__file__)))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "", "nothing printed by a half-made Model's finaliser")
        self.assertIn("cannot load libxvlm", out.stdout)
        self.assertIn(missing, out.stdout)
        self.assertIn("XVLM_LIBRARY", out.stdout)


if __name__ == "__main__":
    unittest.main()
