#!/usr/bin/env python3
"""Does a model see colours and shapes? (docs/demo.md, "Shape: the cause under selection")

For the first N test images of a synthetic world, `xvlm match` scores the image's first caption
against the same caption with one colour word swapped for another colour, and with one shape
word swapped for another shape, each absent from the caption. Prints how often the true caption
scores higher, by ITM logit and by ITC similarity (chance: half). Standard library only.

  python3 tools/demo_swap_test.py build/xvlm MODEL out/demo/synth [--images 60]
"""
import argparse
import json
import random
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("xvlm")
    ap.add_argument("model")
    ap.add_argument("world")
    ap.add_argument("--images", type=int, default=60)
    a = ap.parse_args()
    world = json.load(open(a.world + "/world.json"))
    words = {"colour": list(world["colours"]), "shape": world["shapes"]}
    rng = random.Random(0)
    wins = {k: [0, 0, 0] for k in words}  # ITM wins, ITC wins, cases
    for item in json.load(open(a.world + "/retrieval_test.json"))[: a.images]:
        caption = item["caption"][0]
        toks = caption.split()
        texts = [caption]
        kinds = []
        for kind, vocab in words.items():
            at = [i for i, w in enumerate(toks) if w in vocab]
            others = [w for w in vocab if w not in toks]
            if not at or not others:
                continue
            swapped = list(toks)
            swapped[rng.choice(at)] = rng.choice(others)
            texts.append(" ".join(swapped))
            kinds.append(kind)
        cmd = [a.xvlm, "match", "--model", a.model, "--image", a.world + "/" + item["image"], "--threads", "1", "--json"]
        for t in texts:
            cmd += ["--text", t]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"xvlm match failed on {item['image']}: {out.stderr.strip()}")
        res = json.loads(out.stdout)["results"]
        for k, kind in enumerate(kinds, start=1):
            w = wins[kind]
            w[0] += res[0]["itm_logit"] > res[k]["itm_logit"]
            w[1] += res[0].get("itc", 0) > res[k].get("itc", 0)
            w[2] += 1
    for kind, (itm, itc, n) in wins.items():
        print(f"{kind} swap: the true caption wins {itm}/{n} by ITM, {itc}/{n} by ITC")


if __name__ == "__main__":
    main()
