#!/usr/bin/python3
"""Writes golden sets in the official fixture layout for shapes the official
fixture does not cover, computed by our reference (xvlm_ref.py, which
check_fixture.py proves equal to the official tiny fixture).

    /usr/bin/python3 tools/torchref/make_golden.py [OUT_ROOT] [--only NAME]

OUT_ROOT defaults to tests/data/golden; each set goes to OUT_ROOT/NAME/:
config.json, weights.safetensors (official names, both tied names, position_ids),
inputs.safetensors (`image.` and `region.` steps), outputs.safetensors (the same
output names as the official fixture incl. grad.<name>), README.md.

The forward and backward run in float64 from the float32 weights and inputs and
are rounded to float32 once at the end, so the stored numbers are closer to exact
than any float32 implementation. Everything random comes from numpy Generators
with fixed seeds and the computation runs on one thread: a rerun writes the same
bytes."""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import xvlm_params  # noqa: E402
import xvlm_ref  # noqa: E402

CLS, MASK, FIRST_WORD_ID = 101, 103, 104  # bert-base-uncased ids; random words use ids >= 104
MEAN = (0.48145466, 0.4578275, 0.40821073)  # the official (CLIP) normalisation
STD = (0.26862954, 0.26130258, 0.27577711)
REGION_PATCH = 32  # config patch_size: the final stride, used for region masks

SETS = {
    # image_res 384, window 12: grids 96/48/24/12, the last stage one window without shift.
    # Widths are small because every parameter is stored three times (weights + two gradients).
    "r384w12": dict(seed=384, image_res=384, window=12, embed=6, depths=[2, 2, 2, 2], heads=[1, 1, 2, 2],
                    hidden=32, text_heads=2, intermediate=64, layers=4, fusion_layer=2, vocab=300,
                    max_positions=32, max_tokens=16, max_masks=4, embed_dim=16, batch=2,
                    region_images=1, region_groups=[0, 0, 0]),
    # image_res 192, window 6: grids 48/24/12/6; deeper stage 2; text 3 layers, fusion from layer 1.
    "r192w6": dict(seed=192, image_res=192, window=6, embed=6, depths=[2, 2, 4, 2], heads=[1, 2, 2, 4],
                   hidden=24, text_heads=3, intermediate=48, layers=3, fusion_layer=1, vocab=250,
                   max_positions=16, max_tokens=12, max_masks=3, embed_dim=24, batch=3,
                   region_images=2, region_groups=[0, 0, 1, 1]),
}


def make_config(name, s):
    geometry = xvlm_ref.swin_geometry({"image_res": s["image_res"], "swin_patch_size": 4, "depths": s["depths"],
                                       "window_size": s["window"], "embed_dim": s["embed"],
                                       "num_heads": s["heads"]})
    excluded = []
    for i, st in enumerate(geometry):
        for j, (_, shift) in enumerate(st["blocks"]):
            excluded.append(f"vision_encoder.layers.{i}.blocks.{j}.attn.relative_position_index")
            if shift:
                excluded.append(f"vision_encoder.layers.{i}.blocks.{j}.attn_mask")
    vision_width = s["embed"] << (len(s["depths"]) - 1)
    return {
        "name": name,
        "generator": "tools/torchref/make_golden.py (our PyTorch reference, validated against the official "
                     "fixture tiny by tools/torchref/check_fixture.py); float64 forward/backward rounded to float32",
        "batch": s["batch"],
        "regions": len(s["region_groups"]),
        "region_images": s["region_images"],
        "debug_outputs": True,
        "embed_dim": s["embed_dim"],
        "excluded_state_dict_entries": excluded,
        "grad_steps": ["image", "region"],
        "head_layer_norm_eps": 1e-05,
        "itm_negatives": "argmax of the official weights_t2i / weights_i2t rows (softmax(sim/temp)+1e-5, "
                         "diagonal zeroed), computed by the reference in float64",
        "mask_prob": 0.25,
        "max_masks": s["max_masks"],
        "max_tokens": s["max_tokens"],
        "mode": "eval (dropout off, DropPath identity); autograd on for gradients",
        "perturbation": {"generator_seed": s["seed"], "std_ndim_ge2": 0.05, "std_ndim_le1": 0.1,
                         "temp": "not perturbed, set to 0.07"},
        "seed": s["seed"],
        "temp": float(np.float32(0.07)),
        "temp_clamp": [0.001, 0.5],
        "texts": "random token ids: [CLS] then ids uniform in [104, vocab_size), padded with 0; no vocab file",
        "text": {
            "attention_probs_dropout_prob": 0.1, "encoder_width": vision_width, "fusion_layer": s["fusion_layer"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": s["hidden"],
            "initializer_range": 0.02, "intermediate_size": s["intermediate"], "layer_norm_eps": 1e-12,
            "max_position_embeddings": s["max_positions"], "num_attention_heads": s["text_heads"],
            "num_hidden_layers": s["layers"], "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": s["vocab"],
        },
        "tied_parameters": [list(t) for t in xvlm_ref.TIED],
        "vision": {
            "ape": False, "depths": s["depths"], "drop_path_rate": 0.1, "embed_dim": s["embed"],
            "image_res": s["image_res"], "in_chans": 3, "layer_norm_eps": 1e-05, "mlp_ratio": 4.0,
            "num_heads": s["heads"], "num_patches": (s["image_res"] // REGION_PATCH) ** 2, "patch_norm": True,
            "patch_size": REGION_PATCH, "qkv_bias": True, "swin_patch_size": 4, "type": "swin",
            "vision_width": vision_width, "window_size": s["window"],
        },
    }


# ------------------------------------------------------------------------------------ inputs


def make_images(rng, n, res):
    """Smooth pictures with a few flat rectangles, as uint8 RGB, normalised like
    the official pipeline (ToTensor then Normalize, in float32). Smooth content
    keeps the files compressible."""
    v, u = np.mgrid[0:res, 0:res] / res
    out = np.empty((n, 3, res, res), dtype=np.uint8)
    for i in range(n):
        for c in range(3):
            f = rng.uniform(0.5, 3.0, 3)
            ph = rng.uniform(0, 2 * np.pi, 3)
            img = (128 + 70 * np.sin(2 * np.pi * f[0] * u + ph[0]) * np.cos(2 * np.pi * f[1] * v + ph[1])
                   + 40 * np.sin(2 * np.pi * f[2] * (u + v) + ph[2]))
            out[i, c] = np.clip(np.round(img), 0, 255).astype(np.uint8)
        for _ in range(3):
            x0, y0 = rng.integers(0, res * 3 // 4, 2)
            w, h = rng.integers(res // 8, res // 3, 2)
            out[i, :, y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3, dtype=np.uint8)[:, None, None]
    x = torch.from_numpy(out).float().div(255)
    x = x.sub(torch.tensor(MEAN)[:, None, None]).div(torch.tensor(STD)[:, None, None])
    return x.numpy()


def make_texts(rng, n, max_tokens, vocab):
    """[CLS] + random words; one text fills max_tokens, one is short."""
    lengths = rng.integers(3, max_tokens + 1, n)
    lengths[0] = max_tokens
    if n > 1:
        lengths[1] = 2
    ids = np.zeros((n, max_tokens), dtype=np.int64)
    for b, length in enumerate(lengths):
        ids[b, 0] = CLS
        ids[b, 1:length] = rng.integers(FIRST_WORD_ID, vocab, length - 1)
    return ids, (ids != 0).astype(np.int64)


def mask_texts(rng, ids, atts, max_masks, vocab):
    """MLM inputs like the official generator without whole-word spans: round(0.25
    len) positions (Python round, at least 1, at most max_masks) among 1..len-1;
    80% [MASK], 10% a random id of the whole vocab, 10% unchanged. Padded slots:
    position 0, label -100."""
    masked = ids.copy()
    pos = np.zeros((ids.shape[0], max_masks), dtype=np.int64)
    labels = np.full((ids.shape[0], max_masks), -100, dtype=np.int64)
    for b in range(ids.shape[0]):
        length = int(atts[b].sum())
        n_pred = min(max_masks, max(1, round(0.25 * length)))
        chosen = np.sort(rng.choice(np.arange(1, length), size=n_pred, replace=False))
        pos[b, :n_pred] = chosen
        labels[b, :n_pred] = ids[b, chosen]
        for p in chosen:
            if rng.random() < 0.8:
                masked[b, p] = MASK
            elif rng.random() < 0.5:
                masked[b, p] = rng.integers(0, vocab)
    return masked, pos, labels


def box_to_atts(box, res):
    """(x, y, w, h) in pixels -> [1 + n^2] mask over [CLS] + patches (sheet 2.11)."""
    n = res // REGION_PATCH
    x, y, w, h = box
    x_min = min(int(np.floor(x / REGION_PATCH)), n - 1)
    x_max = max(x_min + 1, min(int(np.ceil((x + w) / REGION_PATCH)), n))
    y_min = min(int(np.floor(y / REGION_PATCH)), n - 1)
    y_max = max(y_min + 1, min(int(np.ceil((y + h) / REGION_PATCH)), n))
    atts = np.zeros(1 + n * n, dtype=np.int64)
    atts[0] = 1
    for i in range(y_min, y_max):
        atts[1 + n * i + x_min:1 + n * i + x_max] = 1
    return atts


def make_regions(rng, groups, res):
    """Text 0 describes the whole image (is_image 1, all-ones mask, target
    (0.5, 0.5, 1, 1)); the others random boxes of their image."""
    atts, targets, is_image, boxes = [], [], [], []
    for r in range(len(groups)):
        if r == 0:
            atts.append(np.ones(1 + (res // REGION_PATCH) ** 2, dtype=np.int64))
            targets.append([0.5, 0.5, 1.0, 1.0])
            is_image.append(1)
            boxes.append(None)
            continue
        w, h = rng.uniform(0.15 * res, 0.6 * res, 2)
        x, y = rng.uniform(0, res - w), rng.uniform(0, res - h)
        atts.append(box_to_atts((x, y, w, h), res))
        targets.append([(x + w / 2) / res, (y + h / 2) / res, w / res, h / res])
        is_image.append(0)
        boxes.append([float(x), float(y), float(w), float(h)])
    return (np.stack(atts), np.array(targets, dtype=np.float32), np.array(is_image, dtype=np.int64), boxes)


def make_inputs(cfg, s):
    rng = np.random.default_rng(s["seed"] + 1)
    res = s["image_res"]
    steps = {}
    for step, n_texts, n_images in (("image", s["batch"], s["batch"]),
                                    ("region", len(s["region_groups"]), s["region_images"])):
        d = {"image": make_images(rng, n_images, res)}
        d["text_ids"], d["text_atts"] = make_texts(rng, n_texts, s["max_tokens"], s["vocab"])
        d["text_ids_masked"], d["masked_pos"], d["masked_ids"] = mask_texts(rng, d["text_ids"], d["text_atts"],
                                                                            s["max_masks"], s["vocab"])
        if step == "region":
            d["idx_to_group_img"] = np.array(s["region_groups"], dtype=np.int64)
            d["image_atts"], d["target_bbox"], d["is_image"], boxes = make_regions(rng, s["region_groups"], res)
            cfg["inputs_info"]["region"]["boxes_xywh_pixels"] = boxes
        steps[step] = d
    return steps


# ------------------------------------------------------------------------------------ outputs


def run_step(cfg, weights, inp, step):
    """float64 forward + backward; fills in the ITM negatives first. Returns
    ({output name: float32 array}, names without gradient)."""
    region = step == "region"

    def forward(negatives):
        params = xvlm_ref.load_params(weights, torch.float64)
        model = xvlm_ref.XVLMRef(cfg, params)
        t = xvlm_ref.inputs_to_torch({f"{step}.{k}": v for k, v in {**inp, **negatives}.items()}, step,
                                     torch.float64)
        return model, params, model.step(t, region)

    n = inp["text_ids"].shape[0]
    placeholder = {"itm_neg_image_idx": np.zeros(n, np.int64), "itm_neg_text_idx": np.zeros(n, np.int64)}
    model, _, out = forward(placeholder)
    neg_img, neg_txt = model.hard_negatives(out["image_feat"].detach(), out["text_feat"].detach())
    inp["itm_neg_image_idx"], inp["itm_neg_text_idx"] = neg_img.numpy(), neg_txt.numpy()
    _, params, out = forward({})
    grads, unused = xvlm_ref.grads(params, out["loss_total"])
    result = {}
    for k, v in out.items():
        v = v.detach()
        result[k] = (v.reshape(1) if k.startswith("loss_") else v).to(torch.float32).numpy()
    for k, v in grads.items():
        result["grad." + k] = v.to(torch.float32).numpy()
    return result, unused


def readme(name, cfg, sizes):
    v, t = cfg["vision"], cfg["text"]
    geometry = xvlm_ref.swin_geometry(v)
    grids = "/".join(str(st["side"]) for st in geometry)
    rows = "\n".join(f"| `{f}` | {sizes[f]:,} |" for f in sorted(sizes))
    return f"""# Golden set `{name}` (made by our PyTorch reference)

Made by `tools/torchref/make_golden.py` (command, from the repository root:
`/usr/bin/python3 tools/torchref/make_golden.py tests/data/golden --only {name}`), which runs
our own PyTorch X-VLM reference `tools/torchref/xvlm_ref.py`. That reference is validated against
the official golden data `../shared/fixtures/tiny` (made by the unmodified official code) with
`tools/torchref/check_fixture.py`: outputs bit-equal in float32, every gradient within ~1e-6 of
max(1, max|ref|). These files are **not** from the official code; they extend the check to shapes
the official fixture does not cover. Rerunning the command writes the same bytes.
The vision outputs (`vision_embeds`, `swin_stage0..3`, `region_vision_embeds`) were also
reproduced by the official `models/swin_transformer.py` itself, run on these weights and inputs
(`tools/torchref/check_official_swin.py tests/data/golden/{name}`): equal up to float32 rounding.

Layout, names and meaning are exactly those of `../shared/fixtures/README.md` (`config.json`,
`weights.safetensors`, `inputs.safetensors` with `image.` / `region.` steps, `outputs.safetensors`
with the same output names and `grad.<state_dict key>`), except that there is no `vocab.txt`: the
texts are random token ids.

Configuration:
- Swin: image_res {v['image_res']}, patch 4, window {v['window_size']} (token grids {grids}; the last stage
  is one window without shift), embed {v['embed_dim']}, depths {v['depths']}, heads {v['num_heads']},
  vision width {v['vision_width']}, {v['num_patches']} patches.
- BERT: hidden {t['hidden_size']}, {t['num_hidden_layers']} layers, fusion_layer {t['fusion_layer']},
  {t['num_attention_heads']} heads, FFN {t['intermediate_size']}, vocab {t['vocab_size']},
  {t['max_position_embeddings']} positions; max_tokens {cfg['max_tokens']}, max_masks {cfg['max_masks']};
  embed_dim {cfg['embed_dim']}, temp 0.07.
- Image step: batch {cfg['batch']}. Region step: {cfg['regions']} texts on {cfg['region_images']} image(s)
  (`idx_to_group_img`), text 0 describes the whole image (`is_image` 1).
- Weights: the official initialisers plus noise (std 0.05 on tensors of rank >= 2, 0.1 on rank <= 1),
  as in the official fixture; no LayerNorm weight is 1 and no bias is 0.
- Images: smooth uint8 pictures normalised with the official (CLIP) mean/std, stored as float32.
- ITM negatives: the argmax of the official sampling weights (stored in the inputs).
- Arithmetic: float64 forward and backward from the float32 weights/inputs, rounded to float32 once.
  Gradients that are zero in exact arithmetic (attention key biases) are stored as ~1e-18 noise.
  Compare with max|diff| <= 1e-4 * max(1, max|ref|) per tensor, as for the official fixture.

| file | bytes |
| --- | --- |
{rows}
"""


def write_set(root, name):
    s = SETS[name]
    cfg = make_config(name, s)
    cfg["inputs_info"] = {"image": {}, "region": {}}
    weights = xvlm_params.init_params(cfg, s["seed"], perturb=True)
    steps = make_inputs(cfg, s)
    outputs = {}
    for step, inp in steps.items():
        result, unused = run_step(cfg, weights, inp, step)
        cfg["inputs_info"][step]["params_without_grad"] = unused
        outputs.update({f"{step}.{k}": v for k, v in result.items()})
    inputs = {f"{step}.{k}": v for step, inp in steps.items() for k, v in inp.items()}
    out_dir = os.path.join(root, name)
    os.makedirs(out_dir, exist_ok=True)
    meta = {"config": json.dumps(cfg, sort_keys=True)}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    safetensors_io.write(os.path.join(out_dir, "weights.safetensors"), weights, meta)
    safetensors_io.write(os.path.join(out_dir, "inputs.safetensors"), inputs, meta)
    safetensors_io.write(os.path.join(out_dir, "outputs.safetensors"), outputs, meta)
    files = ["config.json", "weights.safetensors", "inputs.safetensors", "outputs.safetensors"]
    sizes = {f: os.path.getsize(os.path.join(out_dir, f)) for f in files}
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(readme(name, cfg, sizes))
    print(f"{out_dir}: {sum(sizes.values()):,} bytes; losses " +
          ", ".join(f"{k}={outputs[k][0]:.6f}" for k in sorted(outputs) if ".loss_" in k))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="tests/data/golden")
    ap.add_argument("--only", choices=sorted(SETS), action="append")
    a = ap.parse_args()
    torch.set_num_threads(1)  # one reduction order: the same bytes on every rerun
    for name in a.only or sorted(SETS):
        write_set(a.root, name)


if __name__ == "__main__":
    main()
