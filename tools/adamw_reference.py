#!/usr/bin/python3
"""Reference numbers for tests/unit/test_adamw.c (run with /usr/bin/python3, torch 1.13).

torch.optim.AdamW differs from the transformers-4.12.5 AdamW that the official
optim.py uses (eps placement, decay order), so the HF update is written out here
with torch fp32 tensor ops, in the same op order as transformers' AdamW.step.
Parameter groups follow optim.py: no_decay by substring, init_params get lr*lr_mult.
Inputs are exact binary fractions, so the C test rebuilds them without pasting.

Prints a C fragment to paste into the test.
"""
import math

import torch

LR, WD, LR_MULT = 0.1, 0.1, 2.0
BETAS, EPS = (0.9, 0.98), 1e-8
FACTORS = [0.0, 0.5, 1.0, 0.875]  # schedule N=10, W=2 at t=0,1,2 then 0.875 (t=3)
NO_DECAY = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias", "norm.weight",
            "norm1.bias", "norm1.weight", "norm2.bias", "norm2.weight"]
# (name, numel, in init_params)
PARAMS = [
    ("text_encoder.bert.encoder.layer.0.attention.self.query.weight", 6, False),
    ("text_encoder.bert.encoder.layer.0.attention.self.query.bias", 3, False),
    ("itm_head.0.weight", 4, True),
    ("itm_head.1.bias", 2, True),
    ("temp", 1, True),
]


def init_value(p, k):
    return ((p * 5 + k) % 9 - 4) * 0.125


def grad_value(p, k, step):
    # element 0 of every parameter but the scalar has a zero gradient at every step
    if k == 0 and p != 4:
        return 0.0
    return ((p * 3 + k * 7 + step * 5) % 11 - 5) * 0.0625


def c_float(x):
    s = f"{x:.9g}"
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"


def main():
    out = []
    for pi, (name, n, large) in enumerate(PARAMS):
        p = torch.tensor([init_value(pi, k) for k in range(n)], dtype=torch.float32)
        m = torch.zeros_like(p)
        v = torch.zeros_like(p)
        decay = not any(nd in name for nd in NO_DECAY)
        base_lr = LR * LR_MULT if large else LR
        wd = WD if decay else 0.0
        for step, factor in enumerate(FACTORS, start=1):
            g = torch.tensor([grad_value(pi, k, step) for k in range(n)], dtype=torch.float32)
            lr = base_lr * factor  # LambdaLR: initial lr * lambda
            m.mul_(BETAS[0]).add_(g, alpha=1.0 - BETAS[0])
            v.mul_(BETAS[1]).addcmul_(g, g, value=1.0 - BETAS[1])
            denom = v.sqrt().add_(EPS)
            step_size = lr * math.sqrt(1.0 - BETAS[1] ** step) / (1.0 - BETAS[0] ** step)
            p.addcdiv_(m, denom, value=-step_size)
            if wd > 0.0:
                p.add_(p, alpha=-lr * wd)
        out.append((name, p, m, v))
    for name, p, m, v in out:
        print(f"    /* {name} */")
        for label, t in (("p", p), ("m", m), ("v", v)):
            vals = ", ".join(c_float(x) for x in t.tolist())
            print(f"    {{{vals}}}, /* {label} */")


if __name__ == "__main__":
    main()
