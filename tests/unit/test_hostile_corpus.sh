#!/usr/bin/env bash
# The hostile-input corpus (issue 18): every case of tests/data/hostile/manifest.tsv
# made in a scratch folder and run through the xvlm program, each under a
# timeout (a hang fails the case), its exit status and message checked.
# Usage: test_hostile_corpus.sh XVLM MANIFEST IMAGE.png
set -u
XVLM=$(realpath "$1")
MANIFEST=$(realpath "$2")
IMAGE=$(realpath "$3")
S=$(mktemp -d "${TMPDIR:-/tmp}/hostile_corpus.XXXXXX")
trap 'rm -rf "$S"' EXIT
cd "$S" || exit 1
fail=0 n=0

# A safetensors file: the 8-byte little-endian header length, the header, then
# `data_len` zero bytes. `hdr_len` overrides the stated length.
mkst() { # file header data_len [hdr_len]
    local len=${4:-${#2}} le="" i
    for i in 0 1 2 3 4 5 6 7; do le+=$(printf '\\x%02x' $(((len >> (8 * i)) & 255))); done
    printf "$le" >"$1"
    printf '%s' "$2" >>"$1"
    head -c "$3" /dev/zero >>"$1"
}
T='"dtype":"F32"'
mkst st_valid "{\"a\":{$T,\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{$T,\"shape\":[1],\"data_offsets\":[8,12]}}" 12
mkst st_valid_padded "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]}}    " 4
mkst st_empty_header "{}" 0
mkst st_leading_space " {\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]}}" 4
mkst st_trailing_data "{\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]}}" 9
mkst st_gap "{\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{$T,\"shape\":[1],\"data_offsets\":[8,12]}}" 12
mkst st_overlap "{\"a\":{$T,\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{$T,\"shape\":[2],\"data_offsets\":[4,12]}}" 12
mkst st_float_offsets "{\"a\":{$T,\"shape\":[4],\"data_offsets\":[0.0,16.0]}}" 16
mkst st_float_shape "{\"a\":{$T,\"shape\":[4.0],\"data_offsets\":[0,16]}}" 16
mkst st_negative_shape "{\"a\":{$T,\"shape\":[-4],\"data_offsets\":[0,16]}}" 16
mkst st_absurd_shape "{\"a\":{$T,\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}" 16
mkst st_header_beyond_file "{}" 0 4096
mkst st_header_cap "{}" 0 4000000000
mkst st_duplicate_name "{\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{$T,\"shape\":[1],\"data_offsets\":[0,4]}}" 4
printf 'abc' >st_short
mkfifo st_fifo

# Dataset paths: ROOT holds ok.png; its parent holds the decoy. Each list
# names only a hostile path, so `index` taking it would go on to open the
# model, while refusing it leaves "no images" (and nothing read outside).
mkdir root
cp "$IMAGE" decoy.png
cp "$IMAGE" root/ok.png
ln -s ../decoy.png root/link.png
mkfifo root/fifo.png
printf '../decoy.png\n' >path_dotdot
printf '%s/decoy.png\n' "$S" >path_absolute
printf 'link.png\n' >path_symlink_out
printf 'ok.png\n' >path_inside
cp path_dotdot path_allow_outside
printf 'ok\0../decoy.png\n' >path_nul
mkfifo out.safetensors
for kv in "image_res: 65536" "batch_size_train: 1000000000000" "max_tokens: 1099511627776"; do
    printf 'train_file: [a.json]\ntest_file: [b.json]\n%s\n' "$kv" >"config_${kv%%:*}.yaml"
done
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n' >vocab.txt
printf 'not a zip archive' >junk.th # a corrupt official checkpoint (vocab.txt beside it)

run_case() { # case -> runs it, output in $S/err, status in $rc
    case $1 in
    st_*) timeout 10 "$XVLM" inspect "$1" >out 2>err ;;
    path_fifo) timeout 10 "$XVLM" preprocess --image-res 8 root/fifo.png --out o.safetensors >out 2>err ;;
    path_allow_outside) timeout 10 "$XVLM" index --model "$S/no-model" --images "$1" --image-root root \
        --allow-outside-root --out x.idx >out 2>err ;;
    path_*) timeout 10 "$XVLM" index --model "$S/no-model" --images "$1" --image-root root --out x.idx >out 2>err ;;
    out_fifo) timeout 10 "$XVLM" preprocess --image-res 8 root/ok.png --out out.safetensors >out 2>err ;;
    config_*) timeout 10 "$XVLM" finetune retrieval --config "$1.yaml" --init "$S/no-model" --output-dir o >out 2>err ;;
    leftover_convert) timeout 10 "$XVLM" convert junk.th conv/a/b >out 2>err ;;
    leftover_cache) XV_CACHE_DIR="$S/cache/xvlm" timeout 10 "$XVLM" match --model junk.th --image root/ok.png \
        --text a >out 2>err ;;
    jsonl_trailing) printf '{"text": "a"} junk\n' | timeout 10 "$XVLM" tokenize --vocab vocab.txt >out 2>err ;;
    *) echo "unknown case" >err; return 99 ;;
    esac
}

while IFS=$'\t' read -r name expect frag; do
    [[ -z $name || $name == \#* ]] && continue
    n=$((n + 1))
    run_case "$name"
    rc=$?
    why=""
    if ((rc == 124)); then why="hung (killed after 10 s)"
    elif [[ $expect == accept ]] && ((rc != 0)); then why="exit $rc, expected 0"
    elif [[ $expect == refuse ]] && ((rc != 1)); then why="exit $rc, expected 1"
    elif [[ $expect == skip ]] && ! grep -q "no images" err; then why="not skipped (the path was taken)"
    elif [[ $expect == take ]] && grep -q "no images\|warning" err; then why="the path was not taken"
    elif [[ $frag != - ]] && ! grep -qF -- "$frag" err; then why="message lacks '$frag'"
    fi
    if grep -q "AddressSanitizer\|runtime error" err; then why="sanitizer report"; fi
    if [[ -n $why ]]; then
        echo "FAIL $name: $why"
        sed 's/^/    /' err | head -5
        fail=$((fail + 1))
    else
        echo "ok   $name ($expect)"
    fi
done <"$MANIFEST"
# The outputs that must not have changed kind: FIFOs stay FIFOs, no temp files.
[[ -p out.safetensors ]] || { echo "FAIL out_fifo: the FIFO was replaced"; fail=$((fail + 1)); }
[[ -e out.safetensors.tmp || -e o.safetensors ]] && { echo "FAIL: an output was left behind"; fail=$((fail + 1)); }
# A failed conversion leaves no folder it made (the output's, the cache's).
[[ -e conv ]] && { echo "FAIL leftover_convert: conv/ left behind"; fail=$((fail + 1)); }
[[ -e cache ]] && { echo "FAIL leftover_cache: cache/ left behind"; fail=$((fail + 1)); }
((n >= 20)) || { echo "FAIL: only $n cases read from $MANIFEST"; fail=$((fail + 1)); }
echo "hostile corpus: $((n - fail)) of $n cases as expected"
((fail == 0))
