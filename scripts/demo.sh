#!/usr/bin/env bash
# The out-of-the-box demo (`make demo`, docs/demo.md): install what is
# missing, build, generate the synthetic world, pretrain a small X-VLM from
# scratch with all four objectives, evaluate zero-shot retrieval, fine-tune the
# box grounding (Grounding_bbox.py, as the paper does for RefCOCO+) and score it
# on both halves of the test split, and draw the results. Works without network
# once the Debian packages are installed.
#
#   scripts/demo.sh               the full run (about 15 minutes on 2 cores)
#   scripts/demo.sh --ablations   then the paper's Table 4 in miniature: the same
#                                 budget without object data, without region data,
#                                 without the box losses, with image-text data only
#   scripts/demo.sh --only NAME   one run: full, no_objects, no_regions, no_bbox_loss,
#                                 image_text_only
#   scripts/demo.sh --all         every task (`make demo-all`): the full run, VQA,
#                                 captioning and NLVR2 fine-tuning (each when its
#                                 configs/demo/finetune_<task>.yaml exists), Grad-CAM
#                                 maps, the ablations in $ALL_ABLATIONS; one summary
#                                 table and out/demo/pictures/
#
# Environment: BUILD (build folder, default build), OUT (default out/demo),
# THREADS (synth and evaluation, default: all cores), PRETRAIN_THREADS (default 1: a
# model this small trains fastest on one thread, its OpenMP syncs cost more than a
# second core gives, and the other core decodes images), SEED (default 42),
# ALL_ABLATIONS (--all: default "no_regions no_bbox_loss", the two that bear on grounding).
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
all=0
case "${1:-}" in
  "") ;;
  --ablations) runs=(full no_objects no_regions no_bbox_loss image_text_only) ;;
  --all) all=1; read -r -a runs <<< "full ${ALL_ABLATIONS:-no_regions no_bbox_loss}" ;;
  --only)
    [[ -n "${2:-}" && -f "configs/demo/pretrain_${2}.yaml" ]] || { echo "demo: --only needs one of: $(ls configs/demo/pretrain_*.yaml | sed 's/.*pretrain_//; s/.yaml//' | tr '\n' ' ')" >&2; exit 2; }
    runs=("$2") ;;
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
esac
if [[ "$OUT" != out/demo ]]; then
  echo "demo: the demo configs read their data from out/demo/synth; OUT=$OUT only moves the results" >&2
fi

T0=$(date +%s)
stamp() { printf '\n== [%4ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }

stamp "1/6 dependencies (Debian packages; nothing to do when present)"
XV_WITH_FUZZ=0 bash scripts/install-deps.sh

stamp "2/6 build (the xvlm program, Release)"
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" -j "$(nproc)" --target xvlm_cli > /dev/null
"$XVLM" info | head -3

stamp "3/6 the synthetic world: 10,000 training + 100 test images, 128 px (seeded)"
# --no-left-right: the official pretraining flips images without reading the
# captions, so left/right words would be false on half of the flipped samples.
"$XVLM" synth --out "$WORLD" --seed 1 --images 10000 --test-images 100 --size 128 --no-left-right \
  --threads "$THREADS" 2>&1 | tail -1

for run in "${runs[@]}"; do
  cfg="configs/demo/pretrain_${run}.yaml"
  dir="$OUT/$run"
  rm -rf "$dir"
  mkdir -p "$dir"
  stamp "4/6 pretraining '$run' ($cfg) -> $dir"
  "$XVLM" pretrain --config "$cfg" --output-dir "$dir/pretrain" --seed "$SEED" --threads "$PRETRAIN_THREADS" --quiet
  cp "$dir/pretrain/loss_curves.png" "$dir/loss_curves.png"

  stamp "5/6 zero-shot retrieval of '$run'"
  model=(--model "$dir/pretrain/model" --vocab "$WORLD/vocab.txt" --threads "$THREADS" --image-root "$WORLD")
  # k_test 16: the top 16 of 100 images (of 500 texts) by ITC are re-ranked by ITM; R@1/5/10
  # only look at the top 10, so a larger k_test changes them only when ITM lifts a pair
  # from below rank 16.
  "$XVLM" evaluate retrieval "${model[@]}" --data "$WORLD/retrieval_test.json" --k-test 16 \
    --out "$dir/retrieval.json" --examples "$dir/retrieval_examples.png"

  stamp "6/6 grounding of '$run': fine-tuning (configs/demo/finetune_grounding.yaml), then both test halves"
  "$XVLM" finetune grounding --config configs/demo/finetune_grounding.yaml --init "$dir/pretrain/model" \
    --output-dir "$dir/grounding" --seed "$SEED" --threads "$PRETRAIN_THREADS" --no-eval-before --quiet
  model=(--model "$dir/grounding/model" --threads "$THREADS" --image-root "$WORLD" --train "$WORLD/grounding_train.json")
  # grounding.json: every test expression; the two halves like RefCOCO+ testA / testB.
  for half in "" _attributes _spatial; do
    "$XVLM" evaluate grounding "${model[@]}" --data "$WORLD/grounding_test$half.json" \
      --out "$dir/grounding$half.json" --examples "$dir/grounding_examples$half.png"
  done
done

if (( all )); then
  stamp "downstream tasks of the pretrained model (configs/demo/finetune_<task>.yaml)"
  for task in vqa captioning nlvr; do
    cfg="configs/demo/finetune_$task.yaml"
    if [[ ! -f "$cfg" ]]; then echo "$task: not yet ($cfg does not exist)"; continue; fi
    rm -rf "$OUT/$task"
    "$XVLM" finetune "$task" --config "$cfg" --init "$OUT/full/pretrain/model" --output-dir "$OUT/$task" \
      --seed "$SEED" --threads "$PRETRAIN_THREADS" --quiet
  done

  stamp "Grad-CAM of the ITM score for the first test expressions (xvlm explain)"
  mkdir -p "$OUT/pictures"
  sed -n 's/.*"image":"\([^"]*\)","text":"\([^"]*\)".*/\1\t\2/p' "$WORLD/grounding_test.json" | head -4 |
    while IFS=$'\t' read -r image text; do
      png="$OUT/pictures/gradcam_$(basename "$image" .jpg)_${text// /_}.png"
      "$XVLM" explain --model "$OUT/full/pretrain/model" --threads "$THREADS" --image "$WORLD/$image" \
        --text "$text" --out "$png" > /dev/null && echo "  $text -> $png"
    done
fi

stamp "results"
dirs=()
for run in "${runs[@]}"; do dirs+=("$OUT/$run"); done
"$XVLM" evaluate table "${dirs[@]}"
if (( all )); then
  echo
  echo "downstream tasks (result.json of each fine-tuning):"
  for task in vqa captioning nlvr; do
    if [[ -f "$OUT/$task/result.json" ]]; then
      printf '  %-11s %s\n' "$task" "$(tr -d '\n ' < "$OUT/$task/result.json" | head -c 400)"
    else
      printf '  %-11s not yet\n' "$task"
    fi
  done
  for run in "${runs[@]}"; do
    for png in "$OUT/$run"/*.png; do cp "$png" "$OUT/pictures/${run}_$(basename "$png")"; done
  done
fi
echo
echo "Targets of the full run: text->image R@1 with ITM re-rank >= 35 % (chance 1 %); grounding"
echo "accuracy >= 50 % on both test halves and >= 3x the mean training box. Pictures:"
for run in "${runs[@]}"; do ls "$OUT/$run"/*.png | sed 's/^/  /'; done
if (( all )); then echo "  and every picture in $OUT/pictures/"; fi
echo "total $(( $(date +%s) - T0 )) s wall"
