#!/usr/bin/python3
"""C against PyTorch on the four X-VLM base inference pieces, interleaved in one
time window: bench_xvlm_base and tools/bench_torch_parts.py take turns for
--rounds rounds (same threads, batch, length, reps), then one markdown table.

    /usr/bin/python3 tools/compare_parts.py [--bench build/bench/bench_xvlm_base]
        [--rounds 3] [--threads 2] [--batch 8] [--reps 5] [--only PIECE ...]
        [--weights W.safetensors] [--precision fp32|bf16|both]

Per piece and side: the median of the rounds' median wall seconds, the best
wall seconds of all runs, the median CPU seconds (all threads of the process);
for C, GFLOP/s on the best run and GFLOP per CPU-second against sgemm's
(OpenBLAS 1024^3, measured in the same runs; torch.mm is the same library).
Speedup = PyTorch seconds / C seconds (wall: median, best; and CPU seconds).
On a machine shared with other jobs the best run is the closest to an
unloaded one; the medians show the typical load, and CPU seconds below
threads x wall mean time spent waiting for cores. The 1-minute load average
is read before every run and after the last; its range heads the table.

--precision bf16 runs both sides in bf16 (C: --precision bf16, bf16 Linear
products; PyTorch: every tensor converted to bfloat16, as model.bfloat16());
both takes turns between all four (PyTorch fp32, C fp32, PyTorch bf16, C
bf16) in each round, prints the fp32 and bf16 tables, then one table of the
four median wall and CPU seconds with C bf16's speedups. --weights passes a
file written by bench_xvlm_base --save-weights to the C side (no random
initialisation of 215 M parameters per run)."""
import argparse
import os
import statistics
import subprocess
import sys

PIECES = ["vision", "text", "fusion_itm", "box"]


def run(cmd):
    """rows per piece; the fp32 1024^3 rates (GFLOP/s, GFLOP/cpu-s); the bf16 1024^3 rates (GFLOP/s)."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows, peaks, bf16 = {}, [], []
    for line in out.splitlines():
        f = line.split()
        if line.startswith("#") and "1024^3 bf16" in line:  # torch.mm in bf16
            bf16.append(float(f[f.index("GFLOP/s") - 1]))
            continue
        if line.startswith("# Linear 1024^3"):  # C: "fp32 R GFLOP/s, bf16 R GFLOP/s"
            bf16.append(float(f[f.index("bf16") + 1]))
            continue
        if line.startswith("#"):
            if "GFLOP/s," in line and ("sgemm" in line or "torch.mm" in line):
                peaks.append((float(f[f.index("GFLOP/s,") - 1]), float(f[f.index("GFLOP/cpu-s") - 1])))
            continue
        if f and f[0] in PIECES:
            # name, shape words..., median, best, cpu, GFLOP, GFLOP/s, %peak, GF/cpu-s, %peak
            rows[f[0]] = {"median": float(f[-8]), "best": float(f[-7]), "cpu": float(f[-6]), "gflop": float(f[-5])}
    return rows, peaks, bf16


def agg(res, side, piece):
    runs = [x[piece] for x in res[side]]
    return {"median": statistics.median(x["median"] for x in runs), "best": min(x["best"] for x in runs),
            "cpu": statistics.median(x["cpu"] for x in runs), "gflop": runs[0]["gflop"]}


def table(res, peaks, pieces, c_side, t_side):
    """The C-against-PyTorch table of one precision."""
    print("| piece | GFLOP | PyTorch median s | C median s | speedup | PyTorch best s | C best s | speedup (best) "
          "| PyTorch CPU s | C CPU s | speedup (CPU) | PyTorch GFLOP/s (best) | C GFLOP/s (best) "
          "| PyTorch GFLOP/cpu-s | C GFLOP/cpu-s | C of sgemm GFLOP/cpu-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    peak_cpu = statistics.median(p[1] for p in peaks[c_side])
    for p in pieces:
        t, c = agg(res, t_side, p), agg(res, c_side, p)
        g = c["gflop"]
        print(f"| {p} | {g:.1f} | {t['median']:.3f} | {c['median']:.3f} | {t['median'] / c['median']:.2f}x "
              f"| {t['best']:.3f} | {c['best']:.3f} | {t['best'] / c['best']:.2f}x | {t['cpu']:.2f} | {c['cpu']:.2f} "
              f"| {t['cpu'] / c['cpu']:.2f}x | {g / t['best']:.0f} | {g / c['best']:.0f} | {g / t['cpu']:.0f} "
              f"| {g / c['cpu']:.0f} | {100 * g / c['cpu'] / peak_cpu:.0f}% |")


def table_four(res, pieces):
    """C bf16 against C fp32, PyTorch bf16 and PyTorch fp32: median wall s (median CPU s)."""
    print("| piece | PyTorch fp32 | C fp32 | PyTorch bf16 | C bf16 | C bf16 vs C fp32 | vs PyTorch bf16 "
          "| vs PyTorch fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for p in pieces:
        a = {side: agg(res, side, p) for side in ("torch", "C", "torch bf16", "C bf16")}
        cb = a["C bf16"]
        cells = " | ".join(f"{a[s]['median']:.3f} s ({a[s]['cpu']:.2f})" for s in ("torch", "C", "torch bf16", "C bf16"))
        ratios = " | ".join(f"{a[s]['median'] / cb['median']:.2f}x ({a[s]['cpu'] / cb['cpu']:.2f}x)"
                            for s in ("C", "torch bf16", "torch"))
        print(f"| {p} | {cells} | {ratios} |")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(root, "build", "bench", "bench_xvlm_base"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", action="append", choices=PIECES)
    ap.add_argument("--weights")
    ap.add_argument("--precision", choices=["fp32", "bf16", "both"], default="fp32")
    a = ap.parse_args()
    pieces = a.only or PIECES
    common = ["--threads", str(a.threads), "--batch", str(a.batch), "--reps", str(a.reps)]
    for p in pieces if a.only else []:
        common += ["--only", p]
    c_cmd = [a.bench, "--config", os.path.join(root, "configs", "xvlm_base_224.json")] + common
    if a.weights:
        c_cmd += ["--weights", a.weights]
    t_cmd = ["/usr/bin/python3", os.path.join(root, "tools", "bench_torch_parts.py")] + common
    sides = []
    for prec in (["fp32", "bf16"] if a.precision == "both" else [a.precision]):
        tag = "" if prec == "fp32" else " bf16"
        sides += [("torch" + tag, t_cmd + ["--precision", prec]), ("C" + tag, c_cmd + ["--precision", prec])]
    res = {side: [] for side, _ in sides}
    peaks = {side: [] for side, _ in sides}
    bf16_peaks = {side: [] for side, _ in sides}
    loads = []
    for r in range(a.rounds):
        for side, cmd in sides:
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{a.rounds}: {side} (load average {loads[-1]:.2f})", file=sys.stderr, flush=True)
            rows, pk, pk16 = run(cmd)
            res[side].append(rows)
            peaks[side] += pk
            bf16_peaks[side] += pk16
    loads.append(os.getloadavg()[0])

    def span(side, i):
        v = [p[i] for p in peaks[side]]
        return f"{min(v):.0f}-{max(v):.0f}"

    print(f"{a.threads} threads, batch {a.batch}, {a.rounds} rounds x {a.reps} runs; 1-minute load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs; 1024^3 products, GFLOP/s (GFLOP/cpu-s): "
          + ", ".join(f"{side} {'torch.mm' if side.startswith('torch') else 'sgemm'} {span(side, 0)} ({span(side, 1)})"
                      for side, _ in sides)
          + "".join(f"; bf16 1024^3 on the {side} side {min(v):.0f}-{max(v):.0f} GFLOP/s" for side, v in bf16_peaks.items() if v)
          + "\n")
    for tag in ["", " bf16"]:
        if "C" + tag in res:
            if a.precision == "both":
                print(f"\n{'fp32' if not tag else 'bf16'}:\n")
            table(res, peaks, pieces, "C" + tag, "torch" + tag)
    if a.precision == "both":
        print("\nmedian wall seconds (median CPU seconds), and how many times faster C bf16 is:\n")
        table_four(res, pieces)


if __name__ == "__main__":
    main()
