"""The bindings give the numbers of the C API and of the xvlm program
(`match`, `ground`, `index`, `search` with --json) for the same inputs, within
world.TOL."""
import ctypes
import math
import os
import re
import shutil
import unittest
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import xvlm
from xvlm import _library
from xvlm._error import STATUS_NAMES
from world import TEXTS, WorldTest, assert_close, xvlm_json, xvlm_run


class TestParity(WorldTest):
    def test_struct_layouts_match_the_c_compiler(self):
        for name, struct in _library.STRUCTS.items():
            want = self.w.layout[name]
            self.assertEqual(ctypes.sizeof(struct), want["sizeof"], f"sizeof({name})")
            for field, *_ in struct._fields_:
                self.assertEqual(getattr(struct, field).offset, want[field], f"{name}.{field}")
            self.assertEqual(len(struct._fields_), len(want) - 1, f"{name}: every field declared")

    def test_status_names_match_the_header(self):
        header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "xvlm.h")
        with open(header) as f:
            declared = dict((int(v), "XVLM_" + k) for k, v in re.findall(r"\bXVLM_(OK|ERR_\w+) = (\d+)", f.read()))
        self.assertEqual(len(declared), len(STATUS_NAMES))
        self.assertEqual([declared[i] for i in range(len(declared))], list(STATUS_NAMES))

    def test_embeddings_equal_the_c_api(self):
        want_im, want_tx = self.w.c_api_features(self.w.images, TEXTS)
        got_im, got_tx = self.model.encode_images(self.w.images), self.model.encode_texts(TEXTS)
        self.assertEqual(got_im.dtype, np.float32)
        self.assertEqual(got_im.shape, (4, self.model.info.embed_dim))
        assert_close(self, got_im, want_im, "image features")
        assert_close(self, got_tx, want_tx, "text features")
        assert_close(self, np.linalg.norm(got_im, axis=1), np.ones(4), "image features are normalised")

    def test_arrays_encode_as_their_files(self):
        files = self.model.encode_images(self.w.images)
        arrays = [self.w.pixels(k) for k in range(4)]
        assert_close(self, self.model.encode_images(arrays), files, "HxWx3 arrays")
        # A view with a row stride wider than the image, and paths and arrays mixed in one list.
        wide = np.zeros((arrays[1].shape[0], arrays[1].shape[1] + 7, 3), np.uint8)
        wide[:, 3:3 + arrays[1].shape[1]] = arrays[1]
        mixed = [self.w.images[0], wide[:, 3:3 + arrays[1].shape[1]], self.w.images[2], arrays[3]]
        assert_close(self, self.model.encode_images(mixed), files, "strided view, mixed list")
        prob_file, logit_file = self.model.match(self.w.images[2], TEXTS[0])
        prob_array, logit_array = self.model.match(arrays[2], TEXTS[0])
        assert_close(self, [prob_array, logit_array], [prob_file, logit_file], "match on an array")

    def test_paths_beyond_ascii(self):
        named = [self.w.path("фото ü.jpg"), os.fsdecode(os.fsencode(self.w.path("")) + b"latin1-\xe9.jpg")]
        for p in named:
            shutil.copyfile(self.w.images[0], p)
        assert_close(self, self.model.encode_images(named), self.model.encode_images(self.w.images[:1] * 2), "paths")
        with xvlm.Index.build(self.model, named, self.w.path("named.index")) as index:
            self.assertEqual(index.paths, named)
            self.assertIn(index.search(TEXTS[0], k=1)[0].path, named)

    def test_match_equals_cli(self):
        for image in self.w.images[:2]:
            cli = xvlm_json("match", "--model", self.w.model, "--image", image, *sum([["--text", t] for t in TEXTS], []))
            prob, logit = self.model.match(image, TEXTS)
            want = cli["results"]
            assert_close(self, prob, [r["itm_prob"] for r in want], "itm_prob")
            assert_close(self, logit, [r["itm_logit"] for r in want], "itm_logit")
            itc = self.model.similarity(self.model.encode_images([image]), self.model.encode_texts(TEXTS))
            assert_close(self, itc[0], [r["itc"] for r in want], "itc")
            one = self.model.match(image, TEXTS[1])
            self.assertIsInstance(one[0], float)
            assert_close(self, one, [want[1]["itm_prob"], want[1]["itm_logit"]], "match on one text")

    def test_ground_equals_cli(self):
        image = self.w.images[1]
        cli = xvlm_json("ground", "--model", self.w.model, "--image", image, *sum([["--text", t] for t in TEXTS], []))
        boxes = self.model.ground(image, TEXTS)
        for box, want in zip(boxes, cli["results"]):
            assert_close(self, box.pixels, want["box"], "box in pixels")
            assert_close(self, box.normalized, want["box_normalized"], "normalised box")
        one = self.model.ground(image, TEXTS[0])
        self.assertIsInstance(one, xvlm.Box)
        assert_close(self, one, boxes[0], "ground on one text")

    def test_threads_share_a_model(self):
        want = [self.model.match(image, TEXTS) for image in self.w.images]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda image: self.model.match(image, TEXTS), self.w.images * 3))
        for i, (prob, logit) in enumerate(got):
            assert_close(self, [prob, logit], want[i % 4], f"call {i} from a thread")

    def check_hits(self, hits, cli, key):
        want = cli["results"]
        self.assertEqual(len(hits), len(want))
        for hit, w in zip(hits, want):
            self.assertEqual(hit.index, w["index"])
            self.assertEqual(getattr(hit, key), w[key])
            assert_close(self, [hit.score, hit.itc], [w["score"], w["itc"]], f"hit {hit.index}")
            self.assertEqual(hit.reranked, w["itm_logit"] is not None)
            if hit.reranked:
                assert_close(self, [hit.itm_logit, hit.itm_prob], [w["itm_logit"], w["itm_prob"]], "re-rank")
            else:
                self.assertTrue(math.isnan(hit.itm_logit) and math.isnan(hit.itm_prob))

    def test_index_search_equals_cli(self):
        images_dir = os.path.dirname(self.w.images[0])
        for tokens in ("f16", "none"):  # re-ranking from stored tokens, and from the files
            cli_index, py_index = self.w.path(f"cli-{tokens}.index"), self.w.path(f"py-{tokens}.index")
            xvlm_run("index", "--model", self.w.model, "--images", images_dir, "--out", cli_index, "--tokens", tokens)
            with xvlm.Index.open(self.model, cli_index) as from_cli, \
                    xvlm.Index.build(self.model, sorted(self.w.images), py_index, tokens=tokens) as built:
                self.assertEqual(built.paths, from_cli.paths)
                self.assertEqual(built.sizes, from_cli.sizes)
                self.assertEqual(built.has_tokens, tokens != "none")
                assert_close(self, built.features, from_cli.features, "index features")
                self.assertEqual(built.build_stats, xvlm.BuildStats(4, 4, 0, 0, 4))
                for k, rerank in ((3, 2), (4, 0), (2, 16)):
                    cli = xvlm_json("search", "--model", self.w.model, "--index", cli_index, "--text", TEXTS[0],
                                    "--k", str(k), "--rerank", str(rerank))
                    self.check_hits(built.search(TEXTS[0], k=k, rerank=rerank), cli, "path")
                    self.check_hits(from_cli.search(TEXTS[0], k=k, rerank=rerank), cli, "path")

    def test_search_texts_equals_cli(self):
        texts_file = self.w.path("texts.txt")
        with open(texts_file, "w") as f:
            f.write("\n".join(TEXTS) + "\n")
        image = self.w.images[3]
        cli = xvlm_json("search", "--model", self.w.model, "--image", image, "--texts", texts_file, "--k", "3",
                        "--rerank", "2")
        self.check_hits(self.model.search_texts(image, TEXTS, k=3, rerank=2), cli, "text")


if __name__ == "__main__":
    unittest.main()
