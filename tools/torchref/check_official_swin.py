#!/usr/bin/python3
"""Cross-checks a golden set's vision outputs against the official Swin file run
as is (the official tiny fixture only covers 224 px / window 7; this covers the
window and resolution of the set).

    /usr/bin/python3 tools/torchref/check_official_swin.py DIR [--repo PATH]

Imports models/swin_transformer.py from a checkout of the official repository
(--repo, default $XVLM_OFFICIAL_REPO; a bare mirror is read with `git show`),
with a stand-in for the three timm helpers it imports (timm is not installed;
DropPath is the identity in eval mode). Builds SwinTransformer with the set's
config (mlp_ratio 4, qkv_bias, patch_norm, no ape: the official build), loads the
`vision_encoder.*` weights and runs both steps in float64. Compares
`vision_embeds`, `swin_stage0..3` (image step) and `region_vision_embeds` (region
step) with the stored outputs; exit 0 when all are within --tol of
max(1, max|ref|). A development check: CI has no official checkout."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import types
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

MIRROR = os.environ.get("XVLM_OFFICIAL_REPO")  # a checkout or bare mirror of zengyan-97/X-VLM


def stub_timm():
    """timm.models.layers.{DropPath, to_2tuple, trunc_normal_}: only what the
    constructor needs; initial values do not matter (weights are loaded)."""
    layers = types.ModuleType("timm.models.layers")

    class DropPath(nn.Identity):
        def __init__(self, drop_prob=None):
            super().__init__()

    layers.DropPath = DropPath
    layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    layers.trunc_normal_ = lambda t, mean=0.0, std=1.0, a=-2.0, b=2.0: t
    timm = types.ModuleType("timm")
    timm.models = types.ModuleType("timm.models")
    timm.models.layers = layers
    sys.modules.update({"timm": timm, "timm.models": timm.models, "timm.models.layers": layers})


def load_official_swin(repo):
    source = subprocess.run(["git", "-C", repo, "show", "HEAD:models/swin_transformer.py"], check=True,
                            capture_output=True, text=True).stdout
    stub_timm()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "official_swin_transformer.py")
        with open(path, "w") as f:
            f.write(source)
        sys.path.insert(0, tmp)
        import official_swin_transformer as m  # noqa: E402
        sys.path.remove(tmp)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--repo", default=MIRROR)
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    if not a.repo:
        ap.error("no official repository: pass --repo PATH or set XVLM_OFFICIAL_REPO")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="torch.meshgrid")  # raised inside the official file
    with open(os.path.join(a.dir, "config.json")) as f:
        v = json.load(f)["vision"]
    weights, _ = safetensors_io.read(os.path.join(a.dir, "weights.safetensors"))
    inputs, _ = safetensors_io.read(os.path.join(a.dir, "inputs.safetensors"))
    ref, _ = safetensors_io.read(os.path.join(a.dir, "outputs.safetensors"))

    m = load_official_swin(a.repo)
    swin = m.SwinTransformer(img_size=v["image_res"], patch_size=4, in_chans=3, embed_dim=v["embed_dim"],
                             depths=v["depths"], num_heads=v["num_heads"], window_size=v["window_size"],
                             mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, drop_path_rate=0.1, ape=False,
                             patch_norm=True, use_checkpoint=False).double().eval()
    state = {k[len("vision_encoder."):]: torch.tensor(x, dtype=torch.float64)
             for k, x in weights.items() if k.startswith("vision_encoder.")}
    msg = swin.load_state_dict(state, strict=False)
    stray = [k for k in msg.missing_keys if not k.endswith(("relative_position_index", "attn_mask"))]
    if stray or msg.unexpected_keys:
        print("state_dict mismatch: missing", stray, "unexpected", msg.unexpected_keys)
        sys.exit(1)

    stages = []
    for layer in swin.layers:
        layer.register_forward_hook(lambda mod, inp, out: stages.append(out[:1].detach()))
    ours = {}
    with torch.no_grad():
        ours["image.vision_embeds"] = swin(torch.tensor(inputs["image.image"], dtype=torch.float64))
        ours.update({f"image.swin_stage{s}": x for s, x in enumerate(stages)})
        region, full = swin(torch.tensor(inputs["region.image"], dtype=torch.float64),
                            idx_to_group_img=torch.tensor(inputs["region.idx_to_group_img"]),
                            image_atts=torch.tensor(inputs["region.image_atts"]))
        ours["region.region_vision_embeds"], ours["region.vision_embeds"] = region, full
    ok = True
    for name, x in sorted(ours.items()):
        r = ref[name].astype(np.float64)
        err = float(np.max(np.abs(x.numpy() - r))) / max(1.0, float(np.max(np.abs(r))))
        ok = ok and err <= a.tol
        print(f"  {err:.3e}  {name} {list(r.shape)}")
    print("PASS" if ok else "FAIL", f"(official Swin vs {a.dir}, tolerance {a.tol:g} of max(1, max|ref|))")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
