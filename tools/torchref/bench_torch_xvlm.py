#!/usr/bin/python3
"""PyTorch timings of X-VLM base (Swin-B 224, BERT-base split 6/6) in fp32, the
side-by-side reference for the C benchmarks. Runs our reference model
(xvlm_ref.py, equal to the official code) with random weights.

    /usr/bin/python3 tools/torchref/bench_torch_xvlm.py [--threads 2] [--reps 5] [--only NAME ...]

Pieces (inference ones under torch.no_grad, eval mode):
  vision     vision encoder on B x 3 x 224 x 224 (+ mean CLS)
  text       text encoder (embeddings + layers 0-5) on B x L tokens
  fusion_itm fusion layers 6-11 + ITM head on B pairs (text states + 50 image tokens)
  box        fusion layers 6-11 + box head (sigmoid) on B pairs
  train      one region pretraining step: forward of ITC + ITM (argmax negatives)
             + MLM + box L1/GIoU on B texts / B images, then backward
  optimizer  the AdamW update (transformers-4.12.5 form) of every parameter
  step       one whole region update as the official Pretrain.py takes it:
             zero_grad, forward, backward, clip_grad_norm_(1.0) and
             torch.optim.AdamW (betas 0.9/0.98, eps 1e-8, decay 0.01) -- what
             bench_pretrain_step's "region update" line times in C
Each is run `--warmup` times, then `--reps` times (`--train-reps` for train);
the median wall time is reported (and the median CPU time of the process) with
GFLOP/s from flops.py (matrix products only, 2 per
multiply-add, training = 3x forward) and the process's peak RSS so far.
Dropout is off everywhere (eval-mode numerics), as in the C comparison."""
import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402
import xvlm_params  # noqa: E402
import xvlm_ref  # noqa: E402


def base_config():
    """X-VLM base as pretrained: config_swinB_224 + config_bert (fusion_layer 6)."""
    return {
        "embed_dim": 256, "temp": 0.07, "temp_clamp": [0.001, 0.5], "head_layer_norm_eps": 1e-05,
        "vision": {"image_res": 224, "swin_patch_size": 4, "patch_size": 32, "window_size": 7, "embed_dim": 128,
                   "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "vision_width": 1024, "in_chans": 3,
                   "mlp_ratio": 4.0, "layer_norm_eps": 1e-05, "num_patches": 49},
        "text": {"hidden_size": 768, "num_hidden_layers": 12, "fusion_layer": 6, "num_attention_heads": 12,
                 "intermediate_size": 3072, "vocab_size": 30522, "max_position_embeddings": 512,
                 "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0, "encoder_width": 1024},
    }


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def timed(fn, warmup, reps, before=None):
    """(median wall s, min wall s, median CPU s of this process) of fn() over
    reps runs after warmup runs; before() runs untimed ahead of every call. On a
    loaded machine the CPU time shows how much of the wall time was waiting."""
    wall, cpu = [], []
    for i in range(warmup + reps):
        if before:
            before()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if i >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def matmul_rate(n=1024, reps=5):
    """GFLOP/s of a plain n x n x n torch.mm now: the machine's reference rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    med = timed(lambda: torch.mm(a, b), 2, reps)[0]
    return 2 * n ** 3 / med / 1e9


def make_inputs(cfg, batch, length, masks, seed):
    """Full-length texts, B distinct images, one random region box per text (the
    first text whole-image), masked slots at random positions."""
    g = torch.Generator().manual_seed(seed)
    v, vocab = cfg["vision"], cfg["text"]["vocab_size"]
    n_side = v["image_res"] // v["patch_size"]
    ids = torch.randint(104, vocab, (batch, length), generator=g)  # ids past the special tokens
    ids[:, 0] = 101
    atts = torch.ones(batch, length, dtype=torch.long)
    masked_pos = torch.stack([torch.randperm(length - 1, generator=g)[:masks] + 1 for _ in range(batch)])
    masked = ids.clone()
    masked.scatter_(1, masked_pos, 103)
    image_atts = torch.zeros(batch, 1 + n_side * n_side, dtype=torch.long)
    image_atts[:, 0] = 1
    image_atts[0] = 1
    for b in range(1, batch):
        y0, x0 = torch.randint(0, n_side - 2, (2,), generator=g).tolist()
        for y in range(y0, y0 + 3):
            image_atts[b, 1 + y * n_side + x0:1 + y * n_side + x0 + 3] = 1
    target = torch.rand(batch, 4, generator=g) * 0.4 + 0.3
    target[0] = torch.tensor([0.5, 0.5, 1.0, 1.0])
    is_image = torch.zeros(batch, dtype=torch.long)
    is_image[0] = 1
    return {
        "image": torch.randn(batch, 3, v["image_res"], v["image_res"], generator=g),
        "text_ids": ids, "text_atts": atts, "text_ids_masked": masked, "masked_pos": masked_pos,
        "masked_ids": torch.gather(ids, 1, masked_pos), "idx_to_group_img": torch.arange(batch),
        "image_atts": image_atts, "target_bbox": target, "is_image": is_image,
    }


class AdamW:
    """transformers-4.12.5 AdamW: eps added to sqrt(v) (uncorrected), bias
    correction folded into the step size, decoupled decay after the update."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01):
        self.params, self.lr, self.betas, self.eps, self.wd = params, lr, betas, eps, weight_decay
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2 = self.betas
        size = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p, (m, v) in zip(self.params, self.state):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, v.sqrt().add_(self.eps), value=-size)
            p.add_(p, alpha=-self.lr * self.wd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=30, help="text tokens (16M pretraining: 30)")
    ap.add_argument("--masks", type=int, default=6, help="MLM slots per text (16M pretraining: 6)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train-reps", type=int, default=3)
    ap.add_argument("--config", help="a fixture-layout config.json instead of X-VLM base (for a quick run)")
    ap.add_argument("--only", action="append",
                    choices=["vision", "text", "fusion_itm", "box", "train", "optimizer", "step"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.config:
        with open(a.config) as f:
            cfg = json.load(f)
    else:
        cfg = base_config()
    only = set(a.only or ["vision", "text", "fusion_itm", "box", "train", "optimizer"])
    b, length = a.batch, a.length
    image_tokens = 1 + (cfg["vision"]["image_res"] // cfg["vision"]["patch_size"]) ** 2

    t0 = time.perf_counter()
    weights = xvlm_params.init_params(cfg, seed=0, perturb=False)
    params = xvlm_ref.load_params(weights, torch.float32)
    del weights
    model = xvlm_ref.XVLMRef(cfg, params)
    uniq = [t for _, t in xvlm_ref.unique_params(params)]
    inp = make_inputs(cfg, b, length, a.masks, seed=1)
    print(f"# torch {torch.__version__}, {a.threads} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {sum(t.numel() for t in uniq):,} parameters; setup {time.perf_counter() - t0:.1f} s")
    print(f"# reference torch.mm 1024^3: {matmul_rate():.1f} GFLOP/s")
    print(f"# {'piece':<11s} {'shape':<34s} {'median s':>9s} {'min s':>8s} {'cpu s':>8s} {'GFLOP':>8s} "
          f"{'GFLOP/s':>8s} {'peak RSS MiB':>12s}")

    def report(name, shape, fn, gflop, reps, before=None):
        med, best, cpu = timed(fn, a.warmup, reps, before)
        rate = f"{gflop / med:8.1f}" if gflop else f"{'-':>8s}"
        gf = f"{gflop:8.2f}" if gflop else f"{'-':>8s}"
        print(f"  {name:<11s} {shape:<34s} {med:9.4f} {best:8.4f} {cpu:8.3f} {gf} {rate} {peak_rss_mib():12.0f}",
              flush=True)

    with torch.no_grad():
        text_states = model.text_encode(inp["text_ids"], inp["text_atts"])[1]
        image_embeds = model.with_cls(model.vision_tokens(inp["image"][:1])[0]).expand(b, -1, -1).contiguous()
    ones = torch.ones(b, image_tokens, dtype=torch.long)
    eps = cfg["head_layer_norm_eps"]
    with torch.no_grad():
        if "vision" in only:
            report("vision", f"{b}x3x{cfg['vision']['image_res']}^2",
                   lambda: model.with_cls(model.vision_tokens(inp["image"])[0]),
                   flops.swin(cfg["vision"], b) / 1e9, a.reps)
        if "text" in only:
            report("text", f"{b}x{length} tokens", lambda: model.text_encode(inp["text_ids"], inp["text_atts"]),
                   flops.text(cfg["text"], b, length) / 1e9, a.reps)
        if "fusion_itm" in only:
            report("fusion_itm", f"{b} pairs, {length} + {image_tokens} tokens",
                   lambda: xvlm_ref.head_mlp(params, "itm_head",
                                             model.fusion(text_states, inp["text_atts"], image_embeds, ones)[:, 0],
                                             eps),
                   flops.fusion_itm(cfg, b, length, image_tokens) / 1e9, a.reps)
        if "box" in only:
            report("box", f"{b} pairs, {length} + {image_tokens} tokens",
                   lambda: model.bbox(image_embeds, text_states, inp["text_atts"]),
                   flops.fusion_box(cfg, b, length, image_tokens) / 1e9, a.reps)

    def zero_grads():
        for t in uniq:
            t.grad = None

    def train_step():
        out = model.step(inp, region=True)
        out["loss_total"].backward()

    if "train" in only:
        report("train", f"{b} texts/images, L {length}, {a.masks} masks", train_step,
               flops.pretrain_step(cfg, b, b, length, a.masks) / 1e9, a.train_reps, before=zero_grads)
    if "step" in only:
        torch_opt = torch.optim.AdamW(uniq, lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)

        def whole_step():
            torch_opt.zero_grad(set_to_none=True)
            model.step(inp, region=True)["loss_total"].backward()
            torch.nn.utils.clip_grad_norm_(uniq, 1.0)
            torch_opt.step()

        report("step", f"{b} texts/images, L {length}, {a.masks} masks", whole_step,
               flops.pretrain_step(cfg, b, b, length, a.masks) / 1e9, a.train_reps)
    if "optimizer" in only:
        if uniq[0].grad is None:
            for t in uniq:
                t.grad = torch.full_like(t, 1e-3)
        opt = AdamW(uniq)
        report("optimizer", f"AdamW, {sum(t.numel() for t in uniq) / 1e6:.1f}M params", opt.step, 0, a.reps)


if __name__ == "__main__":
    main()
