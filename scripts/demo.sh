#!/usr/bin/env bash
# mpq's main job on the built-in default model (examples/models/resnet20.onnx) and data
# (Fashion-MNIST). Until the quantization pipeline lands (`mpq run`), that is: inspect the model
# and evaluate it on the test set.
set -euo pipefail
cd "$(dirname "$0")/.."
mpq=build/src/mpq
model=examples/models/resnet20.onnx
"$mpq" inspect "$model"
"$mpq" eval "$model" --data fashion-mnist
