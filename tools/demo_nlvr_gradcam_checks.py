#!/usr/bin/python3
"""Measurements behind docs/nlvr-gradcam.md "Results on the demo world" (stdlib + numpy).

  heldout WORLD OUT_DIR [--per-kind N]
      More held-out NLVR2 statements than the world's nlvr_dev/test.json (50 pairs each): pairs
      of the world's test images, N statements per template of src/data/synth_nlvr.c (same
      words, same truth rules), each template true with probability 1/2; one file per template and
      heldout_all.json. Score them with `xvlm evaluate nlvr --config Y --model M --data F`.
  prior WORLD [FILE ...]
      Accuracy of answering each template's majority label in nlvr_train.json, images unseen,
      on nlvr_dev.json, nlvr_test.json and the FILEs (e.g. heldout_all.json).
  crop-noise WORLD
      How often NLVR.py's RandomResizedCrop (scale lo..1, ratio 3/4..4/3; lo = 0.5, 0.8, 1)
      makes a training statement false: an object stays when half of its box stays.
  itm-auc XVLM MODEL WORLD [--images N] [--captions]
      Does the ITM head (and ITC) rank an image's own texts above the other test images'?
      AUC per image over (own, other) pairs, averaged over the first N test images. Texts:
      the grounding expressions, or with --captions the retrieval captions. Another image's
      text can be true of this image too, so 1.0 is out of reach; 0.5 is no information.
  gradcam-tokens XVLM MODEL WORLD [--layer L]
      Grad-CAM per token (`xvlm explain --per-word --json`): how often the peak of the
      upsampled map lies inside the true box, for the official map (mean over every token,
      [CLS] included), the [CLS] row alone, the words alone, and the best single token; and
      the [CLS] row's share of the map's mass. The upsampling is PyTorch's bicubic
      (a = -0.75, align_corners False, border taps clamped), as src/tasks/eval_weak_grounding.c.
"""
import argparse
import collections
import json
import os
import random
import subprocess

import numpy as np

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["has_object", "both_contain", "count_total", "more_objects"]


def load_world(world):
    w = json.load(open(os.path.join(world, "world.json")))
    scenes = [json.loads(line) for line in open(os.path.join(world, "scenes.jsonl"))]
    return w, [s for s in scenes if s["split"] == "test"]


def statement(g, w, left_scene, right_scene, want, kind):
    """synth_nlvr.c statement(): (text, truth), or (None, None) when the draw cannot be made."""
    shapes, colours = w["shapes"], list(w["colours"])

    def has(s, shape, colour=None):
        return any(o["shape"] == shape and colour in (None, o["colour"]) for o in s["objects"])

    def count(s, shape):
        return sum(o["shape"] == shape for o in s["objects"])

    some = left_scene if g.random() < 0.5 else right_scene
    if kind == 0:
        left = some is left_scene
        if want:
            o = g.choice(some["objects"])
            shape, colour = o["shape"], o["colour"]
        else:
            shape, colour = g.choice(shapes), g.choice(colours)
        return "the %s image has a %s %s" % ("left" if left else "right", colour, shape), has(some, shape, colour)
    if kind == 1:
        shape = g.choice(some["objects"])["shape"] if want else g.choice(shapes)
        return "both images contain a %s" % shape, has(left_scene, shape) and has(right_scene, shape)
    if kind == 2:
        shape = g.choice(some["objects"])["shape"]
        n = count(left_scene, shape) + count(right_scene, shape)
        said = n if want else n + (-1 if g.random() < 0.5 and n > 1 else 1)
        if not 1 <= said <= 9:
            return None, None
        noun = shape if said == 1 else w["shape_plurals"][shapes.index(shape)]
        return "there %s %s %s in total" % ("is" if said == 1 else "are", NUMBERS[said], noun), said == n
    nl, nr = len(left_scene["objects"]), len(right_scene["objects"])
    if nl == nr:
        return None, None
    left = g.random() < 0.5
    text = "the %s image has more objects than the %s one" % (("left", "right") if left else ("right", "left"))
    return text, (nl > nr) if left else (nr > nl)


def heldout(a):
    w, test = load_world(a.world)
    g = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    everything = []
    for kind, name in enumerate(TEMPLATES):
        out = []
        while len(out) < a.per_kind:
            want, truth = g.random() < 0.5, None
            while truth != want:  # a new pair until the template gives the wanted truth: 1/2 true
                i, j = g.sample(range(len(test)), 2)
                text, truth = statement(g, w, test[i], test[j], want, kind)
            out.append({"images": [test[i]["image"], test[j]["image"]], "sentence": text,
                        "label": "True" if truth else "False"})
        json.dump(out, open(os.path.join(a.out_dir, "heldout_%s.json" % name), "w"), indent=0)
        everything += out
    json.dump(everything, open(os.path.join(a.out_dir, "heldout_all.json"), "w"), indent=0)
    print("%d statements (%d per template) in %s" % (len(everything), a.per_kind, a.out_dir))


def template(text):
    if text.startswith("both images contain"):
        return "both_contain"
    if text.endswith("in total"):
        return "count_total"
    return "more_objects" if "more objects" in text else "has_object"


def prior(a):
    train = json.load(open(os.path.join(a.world, "nlvr_train.json")))
    counts = collections.defaultdict(collections.Counter)
    for e in train:
        counts[template(e["sentence"])][e["label"]] += 1
    majority = {k: c.most_common(1)[0][0] for k, c in counts.items()}
    print("majority label per template:", majority)
    for path in [os.path.join(a.world, "nlvr_dev.json"), os.path.join(a.world, "nlvr_test.json")] + a.files:
        d = json.load(open(path))
        right = sum(majority[template(e["sentence"])] == e["label"] for e in d)
        print("%s: %d / %d = %.1f %%" % (path, right, len(d), 100 * right / len(d)))


def truth(w, text, left_scene, right_scene):
    """A synth statement's truth on two (possibly cropped) scenes."""
    words = text.split()

    def has(s, shape, colour=None):
        return any(o["shape"] == shape and colour in (None, o["colour"]) for o in s["objects"])

    kind = template(text)
    if kind == "both_contain":
        return has(left_scene, words[-1]) and has(right_scene, words[-1])
    if kind == "more_objects":
        nl, nr = len(left_scene["objects"]), len(right_scene["objects"])
        return nl > nr if words[1] == "left" else nr > nl
    if kind == "count_total":
        noun = words[3]
        shape = noun if noun in w["shapes"] else w["shapes"][w["shape_plurals"].index(noun)]
        return sum(o["shape"] == shape for o in left_scene["objects"] + right_scene["objects"]) == NUMBERS.index(words[2])
    return has(left_scene if words[1] == "left" else right_scene, words[-1], words[-2])


def crop_noise(a):
    w = json.load(open(os.path.join(a.world, "world.json")))
    scenes = {s["image"]: s for s in map(json.loads, open(os.path.join(a.world, "scenes.jsonl")))}
    train = json.load(open(os.path.join(a.world, "nlvr_train.json")))
    g = random.Random(a.seed)

    def cropped(s, lo):  # torchvision RandomResizedCrop.get_params, then the objects that stay
        size, box = s["width"], (0, 0, s["width"], s["width"])
        for _ in range(10):
            area = size * size * g.uniform(lo, 1.0)
            ratio = np.exp(g.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
            if 0 < cw <= size and 0 < ch <= size:
                box = (g.randint(0, size - cw), g.randint(0, size - ch), cw, ch)
                break
        x0, y0, cw, ch = box
        kept = [o for o in s["objects"] if
                max(0, min(o["bb"][0] + o["bb"][2], x0 + cw) - max(o["bb"][0], x0)) *
                max(0, min(o["bb"][1] + o["bb"][3], y0 + ch) - max(o["bb"][1], y0)) >= 0.5 * o["bb"][2] * o["bb"][3]]
        return dict(s, objects=kept)

    for lo in (0.5, 0.8, 1.0):
        wrong, n = collections.Counter(), collections.Counter()
        for e in train:
            left, right = scenes[e["images"][0]], scenes[e["images"][1]]
            assert truth(w, e["sentence"], left, right) == (e["label"] == "True"), e
            kind = template(e["sentence"])
            n[kind] += 1
            wrong[kind] += truth(w, e["sentence"], cropped(left, lo), cropped(right, lo)) != (e["label"] == "True")
        print("crop scale %.1f..1: %.1f %% of %d labels wrong after the crops; %s" % (
            lo, 100 * sum(wrong.values()) / len(train), len(train),
            ", ".join("%s %.1f %%" % (k, 100 * wrong[k] / n[k]) for k in sorted(n))))


def auc(pos, neg):
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def itm_auc(a):
    if a.captions:
        entries = json.load(open(os.path.join(a.world, "retrieval_test.json")))
        pairs = [(e["image"], c) for e in entries for c in e["caption"]]
    else:
        pairs = [(e["image"], e["text"]) for e in json.load(open(os.path.join(a.world, "grounding_test.json")))]
    own = collections.defaultdict(set)
    for image, text in pairs:
        own[image].add(text)
    texts = sorted({t for _, t in pairs})
    result = {"itm_logit": [], "itc": []}
    for image in sorted(own)[:a.images]:
        cmd = [a.xvlm, "match", "--model", a.model, "--image", os.path.join(a.world, image), "--json", "--threads", "1"]
        for t in texts:
            cmd += ["--text", t]
        rows = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["results"]
        for key in result:
            result[key].append(auc([r[key] for r in rows if r["text"] in own[image]],
                                   [r[key] for r in rows if r["text"] not in own[image]]))
    n = len(result["itc"])
    print("%s: %d test images, %s: AUC own vs other texts: ITM %.3f, ITC %.3f" % (
        a.model, n, "captions" if a.captions else "expressions", sum(result["itm_logit"]) / n, sum(result["itc"]) / n))


def cubic(t, a=-0.75):
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a if t < 2 else 0.0


def upsampling(n, size):
    m = np.zeros((size, n))
    for d in range(size):
        src = (d + 0.5) * n / size - 0.5
        f = int(np.floor(src))
        for k in range(-1, 3):
            m[d, min(max(f + k, 0), n - 1)] += cubic(k - (src - f))
    return m


def peak_in_box(cam, e):
    cam = np.asarray(cam, dtype=np.float64)
    up = upsampling(len(cam), e["height"]) @ cam @ upsampling(len(cam), e["width"]).T
    y, x = divmod(int(np.argmax(up)), e["width"])
    bx, by, bw, bh = e["bbox"]
    return bx <= x < bx + bw and by <= y < by + bh


def gradcam_tokens(a):
    exprs = json.load(open(os.path.join(a.world, "grounding_test.json")))
    hits, cls_share = collections.Counter(), []
    for e in exprs:
        cmd = [a.xvlm, "explain", "--model", a.model, "--image", os.path.join(a.world, e["image"]), "--text", e["text"],
               "--per-word", "--json", "--threads", "1"] + (["--layer", str(a.layer)] if a.layer is not None else [])
        d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        maps = [np.asarray(m) for m in d["token_maps"]]
        hits["official (mean of all tokens)"] += peak_in_box(d["map"], e)
        hits["[CLS] alone"] += peak_in_box(maps[0], e)
        hits["words alone"] += peak_in_box(sum(maps[1:]), e)
        hits["best single token"] += any(peak_in_box(m, e) for m in maps)
        total = sum(m.sum() for m in maps)
        cls_share.append(maps[0].sum() / total if total > 0 else 0.0)
    n = len(exprs)
    print("%s layer %s: %d expressions; peak inside the true box: %s; [CLS] share of the map's mass: median %.2f" % (
        a.model, d["layer"], n, ", ".join("%s %.1f %%" % (k, 100 * v / n) for k, v in hits.items()),
        sorted(cls_share)[n // 2]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("heldout")
    h.add_argument("world"), h.add_argument("out_dir")
    h.add_argument("--per-kind", type=int, default=250), h.add_argument("--seed", type=int, default=7)
    pr = sub.add_parser("prior")
    pr.add_argument("world"), pr.add_argument("files", nargs="*")
    cn = sub.add_parser("crop-noise")
    cn.add_argument("world"), cn.add_argument("--seed", type=int, default=3)
    for name in ("itm-auc", "gradcam-tokens"):
        s = sub.add_parser(name)
        s.add_argument("xvlm"), s.add_argument("model"), s.add_argument("world")
        if name == "itm-auc":
            s.add_argument("--images", type=int, default=20), s.add_argument("--captions", action="store_true")
        else:
            s.add_argument("--layer", type=int)
    a = p.parse_args()
    {"heldout": heldout, "prior": prior, "crop-noise": crop_noise, "itm-auc": itm_auc,
     "gradcam-tokens": gradcam_tokens}[a.cmd](a)


if __name__ == "__main__":
    main()
