#!/usr/bin/python3
"""C against PyTorch on X-VLM base VQA answer ranking (k 128 of 3,128 answers)
and beam-3 captioning (max_length 20, min_length 5), interleaved in one time
window: bench_vqa_caption and tools/bench_torch_vqa_caption.py take turns for
--rounds rounds on the same weights and inputs, then one markdown table.

    /usr/bin/python3 tools/compare_vqa_caption.py [--bench build/bench/bench_vqa_caption]
        [--weights /tmp/xvlm-vqacap-weights] [--rounds 2] [--threads 2] [--reps 3]
        [--questions 8] [--images 4]

The weights (random, written once by `bench_vqa_caption --save-weights`, about
2 GB) are shared, so both sides must give the same answers and captions: the
table says whether they did. Per piece and side: the median of the rounds'
median wall seconds, the best wall seconds, the median CPU seconds (all threads
of the process), each per question or image. Speedup = PyTorch / C. On a
machine shared with other jobs the CPU seconds are the load-independent view
(CPU below threads x wall means time spent waiting for a core). The 1-minute
load average is read before every run and after the last."""
import argparse
import os
import statistics
import subprocess
import sys

PIECES = [("vqa", "question: Swin-B, question encoder, rank_answer k 128"),
          ("vqa_rank", "question: rank_answer k 128 alone"),
          ("caption", "image: Swin-B, beam search 3 / 20 / 5")]


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows, outputs = {}, []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "row":
            # row name median best cpu units median/u best/u cpu/u
            rows[f[1]] = {"median": float(f[6]), "best": float(f[7]), "cpu": float(f[8])}
        elif f and f[0] in ("answer", "caption"):
            outputs.append(line)
    return rows, outputs


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(root, "build", "bench", "bench_vqa_caption"))
    ap.add_argument("--weights", default="/tmp/xvlm-vqacap-weights")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--images", type=int, default=4)
    a = ap.parse_args()
    config = os.path.join(root, "configs", "xvlm_base_224.json")
    if not all(os.path.exists(os.path.join(a.weights, f)) for f in ("vqa.safetensors", "captioning.safetensors")):
        print(f"writing the random weights to {a.weights}", file=sys.stderr, flush=True)
        subprocess.run([a.bench, "--config", config, "--save-weights", a.weights], check=True)
    common = ["--threads", str(a.threads), "--reps", str(a.reps), "--questions", str(a.questions),
              "--images", str(a.images)]
    cmds = {"torch": ["/usr/bin/python3", os.path.join(root, "tools", "bench_torch_vqa_caption.py"),
                      "--weights", a.weights, "--config", config] + common,
            "C": [a.bench, "--config", config] + common}
    res, outs, loads = {"C": [], "torch": []}, {"C": [], "torch": []}, []
    for r in range(a.rounds):
        for side in ("torch", "C"):
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{a.rounds}: {side} (load average {loads[-1]:.2f})", file=sys.stderr, flush=True)
            rows, o = run(cmds[side])
            res[side].append(rows)
            outs[side].append(o)
    loads.append(os.getloadavg()[0])
    same = all(o == outs["torch"][0] for side in outs for o in outs[side])

    def agg(side, piece):
        runs = [x[piece] for x in res[side]]
        return (statistics.median(x["median"] for x in runs), min(x["best"] for x in runs),
                statistics.median(x["cpu"] for x in runs))

    print(f"{a.threads} threads, {a.questions} questions / {a.images} images per run, {a.rounds} rounds x {a.reps} "
          f"runs; 1-minute load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs; answers and "
          f"captions {'identical on both sides' if same else 'DIFFER between the sides'}\n")
    print("| piece (per unit) | PyTorch median s | C median s | speedup | PyTorch best s | C best s | speedup (best) "
          "| PyTorch CPU s | C CPU s | speedup (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p, what in PIECES:
        t, c = agg("torch", p), agg("C", p)
        print(f"| {p} (per {what}) | {t[0]:.3f} | {c[0]:.3f} | {t[0] / c[0]:.2f}x | {t[1]:.3f} | {c[1]:.3f} "
              f"| {t[1] / c[1]:.2f}x | {t[2]:.3f} | {c[2]:.3f} | {t[2] / c[2]:.2f}x |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
