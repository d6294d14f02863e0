#!/usr/bin/python3
"""PyTorch timings of X-VLM base VQA answer ranking and beam-search captioning,
the side-by-side reference for bench/bench_vqa_caption.c: the same pieces, the
same inputs (made by the same formulas) and the same weights (the files
`bench_vqa_caption --save-weights DIR` writes), so both sides must print the
same answers and captions.

    /usr/bin/python3 tools/bench_torch_vqa_caption.py --weights DIR [--threads 2] [--reps 3]
        [--questions 8] [--images 4] [--only vqa|vqa_rank|caption ...]

The model code is tools/torchref/vqa_caption_ref.py: the official rank_answer
and transformers 4.12.5 beam search restated (transformers and timm are not
packaged for Debian 12), checked against the official fixtures by
tools/torchref/check_vqa_caption_fixture.py. Eval mode under torch.no_grad().
Output lines as the C bench's: `row NAME median best cpu units per-unit...`."""
import argparse
import os
import resource
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "torchref"))
import safetensors_io  # noqa: E402
from bench_torch_parts import timed  # noqa: E402  (one warm-up, then reps: median, best wall; median CPU)
import vqa_caption_ref  # noqa: E402

N_ANSWERS, ANSWER_LEN, QUESTION_LEN, K_TEST, SEP_ID = 3128, 8, 12, 128, 102
PROMPT = [101, 1037, 3861, 1997]  # [CLS] a picture of


# ---------------------------------------------------------------- shared inputs (as bench_vqa_caption.c)

def answer_pieces(i):
    r = (i * 37) % 100
    return 1 if r < 60 else 2 if r < 85 else 3 if r < 95 else 4 + i % 3


def answers():
    ids = torch.zeros(N_ANSWERS, ANSWER_LEN, dtype=torch.long)
    atts = torch.zeros_like(ids)
    for i in range(N_ANSWERS):
        row = [101] + [2000 + (i * 7919 + j * 104729) % 28000 for j in range(answer_pieces(i))] + [SEP_ID]
        ids[i, :len(row)] = torch.tensor(row)
        atts[i, :len(row)] = 1
    return ids, atts


def questions(Q):
    ids = torch.tensor([[101 if j == 0 else 2000 + (q * 131 + j * 17) % 28000 for j in range(QUESTION_LEN)]
                        for q in range(Q)])
    return ids, torch.ones_like(ids)


def images(N, res):
    n, c, y, x = torch.meshgrid(torch.arange(N), torch.arange(3), torch.arange(res), torch.arange(res), indexing="ij")
    return ((n * 7 + c * 3 + y * 5 + x * 11) % 255).float() / 127.5 - 1.0


def load_weights(path):
    w, _ = safetensors_io.read(path)
    return {k: torch.from_numpy(np.array(v)) for k, v in w.items() if v.dtype.kind == "f"}


def main():
    import json
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="folder with vqa.safetensors and captioning.safetensors")
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "xvlm_base_224.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--only", action="append", choices=["vqa", "vqa_rank", "caption"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    cfg = json.load(open(a.config))
    res = cfg["vision"]["image_res"]
    only = set(a.only or ["vqa", "vqa_rank", "caption"])
    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} threads, {a.config}; {a.questions} questions "
          f"(k {K_TEST} of {N_ANSWERS} answers), {a.images} images (beam 3, lengths 20/5)")
    if only & {"vqa", "vqa_rank"}:
        vqa = vqa_caption_ref.VQA(cfg, load_weights(os.path.join(a.weights, "vqa.safetensors")))
        q_img, (q_ids, q_atts), (a_ids, a_atts) = images(a.questions, res), questions(a.questions), answers()
        q_states = vqa.question_states(q_img, q_ids, q_atts)
        last = {}

        def run_vqa():
            last["r"] = vqa.rank_answer(vqa.question_states(q_img, q_ids, q_atts), q_atts, a_ids, a_atts, K_TEST)

        def run_rank():
            last["r"] = vqa.rank_answer(q_states, q_atts, a_ids, a_atts, K_TEST)

        for name, fn in (("vqa", run_vqa), ("vqa_rank", run_rank)):
            if name not in only:
                continue
            med, best, cpu = timed(fn, a.reps)
            Q = a.questions
            print(f"row {name:9s} {med:9.3f} {best:8.3f} {cpu:8.3f} {Q:6d} {med / Q:12.4f} {best / Q:12.4f} "
                  f"{cpu / Q:10.4f}")
            print("answer " + " ".join(str(int(i)) for i in last["r"]["topk_ids"][:, 0]), flush=True)
        del vqa
    if "caption" in only:
        cap = vqa_caption_ref.Captioner(cfg, load_weights(os.path.join(a.weights, "captioning.safetensors")))
        c_img, prompt = images(a.images, res), torch.tensor(PROMPT)
        last = {}

        def run_caption():
            last["seq"], _ = cap.beam_search(c_img, prompt, 3, 20, 5)

        med, best, cpu = timed(run_caption, a.reps)
        B = a.images
        print(f"row {'caption':9s} {med:9.3f} {best:8.3f} {cpu:8.3f} {B:6d} {med / B:12.4f} {best / B:12.4f} "
              f"{cpu / B:10.4f}")
        for row in last["seq"]:
            print("caption " + " ".join(str(int(t)) for t in row))
    print(f"# peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
