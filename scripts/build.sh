#!/usr/bin/env bash
# Configures and builds mpq in ./build (Release, -j2: the reference machine has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${MPQ_JOBS:-2}"
