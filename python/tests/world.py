"""The test world, made once per run by the C helper xv_python_world (a tiny
random X-VLM, JPEG images and the pixels they decode to), and the xvlm
program's answers for it."""
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

import xvlm

# The bindings and the program run the same fp32 code on the same inputs; only
# the batch composition may differ (BLAS blocks a batch of 4 differently from
# one of 1), which moves results by a few ulps (~1e-7); a wrong token, mask or
# layer moves them by 1e-2 or more.
TOL = 1e-5
TEXTS = ["the red square on the left", "two blue circles", "a small green triangle"]


def assert_close(test, got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    test.assertEqual(got.shape, want.shape, what)
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))) if got.size else 0.0
    test.assertLessEqual(err, TOL, f"{what}: max relative difference {err:.3g}")


class World:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="xv_python_")
        atexit.register(shutil.rmtree, self.dir, True)
        subprocess.run([os.environ["XV_PYTHON_WORLD"], "world", self.dir], check=True)
        self.model = os.path.join(self.dir, "model")
        self.images = [os.path.join(self.dir, "images", f"photo{k}.jpg") for k in range(4)]
        with open(os.path.join(self.dir, "layout.json")) as f:
            self.layout = json.load(f)

    def path(self, name):
        return os.path.join(self.dir, name)

    def pixels(self, k):
        """The RGB pixels photo k decodes to, HxWx3 uint8 (a PPM the helper wrote)."""
        with open(os.path.join(self.dir, "images", f"photo{k}.ppm"), "rb") as f:
            data = f.read()
        magic, w, h, maxval, rest = data.split(maxsplit=4)
        assert magic == b"P6" and maxval == b"255"
        return np.frombuffer(rest, np.uint8).reshape(int(h), int(w), 3)

    def c_api_features(self, images, texts):
        """Features through the C API (xv_python_world embed)."""
        out = self.path("embed.json")
        subprocess.run([os.environ["XV_PYTHON_WORLD"], "embed", self.model, out, *images, "--", *texts], check=True)
        with open(out) as f:
            got = json.load(f)
        return np.array(got["images"], np.float32), np.array(got["texts"], np.float32)


def xvlm_run(*args):
    """`xvlm ARGS`: its stdout (an AssertionError when it fails)."""
    run = subprocess.run([os.environ["XV_BIN"], *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise AssertionError(f"xvlm {' '.join(args)}: exit {run.returncode}: {run.stderr}")
    return run.stdout


def xvlm_json(*args):
    """`xvlm ARGS --json`, parsed."""
    return json.loads(xvlm_run(*args, "--json"))


_world = None


def world():
    global _world
    if _world is None:
        _world = World()
    return _world


class WorldTest(unittest.TestCase):
    """Tests on the world with one open Model (self.w, self.model)."""

    @classmethod
    def setUpClass(cls):
        cls.w = world()
        cls.model = xvlm.Model(cls.w.model)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
