#!/usr/bin/env bash
# Checks that every #include "..." in src/ and cli/ goes down the layers:
#
#   level 0  core                  tensors, graph, arenas, errors, threads
#   level 1  ops   io   data       siblings: each includes core/ only, never each other
#   level 2  nn
#   level 3  model
#   level 4  api                   src/api/ and the public header include/xvlm.h
#   level 5  tasks
#   level 6  train
#   level 7  serve                 src/serve/: the HTTP server (xvlm serve), a client of the api
#   level 8  cli                   the program (cli/), the top
#
# A file may include headers of its own folder and of any folder on a lower
# level; a header of the same level's other folder (ops <-> io <-> data) or of
# a higher level is refused. Includes with <...> are system headers, not
# checked. A header named without a folder ("commands.h") is the including
# file's own folder, except "xvlm.h", the public header (level 4).
#
# Usage: scripts/check-layers.sh [ROOT]   (ROOT: the repository, default: this script's)
# Exit 0 when every include keeps the order; 1 listing file:line and the broken
# rule otherwise; 2 when ROOT is not a source tree.
set -euo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
if [[ ! -d "$root/src" ]]; then
    echo "check-layers: $root/src: no such folder (expected the repository root)" >&2
    exit 2
fi
cd "$root"

# Paths relative to the root; one awk run maps them and gives the verdicts.
mapfile -t files < <(find src cli -name '*.[ch]' 2>/dev/null | LC_ALL=C sort)
awk '
function level(folder) {
    if (folder == "core") return 0
    if (folder == "ops" || folder == "io" || folder == "data") return 1
    if (folder == "nn") return 2
    if (folder == "model") return 3
    if (folder == "api") return 4
    if (folder == "tasks") return 5
    if (folder == "train") return 6
    if (folder == "serve") return 7
    if (folder == "cli") return 8
    return -1
}
FNR == 1 {
    n = split(FILENAME, parts, "/")
    from = (parts[1] == "cli") ? "cli" : parts[2]
    if (level(from) < 0) {
        printf "%s: folder \"%s\" has no layer (add it to scripts/check-layers.sh)\n", FILENAME, from
        bad++
    }
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    inc = $0
    sub(/^[^"]*"/, "", inc)
    sub(/".*$/, "", inc)
    if (inc == "xvlm.h") to = "api"
    else if (index(inc, "/") == 0) to = from
    else { split(inc, ip, "/"); to = ip[1] }
    lf = level(from); lt = level(to)
    if (lt < 0) {
        printf "%s:%d: #include \"%s\": folder \"%s\" has no layer\n", FILENAME, FNR, inc, to
        bad++
    } else if (to != from && lt >= lf) {
        why = (lt == lf) ? "same level, other folder" : "higher level"
        printf "%s:%d: #include \"%s\": %s (level %d) may not include %s (level %d): %s\n",
               FILENAME, FNR, inc, from, lf, to, lt, why
        bad++
    }
}
END {
    if (bad) {
        printf "check-layers: %d include(s) against the order core < ops|io|data < nn < model < api < tasks < train < serve < cli\n", bad
        exit 1
    }
}' "${files[@]}"
