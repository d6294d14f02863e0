#!/usr/bin/env bash
# scripts/check-layers.sh passes on the tree, and fails, naming file:line and
# the rule, on scratch copies with an include against the order.
set -uo pipefail
src=${1:?usage: check_layers.sh SOURCE_DIR}
check="$src/scripts/check-layers.sh"
fail=0
expect() { # expect WHAT CODE PATTERN ROOT
    local out code
    out=$(bash "$check" "$4" 2>&1); code=$?
    if [[ $code -ne $2 ]] || ! grep -q -- "$3" <<<"$out"; then
        echo "FAIL: $1: exit $code (expected $2), output:"; echo "$out"; fail=1
    else
        echo "ok: $1"
    fi
}
expect "the tree keeps the order" 0 "" "$src"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/check_layers.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
copy() { rm -rf "$scratch/$1"; mkdir -p "$scratch/$1"; cp -r "$src/src" "$src/cli" "$scratch/$1/"; }

copy up
sed -i '1i #include "model/model.h"' "$scratch/up/src/core/arena.c"
expect "core including model is refused" 1 \
    'src/core/arena.c:1: #include "model/model.h": core (level 0) may not include model (level 3): higher level' \
    "$scratch/up"

copy sibling
sed -i '1i #include "data/image.h"' "$scratch/sibling/src/io/checksum.c"
expect "io including data (same level) is refused" 1 \
    'src/io/checksum.c:1: #include "data/image.h": io (level 1) may not include data (level 1): same level' \
    "$scratch/sibling"

copy public
sed -i '1i #include "xvlm.h"' "$scratch/public/src/nn/layers.c"
expect "nn including the public header is refused" 1 'src/nn/layers.c:1: #include "xvlm.h": nn (level 2)' \
    "$scratch/public"

expect "a folder that is not a source tree" 2 "no such folder" "$scratch/none"
exit $fail
