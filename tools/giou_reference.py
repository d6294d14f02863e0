#!/usr/bin/python3
"""Reference values for tests/unit/test_ops_loss.c: 1 - GIoU and its autograd
gradients at tie and touching configurations (PyTorch's subgradient rules),
computed with the same formulas as the official box_ops (re-typed here).
Run: /usr/bin/python3 tools/giou_reference.py"""
import torch


def corners(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def giou_loss(p, t):
    a, b = corners(p), corners(t)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_a + area_b - inter
    iou = inter / union
    lt = torch.min(a[:, :2], b[:, :2])
    rb = torch.max(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    enc = wh[:, 0] * wh[:, 1]
    return 1 - (iou - (enc - union) / enc)


cases = {
    "identical": ([0.5, 0.5, 0.4, 0.3], [0.5, 0.5, 0.4, 0.3]),
    "shared_edges": ([0.375, 0.5, 0.25, 0.5], [0.5, 0.5, 0.5, 0.5]),
    "touching": ([0.375, 0.5, 0.25, 0.5], [0.625, 0.5, 0.25, 0.5]),
}
for name, (p, t) in cases.items():
    p = torch.tensor([p], requires_grad=True)
    t = torch.tensor([t], requires_grad=True)
    loss = giou_loss(p, t)
    loss.sum().backward()
    fmt = lambda v: ", ".join("%.9gf" % x for x in v.flatten().tolist())
    print("%s: loss %.9g\n  dpred {%s}\n  dtarget {%s}" % (name, loss.item(), fmt(p.grad), fmt(t.grad)))
