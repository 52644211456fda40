#!/usr/bin/env bash
# mpq's main job on the built-in default model and data. Until the quantization pipeline lands
# (`mpq run`), that is: write the default zoo model, inspect it, evaluate it on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/demo
mkdir -p "$out"
mpq=build/src/mpq
"$mpq" zoo resnet20 -o "$out/resnet20.onnx"
"$mpq" inspect "$out/resnet20.onnx"
"$mpq" eval "$out/resnet20.onnx" --data fashion-mnist
