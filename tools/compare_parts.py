#!/usr/bin/python3
"""C against PyTorch on the four X-VLM base inference pieces, interleaved in one
time window: bench_xvlm_base and tools/bench_torch_parts.py take turns for
--rounds rounds (same threads, batch, length, reps), then one markdown table.

    /usr/bin/python3 tools/compare_parts.py [--bench build/bench/bench_xvlm_base]
        [--rounds 3] [--threads 2] [--batch 8] [--reps 5]

Per piece and side: the median of the rounds' median wall seconds, the best
wall seconds of all runs, the median CPU seconds (all threads of the process);
for C, GFLOP/s on the best run and GFLOP per CPU-second against sgemm's
(OpenBLAS 1024^3, measured in the same runs; torch.mm is the same library).
Speedup = PyTorch seconds / C seconds (wall: median, best; and CPU seconds).
On a machine shared with other jobs the best run is the closest to an
unloaded one; the medians show the typical load, and CPU seconds below
threads x wall mean time spent waiting for cores. The 1-minute load average
is read before every run and after the last; its range heads the table."""
import argparse
import os
import statistics
import subprocess
import sys

PIECES = ["vision", "text", "fusion_itm", "box"]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows, peaks = {}, []
    for line in out.splitlines():
        f = line.split()
        if line.startswith("#"):
            if "GFLOP/s," in line and ("sgemm" in line or "torch.mm" in line):
                peaks.append((float(f[f.index("GFLOP/s,") - 1]), float(f[f.index("GFLOP/cpu-s") - 1])))
            continue
        if f and f[0] in PIECES:
            # name, shape words..., median, best, cpu, GFLOP, GFLOP/s, %peak, GF/cpu-s, %peak
            rows[f[0]] = {"median": float(f[-8]), "best": float(f[-7]), "cpu": float(f[-6]), "gflop": float(f[-5])}
    return rows, peaks


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(root, "build", "bench", "bench_xvlm_base"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    common = ["--threads", str(a.threads), "--batch", str(a.batch), "--reps", str(a.reps)]
    c_cmd = [a.bench, "--config", os.path.join(root, "configs", "xvlm_base_224.json")] + common
    t_cmd = ["/usr/bin/python3", os.path.join(root, "tools", "bench_torch_parts.py")] + common
    res = {"C": [], "torch": []}
    peaks = {"C": [], "torch": []}
    loads = []
    for r in range(a.rounds):
        for side, cmd in (("torch", t_cmd), ("C", c_cmd)):
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{a.rounds}: {side} (load average {loads[-1]:.2f})", file=sys.stderr, flush=True)
            rows, pk = run(cmd)
            res[side].append(rows)
            peaks[side] += pk
    loads.append(os.getloadavg()[0])

    def agg(side, piece):
        runs = [x[piece] for x in res[side]]
        return {"median": statistics.median(x["median"] for x in runs), "best": min(x["best"] for x in runs),
                "cpu": statistics.median(x["cpu"] for x in runs), "gflop": runs[0]["gflop"]}

    def span(side, i):
        v = [p[i] for p in peaks[side]]
        return f"{min(v):.0f}-{max(v):.0f}"

    print(f"{a.threads} threads, batch {a.batch}, {a.rounds} rounds x {a.reps} runs; 1-minute load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs; 1024^3 products, GFLOP/s (GFLOP/cpu-s): "
          f"C sgemm {span('C', 0)} ({span('C', 1)}), torch.mm {span('torch', 0)} ({span('torch', 1)})\n")
    print("| piece | GFLOP | PyTorch median s | C median s | speedup | PyTorch best s | C best s | speedup (best) "
          "| PyTorch CPU s | C CPU s | speedup (CPU) | PyTorch GFLOP/s (best) | C GFLOP/s (best) "
          "| PyTorch GFLOP/cpu-s | C GFLOP/cpu-s | C of sgemm GFLOP/cpu-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    peak_cpu = statistics.median(p[1] for p in peaks["C"])
    for p in PIECES:
        t, c = agg("torch", p), agg("C", p)
        g = c["gflop"]
        print(f"| {p} | {g:.1f} | {t['median']:.3f} | {c['median']:.3f} | {t['median'] / c['median']:.2f}x "
              f"| {t['best']:.3f} | {c['best']:.3f} | {t['best'] / c['best']:.2f}x | {t['cpu']:.2f} | {c['cpu']:.2f} "
              f"| {t['cpu'] / c['cpu']:.2f}x | {g / t['best']:.0f} | {g / c['best']:.0f} | {g / t['cpu']:.0f} "
              f"| {g / c['cpu']:.0f} | {100 * g / c['cpu'] / peak_cpu:.0f}% |")


if __name__ == "__main__":
    main()
