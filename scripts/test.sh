#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite (all labels; set MPQ_TEST_ARGS to
# pass extra ctest arguments, e.g. "-LE slow"). ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
exec ctest --output-on-failure --no-label-summary -j2 ${MPQ_TEST_ARGS:-}
