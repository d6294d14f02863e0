"""`make install` (cmake --install, staged under DESTDIR) gives a package that
Debian's python3 imports from the prefix's site folder and that finds the
installed libxvlm.so by itself; the example runs as written against it."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import xvlm
from world import TEXTS, world

PREFIX = "/usr/local"
HERE = os.path.dirname(os.path.abspath(__file__))


class TestInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world()
        cls.stage = tempfile.mkdtemp(prefix="stage_", dir=cls.w.dir)
        subprocess.run(["cmake", "--install", os.environ["XV_BUILD_DIR"], "--prefix", PREFIX], check=True,
                       env=dict(os.environ, DESTDIR=cls.stage), stdout=subprocess.DEVNULL)
        site = os.path.join(cls.stage + PREFIX, os.environ["XV_PYTHON_DIR"])
        # Only the staged tree: no XVLM_LIBRARY, no source tree on the path.
        cls.env = {k: v for k, v in os.environ.items() if k not in ("XVLM_LIBRARY", "PYTHONPATH")}
        cls.env.update(PYTHONPATH=site, PYTHONDONTWRITEBYTECODE="1")

    def python(self, *args):
        run = subprocess.run([sys.executable, *args], env=self.env, capture_output=True, text=True, cwd=self.stage)
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout

    def test_installed_package_finds_the_installed_library(self):
        out = self.python("-c", "import xvlm, sys\n"
                                "m = xvlm.Model(sys.argv[1])\n"
                                "print(xvlm.__file__); print(xvlm.library_path()); print(m.encode_texts(['a']).shape)",
                          self.w.model).splitlines()
        self.assertTrue(out[0].startswith(self.stage + PREFIX), out[0])
        self.assertTrue(out[1].startswith(self.stage + PREFIX), out[1])
        self.assertEqual(os.path.basename(out[1]), "libxvlm.so.0")
        with xvlm.Model(self.w.model) as m:
            self.assertEqual(out[2], f"(1, {m.info.embed_dim})")

    def test_readme_snippet_runs(self):
        with open(os.path.join(HERE, "..", "..", "README.md")) as f:
            readme = f.read()
        snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
        shutil.copytree(self.w.model, os.path.join(self.stage, "model"))
        for name, k in (("dog.jpg", 0), ("cat.jpg", 1)):
            shutil.copyfile(self.w.images[k], os.path.join(self.stage, name))
        self.assertEqual(self.python("-c", snippet + "\nprint(len(hits), box.pixels[2] > 0, prob > 0)").split(),
                         ["2", "True", "True"])

    def test_example_runs_as_written(self):
        example = os.path.join(os.path.dirname(HERE), "examples", "search_and_ground.py")
        out = self.python(example, self.w.model, TEXTS[0], *self.w.images)
        lines = out.splitlines()
        self.assertEqual(lines[0], f"query: {TEXTS[0]}")
        with xvlm.Model(self.w.model) as m, xvlm.Index.build(m, self.w.images, self.w.path("ex.index")) as index:
            hits = index.search(TEXTS[0], k=5)
            box = m.ground(hits[0].path, TEXTS[0])
        self.assertEqual([line.split()[1] for line in lines[1:5]], [h.path for h in hits], out)
        self.assertEqual(lines[-1], "box in {}: x {:.1f} y {:.1f} width {:.1f} height {:.1f}".format(
            hits[0].path, *box.pixels))


if __name__ == "__main__":
    unittest.main()
