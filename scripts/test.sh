#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite (all labels; set MPQ_TEST_ARGS to
# pass extra ctest arguments, e.g. "-LE slow"). ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Results of int8 kernels and some oneDNN kernels depend on the CPU: say which one this is.
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores;" \
  "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
  grep -E '^(avx2|fma|avx512f|avx512bw|avx512_vnni|avx_vnni|amx_int8)$' | tr '\n' ' ')"
scripts/setup.sh
scripts/build.sh
build/src/mpq --version  # oneDNN's instruction set and ONNX Runtime's int8 kernels
cd build
exec ctest --output-on-failure --no-label-summary -j2 ${MPQ_TEST_ARGS:-}
