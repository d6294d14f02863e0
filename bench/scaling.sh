#!/bin/sh
# Data-parallel scaling on one machine (docs/distributed.md, "Measurements"):
# samples/s of 1 process x 2 threads against 2 processes x 1 thread (mpirun),
# next to 1 process x 1 thread (what one rank computes alone), the 2 ranks with the all-reduce overlapped with the backward and without
# (XV_DIST_OVERLAP=0), and the all-reduce's own time per call.
#
#   bench/scaling.sh [demo] [base] [allreduce]        (default: all three)
#
#   demo       the demo model (configs/demo/pretrain_full.yaml) pretraining on the demo world
#              (DEMO_WORLD, default /work/demo-7f3c21f/demo/synth; `xvlm synth --out DIR --seed 1
#              --images 10000 --size 128 --no-left-right` makes it), DEMO_STEPS steps (40), the
#              first 5 not timed; batch 16 per rank
#   base       X-VLM base (configs/xvlm_base_224.json) through bench_pretrain_step at batch 8 per
#              rank: a region and an image-text update per step, BASE_STEPS timed steps (2) after
#              a warm-up; about 7 GiB per process
#   allreduce  bench_allreduce at the two models' gradient sizes
#
# Timings share the machine with whatever else runs: take the bench lock at raised priority,
#   flock /tmp/xvlm-bench.lock nice -n -10 bench/scaling.sh demo
# Each row prints the 1-minute load average before and after the run. Where Linux groups the
# processes of each session (/proc/sys/kernel/sched_autogroup_enabled), every group gets an equal
# share of the cores whatever its processes' nice value: run at a negative nice value, the script
# gives its session's group that value too (the whole session's, as the kernel keeps one per group).
# BUILD (build) is the build folder, SCRATCH (/tmp/xvlm-scaling) where runs write.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SCRATCH=${SCRATCH:-/tmp/xvlm-scaling}
DEMO_WORLD=${DEMO_WORLD:-/work/demo-7f3c21f/demo/synth}
DEMO_STEPS=${DEMO_STEPS:-40}
BASE_STEPS=${BASE_STEPS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe -np 2 --bind-to none"
parts=${*:-demo base allreduce}
mkdir -p "$SCRATCH"
n=$(nice)
if [ "$n" -lt 0 ] && [ -w /proc/self/autogroup ]; then echo "$n" >/proc/self/autogroup; fi

load() { cut -d' ' -f1 /proc/loadavg; }

# demo_run NAME RANKS THREADS OVERLAP: one pretraining run; prints its row.
demo_run() {
    out="$SCRATCH/demo-$1"
    rm -rf "$out"
    l0=$(load)
    if [ "$2" = 1 ]; then
        XV_DIST_OVERLAP=$4 "$BUILD/xvlm" pretrain --config "$SCRATCH/demo.yaml" --output-dir "$out" \
            --max-steps "$DEMO_STEPS" --threads "$3" --quiet >"$out.txt" 2>&1
    else
        XV_DIST_OVERLAP=$4 $MPIRUN "$BUILD/xvlm" pretrain --config "$SCRATCH/demo.yaml" --output-dir "$out" \
            --max-steps "$DEMO_STEPS" --threads "$3" --quiet >"$out.txt" 2>&1
    fi
    # rank 0's log: the seconds of both updates of every step after the first 5 (warm-up)
    awk -v name="$1" -v ranks="$2" -v l0="$l0" -v l1="$(load)" -v steps="$((DEMO_STEPS - 5))" '
        match($0, /"step": [0-9]+/) { step = substr($0, RSTART + 8, RLENGTH - 8) + 0 }
        match($0, /"seconds": [0-9.e+-]+/) { if (step >= 5) s += substr($0, RSTART + 11, RLENGTH - 11) }
        END { printf "| demo | %s | %.3f s | %.1f | %s / %s |\n", name, s / steps, ranks * 16 * steps / s, l0, l1 }' \
        "$out/log.jsonl"
}

# base_run NAME RANKS THREADS OVERLAP
base_run() {
    out="$SCRATCH/base-$1.txt"
    l0=$(load)
    if [ "$2" = 1 ]; then
        XV_DIST_OVERLAP=$4 OMP_NUM_THREADS=$3 "$BUILD/bench/bench_pretrain_step" --config configs/xvlm_base_224.json \
            --batch 8 --threads "$3" --steps "$BASE_STEPS" >"$out" 2>&1
    else
        XV_DIST_OVERLAP=$4 OMP_NUM_THREADS=$3 $MPIRUN -x OMP_NUM_THREADS -x XV_DIST_OVERLAP \
            "$BUILD/bench/bench_pretrain_step" --config configs/xvlm_base_224.json --batch 8 --threads "$3" \
            --steps "$BASE_STEPS" >"$out" 2>&1
    fi
    awk -v name="$1" -v ranks="$2" -v l0="$l0" -v l1="$(load)" '
        /^one step/ { for (i = 1; i <= NF; i++) if ($i == "s" && $(i + 1) == "wall,") t = $(i - 1) }
        END { if (t == "") { print "| base | " name " | failed: see the log |"; exit }
              printf "| base | %s | %.2f s | %.2f | %s / %s |\n", name, t, ranks * 8 / t, l0, l1 }' "$out"
}

echo "| model | ranks x threads | seconds per step (region + image-text update) | image-text samples/s | load avg before / after |"
echo "| --- | --- | --- | --- | --- |"
for part in $parts; do
    case $part in
    demo)
        sed "s#out/demo/synth#$DEMO_WORLD#g" configs/demo/pretrain_full.yaml >"$SCRATCH/demo.yaml"
        cp configs/demo/model.json "$SCRATCH/model.json"
        demo_run "1x1" 1 1 1
        demo_run "1x2" 1 2 1
        demo_run "2x1" 2 1 1
        demo_run "2x1 XV_DIST_OVERLAP=0" 2 1 0
        ;;
    base)
        base_run "1x1" 1 1 1
        base_run "1x2" 1 2 1
        base_run "2x1" 2 1 1
        base_run "2x1 XV_DIST_OVERLAP=0" 2 1 0
        ;;
    allreduce)
        # demo model 0.42 M gradient floats, X-VLM base 216 M: seconds per xv_dist_average_grads
        echo "all-reduce (2 x 1 thread, load $(load)):"
        OMP_NUM_THREADS=1 $MPIRUN "$BUILD/bench/bench_allreduce" 0.42 216 2>&1 | sed 's/^/    /'
        ;;
    *)
        echo "bench/scaling.sh: unknown part '$part' (demo, base, allreduce)" >&2
        exit 2
        ;;
    esac
done
