#!/usr/bin/python3
"""Side-by-side reference for bench/bench_train.c: one transformers-4.12.5 AdamW
update (the op sequence of AdamW.step, written with torch 1.13 fp32 tensor ops)
over the pretraining model's parameter count in 768x768-sized tensors, and
torch's global grad norm (clip_grad_norm_ with an infinite max_norm).

usage: /usr/bin/python3 tools/bench_adamw_torch.py [n_params] [threads]
"""
import math
import statistics
import sys
import time

import torch

CHUNK = 768 * 768


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 215637241
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    sizes = [CHUNK] * (total // CHUNK) + ([total % CHUNK] if total % CHUNK else [])
    params = [torch.rand(n) - 0.5 for n in sizes]
    for p in params:
        p.grad = (torch.rand(p.numel()) - 0.5) * 0.08
    state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    lr, wd, (b1, b2), eps = 1e-4, 0.01, (0.9, 0.98), 1e-8
    step = [0]

    def adamw_step():
        step[0] += 1
        for p, (m, v) in zip(params, state):
            g = p.grad
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = v.sqrt().add_(eps)
            step_size = lr * math.sqrt(1.0 - b2 ** step[0]) / (1.0 - b1 ** step[0])
            p.addcdiv_(m, denom, value=-step_size)
            p.add_(p, alpha=-lr * wd)

    def grad_norm():
        torch.nn.utils.clip_grad_norm_(params, float("inf"))

    for name, fn, reps in (("adamw step", adamw_step, 5), ("grad norm", grad_norm, 5)):
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"torch {name:11s} {total} params ({len(sizes)} tensors): {statistics.median(times) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
