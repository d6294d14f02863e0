"""xvlm.Model opens every kind of model the xvlm program opens: an official
PyTorch checkpoint (tests/data/torch, converted once into the cache) and the
single-file .safetensors model `xvlm convert` writes from it give the numbers
of `xvlm match` on the same file."""
import os
import shutil
import unittest

import xvlm
from world import TEXTS, assert_close, world, xvlm_json, xvlm_run

CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "torch",
                          "micro_pretrain_fp32.th")


class TestModelFiles(unittest.TestCase):
    def setUp(self):
        self.w = world()
        self.dir = self.w.path("checkpoint")
        os.makedirs(self.dir, exist_ok=True)
        self.th = os.path.join(self.dir, "micro.th")
        shutil.copyfile(CHECKPOINT, self.th)
        shutil.copyfile(os.path.join(self.w.model, "vocab.txt"), os.path.join(self.dir, "vocab.txt"))
        self.saved_cache = os.environ.get("XV_CACHE_DIR")
        os.environ["XV_CACHE_DIR"] = os.path.join(self.dir, "cache")  # read by the library and by xvlm

    def tearDown(self):
        if self.saved_cache is None:
            os.environ.pop("XV_CACHE_DIR")
        else:
            os.environ["XV_CACHE_DIR"] = self.saved_cache

    def test_checkpoint_and_single_file_equal_cli(self):
        image = self.w.images[2]
        args = ["--image", image] + sum([["--text", t] for t in TEXTS], [])
        single = os.path.join(self.dir, "micro.safetensors")
        xvlm_run("convert", "--text-heads", "2", self.th, single)
        for path, extra in ((self.th, ["--text-heads", "2"]), (single, [])):
            cli = xvlm_json("match", "--model", path, *extra, *args)["results"]
            with xvlm.Model(path, text_heads=2 if extra else 0) as model:
                prob, logit = model.match(image, TEXTS)
                assert_close(self, prob, [r["itm_prob"] for r in cli], f"{path}: itm_prob")
                assert_close(self, logit, [r["itm_logit"] for r in cli], f"{path}: itm_logit")
                sims = model.similarity(model.encode_images([image]), model.encode_texts(TEXTS))[0]
                assert_close(self, sims, [r["itc"] for r in cli], f"{path}: itc")

    def test_checkpoint_without_head_count_is_a_clear_error(self):
        with self.assertRaises(xvlm.Error) as caught:
            xvlm.Model(self.th)
        self.assertIn("micro.th", str(caught.exception))
        self.assertIn("text_heads", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
