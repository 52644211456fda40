#!/usr/bin/env bash
# mpq's main job on the built-in default model (examples/models/resnet20.onnx) and data
# (Fashion-MNIST). Until the whole pipeline lands (`mpq run`), that is: inspect the model, evaluate
# it on the test set, quantize it to 4-bit weights and 8-bit activations, and check the quantized
# file in ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
mpq=build/src/mpq
model=examples/models/resnet20.onnx
"$mpq" inspect "$model"
"$mpq" eval "$model" --data fashion-mnist
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$mpq" quantize "$model" --bits 4/8 --data fashion-mnist:train -o "$out/resnet20.w4a8.onnx" \
  --eval fashion-mnist
"$mpq" verify "$out/resnet20.w4a8.onnx" --data fashion-mnist
