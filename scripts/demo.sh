#!/usr/bin/env bash
# The out-of-the-box demo (`make demo`, docs/demo.md): install what is
# missing, build, generate the synthetic world, pretrain a small X-VLM from
# scratch with all four objectives, then evaluate zero-shot retrieval and box
# grounding and draw the results. Works without network once the Debian
# packages are installed.
#
#   scripts/demo.sh               the full run (about 14 minutes on 2 cores)
#   scripts/demo.sh --ablations   then the paper's Table 4 in miniature: the same
#                                 budget without object data, without region data,
#                                 without the box losses, with image-text data only
#   scripts/demo.sh --only NAME   one run: full, no_objects, no_regions, no_bbox_loss,
#                                 image_text_only
#
# Environment: BUILD (build folder, default build), OUT (default out/demo),
# THREADS (synth and evaluation, default: all cores), PRETRAIN_THREADS (default 1: a
# model this small trains fastest on one thread, its OpenMP syncs cost more than a
# second core gives, and the other core decodes images), SEED (default 42).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
OUT=${OUT:-out/demo}
THREADS=${THREADS:-$(nproc)}
PRETRAIN_THREADS=${PRETRAIN_THREADS:-1}
SEED=${SEED:-42}
XVLM="$BUILD/xvlm"
# The world the configs in configs/demo/ read (their paths are relative to the repository root).
WORLD=out/demo/synth

runs=(full)
case "${1:-}" in
  "") ;;
  --ablations) runs=(full no_objects no_regions no_bbox_loss image_text_only) ;;
  --only)
    [[ -n "${2:-}" && -f "configs/demo/pretrain_${2}.yaml" ]] || { echo "demo: --only needs one of: $(ls configs/demo/pretrain_*.yaml | sed 's/.*pretrain_//; s/.yaml//' | tr '\n' ' ')" >&2; exit 2; }
    runs=("$2") ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
esac
if [[ "$OUT" != out/demo ]]; then
  echo "demo: the demo configs read their data from out/demo/synth; OUT=$OUT only moves the results" >&2
fi

T0=$(date +%s)
stamp() { printf '\n== [%4ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }

stamp "1/5 dependencies (Debian packages; nothing to do when present)"
XV_WITH_FUZZ=0 bash scripts/install-deps.sh

stamp "2/5 build (the xvlm program, Release)"
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" -j "$(nproc)" --target xvlm_cli > /dev/null
"$XVLM" info | head -3

stamp "3/5 the synthetic world: 10,000 training + 100 test images, 128 px (seeded)"
# --no-left-right: the official pretraining flips images without reading the
# captions, so left/right words would be false on half of the flipped samples.
"$XVLM" synth --out "$WORLD" --seed 1 --images 10000 --test-images 100 --size 128 --no-left-right \
  --threads "$THREADS" 2>&1 | tail -1

for run in "${runs[@]}"; do
  cfg="configs/demo/pretrain_${run}.yaml"
  dir="$OUT/$run"
  rm -rf "$dir"
  mkdir -p "$dir"
  stamp "4/5 pretraining '$run' ($cfg) -> $dir"
  "$XVLM" pretrain --config "$cfg" --output-dir "$dir/pretrain" --seed "$SEED" --threads "$PRETRAIN_THREADS" --quiet
  cp "$dir/pretrain/loss_curves.png" "$dir/loss_curves.png"

  stamp "5/5 evaluation of '$run'"
  model=(--model "$dir/pretrain/model" --vocab "$WORLD/vocab.txt" --threads "$THREADS" --image-root "$WORLD")
  # k_test 16: the top 16 of 100 images (of 500 texts) by ITC are re-ranked by ITM; R@1/5/10
  # only look at the top 10, so a larger k_test changes them only when ITM lifts a pair
  # from below rank 16.
  "$XVLM" evaluate retrieval "${model[@]}" --data "$WORLD/retrieval_test.json" --k-test 16 \
    --out "$dir/retrieval.json" --examples "$dir/retrieval_examples.png"
  "$XVLM" evaluate grounding "${model[@]}" --data "$WORLD/grounding_test.json" \
    --train "$WORLD/grounding_train.json" --out "$dir/grounding.json" --examples "$dir/grounding_examples.png"
done

stamp "results"
dirs=()
for run in "${runs[@]}"; do dirs+=("$OUT/$run"); done
"$XVLM" evaluate table "${dirs[@]}"
echo
echo "Targets of the full run: text->image R@1 with ITM re-rank >= 30 % (chance 1 %); grounding"
echo "accuracy >= 50 % and >= 2x the mean training box. Pictures:"
for run in "${runs[@]}"; do ls "$OUT/$run"/*.png | sed 's/^/  /'; done
echo "total $(( $(date +%s) - T0 )) s wall"
