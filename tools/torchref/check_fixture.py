#!/usr/bin/python3
"""Runs the reference (xvlm_ref.py) on a golden set in the fixture layout and
compares every output and every grad.<name> with its outputs.safetensors.

    /usr/bin/python3 tools/torchref/check_fixture.py [DIR] [--dtype float32|float64|both] [--tol 1e-5]

DIR defaults to the official fixture ../shared/fixtures/tiny. Per tensor the
error is max|ours - ref| / max(1, max|ref|) (the fixture README's measure); the
check fails if any tensor exceeds --tol, if a name is missing on either side, or
if the ITM negatives stored in the inputs are not the argmax of our sampling
weights. Exit status 0 = all within tolerance."""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import xvlm_ref  # noqa: E402

OFFICIAL_TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "tiny")


# Below this magnitude a reference tensor holds rounding noise of a gradient that
# is zero in exact arithmetic (e.g. attention key biases: softmax ignores a
# constant added to all scores), so a strict relative error means nothing there.
NOISE_FLOOR = 1e-6


def rel_error(ours, ref):
    """(max|d| / max(1, max|ref|), max|d| / max|ref| or 0 below NOISE_FLOOR)."""
    r = ref.astype(np.float64).ravel()
    o = ours.astype(np.float64).ravel()
    if r.size == 0:
        return 0.0, 0.0
    d, m = float(np.max(np.abs(o - r))), float(np.max(np.abs(r)))
    return d / max(1.0, m), (d / m if m >= NOISE_FLOOR else 0.0)


def run_step(cfg, weights, inputs, step, dtype):
    """Our outputs of one step (forward + grads) as {name: float32 numpy}."""
    torch.set_grad_enabled(True)
    params = xvlm_ref.load_params(weights, dtype)
    model = xvlm_ref.XVLMRef(cfg, params)
    inp = xvlm_ref.inputs_to_torch(inputs, step, dtype)
    out = model.step(inp, region=(step == "region"))
    grads, _ = xvlm_ref.grads(params, out["loss_total"])
    neg_img, neg_txt = model.hard_negatives(out["image_feat"].detach(), out["text_feat"].detach())
    result = {k: v.detach().reshape(-1) if v.dim() == 0 else v.detach() for k, v in out.items()}
    for k in ("loss_itc", "loss_itm", "loss_mlm", "loss_bbox", "loss_giou", "loss_total"):
        if k in result:
            result[k] = result[k].reshape(1)
    result.update({"grad." + k: v for k, v in grads.items()})
    negatives_ok = (torch.equal(neg_img, inp["itm_neg_image_idx"]) and torch.equal(neg_txt, inp["itm_neg_text_idx"]))
    return {k: v.to(torch.float32).numpy() for k, v in result.items()}, negatives_ok


def check(directory, dtype, tol, show):
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    weights, _ = safetensors_io.read(os.path.join(directory, "weights.safetensors"))
    inputs, _ = safetensors_io.read(os.path.join(directory, "inputs.safetensors"))
    ref, _ = safetensors_io.read(os.path.join(directory, "outputs.safetensors"))
    ok = True
    for step in cfg["grad_steps"]:
        ours, negatives_ok = run_step(cfg, weights, inputs, step, dtype)
        names = sorted(k[len(step) + 1:] for k in ref if k.startswith(step + "."))
        missing = [k for k in names if k not in ours]
        extra = [k for k in ours if k not in names]
        both = {k: rel_error(ours[k], ref[f"{step}.{k}"]) for k in names if k not in missing}
        errs = sorted(((e[0], k) for k, e in both.items()), reverse=True)
        strict, strict_name = max(((e[1], k) for k, e in both.items()), default=(0.0, ""))
        worst_out = max([e for e, k in errs if not k.startswith("grad.")], default=0.0)
        worst_grad = max([e for e, k in errs if k.startswith("grad.")], default=0.0)
        bad = [(e, k) for e, k in errs if not e <= tol]
        print(f"[{str(dtype)[6:]}] {step}: {len(names)} tensors; max rel diff outputs {worst_out:.3e}, "
              f"grads {worst_grad:.3e}; negatives {'= argmax' if negatives_ok else 'DIFFER from argmax'}")
        print(f"    strict max|d|/max|ref| (tensors with max|ref| >= {NOISE_FLOOR:g}): {strict:.3e} ({strict_name})")
        for e, k in errs[:show]:
            print(f"    {e:.3e}  {k}")
        for k in missing:
            print(f"    missing  {k}")
        for k in extra:
            print(f"    extra    {k}")
        ok = ok and not bad and not missing and not extra and negatives_ok
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", default=OFFICIAL_TINY)
    ap.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--show", type=int, default=5, help="worst tensors listed per step")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtypes = ["float32", "float64"] if a.dtype == "both" else [a.dtype]
    ok = all([check(a.dir, getattr(torch, d), a.tol, a.show) for d in dtypes])
    print("PASS" if ok else "FAIL", f"(tolerance {a.tol:g} relative to max(1, max|ref|))")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
