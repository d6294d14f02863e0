#!/usr/bin/python3
"""VQA accuracy by question type (the first two words: "how many", "is there",
"what colour", ...) of fine-tuning result files, with each type's most given
answers: whether a type is learnt or answered with one constant.

    python3 tools/vqa_by_type.py TEST.json RESULT.json [RESULT.json ...]

TEST.json: the questions with answers (vqa_test.json of `xvlm synth`);
RESULT.json: OUTPUT_DIR/result/epochN.json ([{question_id, answer}]). A
prediction counts when it equals the first annotator answer (the synthetic
world's ten answers are all the same)."""
import collections
import json
import sys


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    truth = {q["question_id"]: q for q in json.load(open(sys.argv[1]))}
    for path in sys.argv[2:]:
        right, given = collections.defaultdict(list), collections.defaultdict(collections.Counter)
        for e in json.load(open(path)):
            q = truth[e["question_id"]]
            kind = " ".join(q["question"].split()[:2])
            right[kind].append(e["answer"] == q["answer"][0])
            given[kind][e["answer"]] += 1
        total = sum(sum(v) for v in right.values()) / sum(len(v) for v in right.values())
        print(f"{path}: {100 * total:.1f} %")
        for kind in sorted(right):
            top = ", ".join(f"{a} {n}" for a, n in given[kind].most_common(3))
            print(f"  {kind:12s} {100 * sum(right[kind]) / len(right[kind]):5.1f} % of {len(right[kind]):4d}"
                  f"   most given: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
