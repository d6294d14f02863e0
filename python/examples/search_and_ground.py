#!/usr/bin/env python3
"""Find the image that best matches a description, then locate what the
description refers to in it (the Python version of
examples/retrieve_and_ground.c):

    python3 search_and_ground.py MODEL "the red car on the left" a.jpg b.jpg c.jpg

MODEL is a model folder, a single-file .safetensors model or an official
.th checkpoint with vocab.txt beside it.
"""
import os
import sys
import tempfile

import numpy as np

import xvlm


def main(model_path, query, images):
    with xvlm.Model(model_path) as model, tempfile.TemporaryDirectory() as tmp:
        # 1. Index the images once (resumable; `xvlm search` reads the same file).
        with xvlm.Index.build(model, images, os.path.join(tmp, "photos.index")) as index:
            # 2. Search: ITC similarity for all, ITM re-rank of the best ones.
            hits = index.search(query, k=5)
        print(f"query: {query}")
        for rank, hit in enumerate(hits, 1):
            print(f"{rank}. {hit.path}  itm {hit.itm_prob:.4f} (logit {hit.itm_logit:.4f})  itc {hit.itc:.4f}")

        # 3. The same ITC similarities from features (numpy arrays).
        sims = model.similarity(model.encode_images(images), model.encode_texts([query]))[:, 0]
        print(f"best by ITC alone: {images[int(np.argmax(sims))]} ({sims.max():.4f})")

        # 4. Ground the query in the best image.
        box = model.ground(hits[0].path, query)
        print("box in {}: x {:.1f} y {:.1f} width {:.1f} height {:.1f}".format(hits[0].path, *box.pixels))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(f"usage: {sys.argv[0]} MODEL QUERY IMAGE...")
    try:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
    except xvlm.Error as e:
        sys.exit(f"search_and_ground: {e}")
