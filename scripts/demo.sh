#!/usr/bin/env bash
# mpq's main job on the built-in default model and data. Until the quantization pipeline lands
# (`mpq run`), that is: inspect the default trained model and evaluate it on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
mpq=build/src/mpq
model=examples/models/resnet20.onnx
[ -e "$model" ] || model=examples/models/cnn.onnx
"$mpq" inspect "$model"
"$mpq" eval "$model" --data fashion-mnist
