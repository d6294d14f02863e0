#!/usr/bin/python3
"""Shows that vqa_caption_ref.py (the PyTorch side of the VQA / captioning
benchmarks) computes what the official code computed: runs it on
../shared/fixtures/vqa (answer ranking, eval.*) and ../shared/fixtures/captioning
(beam search, gen.beam.* with 3 beams / 20 / 5 and gen.beam2.* with 3 / 18 / 14)
and compares with the stored outputs.

    /usr/bin/python3 tools/torchref/check_vqa_caption_fixture.py [--fixtures DIR] [--tol 1e-5]

Floats: max|ours - ref| / max(1, max|ref|) <= --tol (the fixture README's
measure); ids, rankings and sequences exact (candidate rows compared after
matching on the answer ids: tied first-token probabilities may come out of
topk in another order). Exit 0 when everything matches."""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import vqa_caption_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    w, _ = safetensors_io.read(os.path.join(d, "weights.safetensors"))
    params = {k: torch.tensor(np.array(v)) for k, v in w.items() if v.dtype.kind == "f"}
    inp, _ = safetensors_io.read(os.path.join(d, "inputs.safetensors"))
    out, _ = safetensors_io.read(os.path.join(d, "outputs.safetensors"))
    return cfg, params, {k: torch.tensor(np.array(v)) for k, v in inp.items()}, out


class Report:
    def __init__(self, tol):
        self.tol, self.bad = tol, 0

    def floats(self, name, ours, ref):
        ours, ref = ours.detach().double().numpy(), np.asarray(ref, dtype=np.float64)
        err = float(np.max(np.abs(ours - ref))) / max(1.0, float(np.max(np.abs(ref))))
        ok = ours.shape == ref.shape and err <= self.tol
        self.bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {name}: rel err {err:.2e}")

    def exact(self, name, ours, ref):
        ours, ref = np.asarray(ours), np.asarray(ref)
        ok = ours.shape == ref.shape and bool(np.all(ours == ref))
        self.bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {name}: {'equal' if ok else f'{ours.tolist()} vs {ref.tolist()}'}")


def check_vqa(d, rep):
    cfg, params, inp, out = load(d)
    m = vqa_caption_ref.VQA(cfg, params)
    k = cfg["task_config"]["k_test"]
    with torch.no_grad():
        img = inp["train.image"][inp["eval.image_index"]]
        qs = m.question_states(img, inp["eval.question_ids"], inp["eval.question_atts"])
        r = m.rank_answer(qs, inp["eval.question_atts"], inp["eval.answer_ids"], inp["eval.answer_atts"], k)
    rep.floats("vqa eval.question_states", qs, out["eval.question_states"])
    rep.floats("vqa eval.start_logits", r["start_logits"], out["eval.start_logits"])
    rep.floats("vqa eval.first_token_probs", r["first_token_probs"], out["eval.first_token_probs"])
    # candidate NLL by answer id (tie order of topk may differ)
    ours = {(q, int(a)): float(n) for q in range(qs.shape[0])
            for a, n in zip(r["topk_ids_first"][q], r["candidate_nll"].view(qs.shape[0], k)[q])}
    ref_ids = np.asarray(out["eval.topk_ids_first"])
    ref_nll = np.asarray(out["eval.candidate_nll"]).reshape(ref_ids.shape)
    rep.exact("vqa candidate sets", sorted(ours), sorted((q, int(a)) for q in range(ref_ids.shape[0])
                                                         for a in ref_ids[q]))
    rep.floats("vqa eval.candidate_nll (matched)",
               torch.tensor([ours.get((q, int(a)), np.nan) for q in range(ref_ids.shape[0]) for a in ref_ids[q]]),
               ref_nll.reshape(-1))
    rep.floats("vqa eval.topk_probs", r["topk_probs"], out["eval.topk_probs"])
    rep.exact("vqa eval.topk_ids", r["topk_ids"].numpy(), out["eval.topk_ids"])
    rep.exact("vqa eval.pred_answer_index", r["topk_ids"][:, 0].numpy(), out["eval.pred_answer_index"])


def check_captioning(d, rep):
    cfg, params, inp, out = load(d)
    m = vqa_caption_ref.Captioner(cfg, params)
    img = inp["train.image"][inp["gen.image_index"]]
    tc = cfg["task_config"]
    for name, (K, mx, mn) in {"beam": (tc["num_beams"], tc["max_length"], tc["min_length"]),
                              "beam2": (3, 18, 14)}.items():
        with torch.no_grad():
            seq, scores = m.beam_search(img, inp["gen.prompt_ids"][0], K, mx, mn)
        rep.exact(f"captioning gen.{name}.sequences", seq.numpy(), out[f"gen.{name}.sequences"])
        rep.floats(f"captioning gen.{name}.sequence_scores", scores, out[f"gen.{name}.sequence_scores"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "..", "shared", "fixtures"))
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rep = Report(a.tol)
    check_vqa(os.path.join(a.fixtures, "vqa"), rep)
    check_captioning(os.path.join(a.fixtures, "captioning"), rep)
    print("all match" if not rep.bad else f"{rep.bad} mismatches")
    return 1 if rep.bad else 0


if __name__ == "__main__":
    sys.exit(main())
