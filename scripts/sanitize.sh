#!/usr/bin/env bash
# Builds mpq and its tests with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/ and
# runs the unit and CLI tests (label unit, not slow) under them. Not part of the default CI: on
# 2 cores the build takes about 25 minutes and the tests 7 (docs/cpu.md). Extra ctest arguments:
# MPQ_TEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPQ_SANITIZE=ON \
  -DMPQ_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"${MPQ_JOBS:-2}"
cd build-asan
# Leaks: libtorch and protobuf keep global allocations alive until exit; not mpq's to fix.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
exec ctest --output-on-failure --no-label-summary -j2 -L unit -LE slow ${MPQ_TEST_ARGS:-}
