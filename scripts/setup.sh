#!/usr/bin/env bash
# Installs what mpq needs on Debian 12 and skips what is already there: the Debian packages of
# docs/design (libtorch, ONNX, CBC, ...), OpenBLAS as the BLAS libtorch uses, and ONNX Runtime's
# node binding (npm, --ignore-scripts) for the tests and benchmarks that compare with it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ccache pkg-config git
  libtorch-dev libopenblas0-pthread libdnnl-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  coinor-libcbc-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libstb-dev zlib1g-dev
  dataset-fashion-mnist libonnx-testdata
  python3-torch python3-pulp
  nodejs npm
  chromium  # the report test draws report.html headless
  qemu-user  # ONNX Runtime on an emulated CPU without VNNI (mpq verify --emulate-cpu, tests)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node that came with the machine (not Debian's) is fine: only install Debian's when none.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libtorch's matmul goes through the system BLAS: make it OpenBLAS (pthread), not the reference.
blas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [ -e "$blas" ] && command -v update-alternatives >/dev/null; then
  current=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
  if [ "$current" != "$(readlink -f $blas)" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null
  fi
fi

# ONNX Runtime's node binding; its install script (a CUDA download) is skipped, the bundled
# linux-x64 library is what runs.
if [ ! -e tools/ort/node_modules/onnxruntime-node/bin/napi-v3/linux/x64/libonnxruntime.so.1 ]; then
  echo "setup: installing onnxruntime-node (npm)" >&2
  (cd tools/ort && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
