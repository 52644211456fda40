#!/usr/bin/env bash
# mpq's main job on the built-in default model (examples/models/resnet20.onnx, trained on
# Fashion-MNIST) and data: `mpq run` at the default budget of 3 average weight bits with 8-bit
# activations. It measures the sensitivity, searches the bit widths, quantizes, evaluates on the
# 10,000 test images against float and uniform precision, verifies the file in ONNX Runtime and
# writes the report. Prints the summary table and the report's path. The demo compares with uniform
# W3 (the same size) and W4 and measures one frontier point, to stay within two minutes on two
# cores; `mpq run` without those flags measures more baselines (docs/run.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${MPQ_DEMO_DIR:-build/runs/resnet20}
build/src/mpq run examples/models/resnet20.onnx --data fashion-mnist:train --budget avg-bits=3 \
  --uniform 3,4 --frontier-evals 1 -o "$out"
