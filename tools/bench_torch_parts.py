#!/usr/bin/python3
"""PyTorch fp32 timings of the four X-VLM base inference pieces, the side-by-side
reference for bench/bench_xvlm_base.c (same pieces, shapes and FLOP convention).

    /usr/bin/python3 tools/bench_torch_parts.py [--threads 2] [--reps 5] [--only PIECE ...] [--precision bf16]

A minimal model written for timing only: random weights, eval mode, under
torch.no_grad(), with the tensor operations of the official code (Swin:
roll + window partition by view/permute, q*scale @ k^T + relative-position
bias + shift mask, softmax, @ v; BERT: transpose_for_scores, scores / sqrt(d)
+ additive mask, softmax, context permute; exact-erf GELU; LayerNorm).
--precision bf16 converts every weight, buffer, input and mask to bfloat16, as
`model.bfloat16()` does to the official model (CPU autocast fails on the
official Swin code in torch 1.13), so the whole forward runs in bf16.

Pieces:
  vision      Swin-B 224 on B images, then the mean token prepended (1 + 49 tokens)
  text        embeddings + layers [0, 6) on B x L tokens
  fusion_itm  layers [6, 12) with cross-attention to 1 + 49 image tokens, ITM head
  box         the same fusion (no image mask) + box head + sigmoid
Each runs once as warm-up, then --reps times; the report has the median and
best wall seconds, the median CPU seconds of the process (all threads),
GFLOP/s on the median and its fraction of torch.mm 1024^3 (same OpenBLAS),
and GFLOP per CPU-second with its fraction of torch.mm's. FLOPs count matrix products only, 2 per multiply-add:
  Swin block 24*T*C^2 + 4*T*w^2*C, patch merging 4*T*C^2, patch embedding
  2*T0*(3*p^2)*C0; BERT self layer 8*L*H^2 + 4*L^2*H + 4*L*H*I; cross-attention
  4*L*H^2 + 4*K*Cv*H + 4*L*K*H; head MLP 2*H*2H + 2*2H*out per row."""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

SWIN = {"res": 224, "patch": 4, "embed": 128, "depths": [2, 2, 18, 2], "heads": [4, 8, 16, 32], "window": 7,
        "mlp_ratio": 4, "eps": 1e-5}
BERT = {"hidden": 768, "heads": 12, "inter": 3072, "vocab": 30522, "positions": 512, "fusion": 6, "layers": 12,
        "width": 1024, "eps": 1e-12}
HEAD_EPS = 1e-5


def randn(*shape, std=0.02):
    return torch.randn(*shape) * std


DTYPE = torch.float32  # of the weights, inputs and masks (--precision)


def to_dtype(obj, seen=None):
    """Every floating-point tensor reachable from obj's attributes (and lists), converted to DTYPE in place."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.to(DTYPE) if obj.is_floating_point() else obj
    if isinstance(obj, list):
        obj[:] = [to_dtype(x, seen) for x in obj]
    elif hasattr(obj, "__dict__"):
        for k, v in vars(obj).items():
            setattr(obj, k, to_dtype(v, seen))
    return obj


class Linear:
    def __init__(self, i, o, bias=True):
        self.w, self.b = randn(o, i), (torch.zeros(o) if bias else None)

    def __call__(self, x):
        return F.linear(x, self.w, self.b)


class LayerNorm:
    def __init__(self, n, eps):
        self.w, self.b, self.eps = torch.ones(n), torch.zeros(n), eps

    def __call__(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)


# ---------------------------------------------------------------- Swin

def rel_index(w):
    c = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    d = (c[:, :, None] - c[:, None, :]).permute(1, 2, 0) + (w - 1)
    return d[..., 0] * (2 * w - 1) + d[..., 1]


def shift_mask(res, w, s):
    lab = torch.zeros(res, res)
    cuts = (slice(0, -w), slice(-w, -s), slice(-s, None))
    n = 0
    for hs in cuts:
        for ws in cuts:
            lab[hs, ws] = n
            n += 1
    win = lab.view(res // w, w, res // w, w).permute(0, 2, 1, 3).reshape(-1, w * w)
    m = win[:, None, :] - win[:, :, None]
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


class SwinBlock:
    def __init__(self, dim, heads, res, w, shift):
        self.dim, self.heads, self.res, self.w, self.shift = dim, heads, res, w, shift
        self.norm1, self.norm2 = LayerNorm(dim, SWIN["eps"]), LayerNorm(dim, SWIN["eps"])
        self.qkv, self.proj = Linear(dim, 3 * dim), Linear(dim, dim)
        self.fc1, self.fc2 = Linear(dim, SWIN["mlp_ratio"] * dim), Linear(SWIN["mlp_ratio"] * dim, dim)
        self.table = randn((2 * w - 1) ** 2, heads)
        self.index = rel_index(w).reshape(-1)
        self.mask = shift_mask(res, w, shift) if shift else None
        self.scale = (dim // heads) ** -0.5

    def attention(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        a = q @ k.transpose(-2, -1)
        bias = self.table[self.index].view(n, n, -1).permute(2, 0, 1).contiguous()
        a = a + bias.unsqueeze(0)
        if self.mask is not None:
            nw = self.mask.shape[0]
            a = a.view(b // nw, nw, self.heads, n, n) + self.mask.unsqueeze(1).unsqueeze(0)
            a = a.view(-1, self.heads, n, n)
        a = a.softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))

    def __call__(self, x):
        b, t, c = x.shape
        r, w, s = self.res, self.w, self.shift
        h = self.norm1(x).view(b, r, r, c)
        if s:
            h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
        h = h.view(b, r // w, w, r // w, w, c).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w * w, c)
        h = self.attention(h)
        h = h.view(b, r // w, r // w, w, w, c).permute(0, 1, 3, 2, 4, 5).contiguous().view(b, r, r, c)
        if s:
            h = torch.roll(h, shifts=(s, s), dims=(1, 2))
        x = x + h.view(b, t, c)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class PatchMerge:
    def __init__(self, dim, res):
        self.res, self.norm, self.red = res, LayerNorm(4 * dim, SWIN["eps"]), Linear(4 * dim, 2 * dim, bias=False)

    def __call__(self, x):
        b, _, c = x.shape
        x = x.view(b, self.res, self.res, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.red(self.norm(x.view(b, -1, 4 * c)))


class Swin:
    def __init__(self):
        p, e = SWIN["patch"], SWIN["embed"]
        self.patch_w, self.patch_b = randn(e, 3, p, p), torch.zeros(e)
        self.patch_norm = LayerNorm(e, SWIN["eps"])
        self.layers = []
        res = SWIN["res"] // p
        for st, (depth, heads) in enumerate(zip(SWIN["depths"], SWIN["heads"])):
            dim, w = e * 2 ** st, min(SWIN["window"], res)
            shift = 0 if res <= SWIN["window"] else w // 2
            for i in range(depth):
                self.layers.append(SwinBlock(dim, heads, res, w, shift if i % 2 else 0))
            if st + 1 < len(SWIN["depths"]):
                self.layers.append(PatchMerge(dim, res))
                res //= 2
        self.norm = LayerNorm(e * 2 ** (len(SWIN["depths"]) - 1), SWIN["eps"])

    def __call__(self, img):
        x = F.conv2d(img, self.patch_w, self.patch_b, stride=SWIN["patch"]).flatten(2).transpose(1, 2)
        x = self.patch_norm(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        cls = F.adaptive_avg_pool1d(x.transpose(1, 2), 1).transpose(1, 2)
        return torch.cat([cls, x], dim=1)


# ---------------------------------------------------------------- BERT

class Attention:
    def __init__(self, kv_in):
        h = BERT["hidden"]
        self.q, self.k, self.v, self.o = Linear(h, h), Linear(kv_in, h), Linear(kv_in, h), Linear(h, h)
        self.ln = LayerNorm(h, BERT["eps"])

    def split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, BERT["heads"], -1).permute(0, 2, 1, 3)

    def __call__(self, x, kv, mask):
        q, k, v = self.split(self.q(x)), self.split(self.k(kv)), self.split(self.v(kv))
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask
        c = (s.softmax(dim=-1) @ v).permute(0, 2, 1, 3).contiguous().view(x.shape)
        return self.ln(self.o(c) + x)


class BertLayer:
    def __init__(self, cross):
        h = BERT["hidden"]
        self.self_attn = Attention(h)
        self.cross = Attention(BERT["width"]) if cross else None
        self.inter, self.out = Linear(h, BERT["inter"]), Linear(BERT["inter"], h)
        self.ln = LayerNorm(h, BERT["eps"])

    def __call__(self, x, mask, image=None, image_mask=None):
        x = self.self_attn(x, x, mask)
        if self.cross:
            x = self.cross(x, image, image_mask)
        return self.ln(self.out(F.gelu(self.inter(x))) + x)


class Bert:
    def __init__(self):
        h = BERT["hidden"]
        self.word, self.pos, self.type = randn(BERT["vocab"], h), randn(BERT["positions"], h), randn(2, h)
        self.emb_ln = LayerNorm(h, BERT["eps"])
        self.layers = [BertLayer(i >= BERT["fusion"]) for i in range(BERT["layers"])]

    def text(self, ids, atts):
        n = ids.shape[1]
        x = F.embedding(ids, self.word) + F.embedding(torch.zeros_like(ids), self.type)
        x = self.emb_ln(x + F.embedding(torch.arange(n), self.pos))
        mask = ((1.0 - atts[:, None, None, :].float()) * -10000.0).to(DTYPE)
        for layer in self.layers[:BERT["fusion"]]:
            x = layer(x, mask)
        return x

    def fusion(self, x, atts, image, image_atts):
        mask = ((1.0 - atts[:, None, None, :].float()) * -10000.0).to(DTYPE)
        image_mask = ((1.0 - image_atts[:, None, None, :].float()) * -10000.0).to(DTYPE)
        for layer in self.layers[BERT["fusion"]:]:
            x = layer(x, mask, image, image_mask)
        return x


class Head:
    def __init__(self, out):
        h = BERT["hidden"]
        self.fc0, self.ln, self.fc3 = Linear(h, 2 * h), LayerNorm(2 * h, HEAD_EPS), Linear(2 * h, out)

    def __call__(self, x):
        return self.fc3(F.gelu(self.ln(self.fc0(x))))


# ---------------------------------------------------------------- FLOPs

def swin_flops(images):
    t0 = (SWIN["res"] // SWIN["patch"]) ** 2
    f = 2 * t0 * 3 * SWIN["patch"] ** 2 * SWIN["embed"]
    res = SWIN["res"] // SWIN["patch"]
    for st, depth in enumerate(SWIN["depths"]):
        t, c, w = res * res, SWIN["embed"] * 2 ** st, min(SWIN["window"], res)
        f += depth * (24 * t * c * c + 4 * t * w * w * c)
        if st + 1 < len(SWIN["depths"]):
            f += 4 * t * c * c
            res //= 2
    return images * f


def bert_self_flops(n, length):
    h, i = BERT["hidden"], BERT["inter"]
    return n * (8 * length * h * h + 4 * length * length * h + 4 * length * h * i)


def fusion_flops(n, length, k, out):
    h, cv = BERT["hidden"], BERT["width"]
    cross = n * (4 * length * h * h + 4 * k * cv * h + 4 * length * k * h)
    layers = BERT["layers"] - BERT["fusion"]
    return layers * (bert_self_flops(n, length) + cross) + n * (2 * h * 2 * h + 2 * 2 * h * out)


# ---------------------------------------------------------------- timing

def timed(fn, reps):
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def mm_rate(n=1024, dtype=torch.float32):
    """torch.mm n^3: (GFLOP/s, GFLOP per CPU-second)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    med, _, cpu = timed(lambda: torch.mm(a, b), 9)
    return 2 * n ** 3 / med / 1e9, 2 * n ** 3 / cpu / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", action="append", choices=["vision", "text", "fusion_itm", "box"])
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    global DTYPE
    DTYPE = torch.bfloat16 if a.precision == "bf16" else torch.float32
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b, n = a.batch, a.length
    swin, bert, itm, box = Swin(), Bert(), Head(2), Head(4)
    to_dtype([swin, bert, itm, box])
    images = torch.randn(b, 3, SWIN["res"], SWIN["res"]).to(DTYPE)
    ids = torch.randint(104, BERT["vocab"], (b, n))
    ids[:, 0] = 101
    atts = torch.ones(b, n, dtype=torch.long)
    only = set(a.only or ["vision", "text", "fusion_itm", "box"])
    with torch.no_grad():
        image_embeds = swin(images)
        text_states = bert.text(ids, atts)
        k = image_embeds.shape[1]
        image_atts = torch.ones(b, k, dtype=torch.long)
        pieces = [
            ("vision", f"{b}x3x{SWIN['res']}^2", lambda: swin(images), swin_flops(b)),
            ("text", f"{b}x{n} tokens", lambda: bert.text(ids, atts), BERT["fusion"] * bert_self_flops(b, n)),
            ("fusion_itm", f"{b} pairs, {n} + {k} tokens",
             lambda: itm(bert.fusion(text_states, atts, image_embeds, image_atts)[:, 0]),
             fusion_flops(b, n, k, 2)),
            ("box", f"{b} pairs, {n} + {k} tokens",
             lambda: torch.sigmoid(box(bert.fusion(text_states, atts, image_embeds, image_atts)[:, 0])),
             fusion_flops(b, n, k, 4)),
        ]
        peak, peak_cpu = mm_rate()
        print(f"# torch {torch.__version__}, {a.threads} threads, {a.precision}")
        print(f"# torch.mm 1024^3 before: {peak:.1f} GFLOP/s, {peak_cpu:.1f} GFLOP/cpu-s")
        if DTYPE != torch.float32:
            print(f"# torch.mm 1024^3 bf16 before: {mm_rate(dtype=DTYPE)[0]:.1f} GFLOP/s")
        print(f"# {'piece':<11s} {'shape':<26s} {'median s':>9s} {'best s':>8s} {'cpu s':>8s} {'GFLOP':>8s} "
              f"{'GFLOP/s':>8s} {'%peak':>6s} {'GF/cpu-s':>9s} {'%peak':>6s}")
        for name, shape, fn, flops in pieces:
            if name not in only:
                continue
            med, best, cpu = timed(fn, a.reps)
            gf = flops / 1e9
            print(f"  {name:<11s} {shape:<26s} {med:9.4f} {best:8.4f} {cpu:8.3f} {gf:8.2f} {gf / med:8.1f} "
                  f"{100 * gf / med / peak:5.0f}% {gf / cpu:9.1f} {100 * gf / cpu / peak_cpu:5.0f}%", flush=True)
        after, after_cpu = mm_rate()
        print(f"# torch.mm 1024^3 after: {after:.1f} GFLOP/s, {after_cpu:.1f} GFLOP/cpu-s")
        if DTYPE != torch.float32:
            print(f"# torch.mm 1024^3 bf16 after: {mm_rate(dtype=DTYPE)[0]:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
