#!/usr/bin/env bash
# Installs the Debian 12 packages xvlm needs to build, test and run its demo.
# Idempotent: does nothing when everything is present. Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # cblas_sgemm, OpenMP build (no oversubscription inside our parallel loops)
  libdnnl-dev              # oneDNN matmul for the Linear forward (optional at build time; faster on AVX-512)
  libcjson-dev             # JSON data files and configs
  libyaml-dev              # official YAML task configs
  libutf8proc-dev          # Unicode for the WordPiece tokenizer
  libjpeg62-turbo-dev libpng-dev   # image decoding
  libzip-dev               # PyTorch .th/.pth checkpoints (zip archives)
  libcairo2-dev            # synthetic images, plots, drawn boxes
  libfontconfig-dev        # (comes with cairo) xvlm ground --draw releases font caches at exit
  libmicrohttpd-dev        # xvlm serve (optional at build time: without it the command says so)
  chromium python3-websocket   # the web page's browser test (skipped without them)
  python3-numpy            # the Python bindings (python/xvlm) and their tests, with Debian's python3
)
if [[ "${XV_WITH_FUZZ:-1}" == 1 ]]; then
  PACKAGES+=(clang libclang-rt-14-dev libomp-dev)  # libFuzzer targets (optional; libomp: clang -fopenmp)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
