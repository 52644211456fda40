"""The peer for bench_sensitivity: Hutchinson's per-layer Hessian trace written with PyTorch's Python
API in the style of PyHessian (Rademacher probes; per batch, gradients with create_graph, then the
gradient of <g, v> gives Hv; per layer v_l . (Hv)_l), on the same ONNX model (BatchNormalization
already folded by mpq), the same samples, batch size and probe count. The model is run by a small
interpreter of the ONNX ops the zoo uses, with torch.nn.functional.
  /usr/bin/python3 hutchinson_torch.py MODEL.onnx X.npy Y.npy BATCH PROBES THREADS
Prints {"seconds": ..., "traces": {layer: trace}}.
"""
import json
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    k = len(w.shape) - 2
    pads = a.get("pads", [0] * (2 * k))
    if any(pads[i] != pads[i + k] for i in range(k)):
        x = F.pad(x, [p for i in reversed(range(k)) for p in (pads[i], pads[i + k])])
        pads = [0] * (2 * k)
    f = F.conv2d if k == 2 else F.conv1d
    return f(x, w, b, a.get("strides", [1] * k), pads[:k], a.get("dilations", [1] * k),
             a.get("group", 1))


def gemm(a_, b_, c_, a):
    if a.get("transA", 0):
        a_ = a_.t()
    if a.get("transB", 0):
        b_ = b_.t()
    y = a.get("alpha", 1.0) * (a_ @ b_)
    return y if c_ is None else y + a.get("beta", 1.0) * c_


def run(model, weights, x):
    v = dict(weights)
    v[model.graph.input[0].name] = x
    for n in model.graph.node:
        i = [v[name] if name else None for name in n.input]
        a = attrs(n)
        op = n.op_type
        if op == "Conv":
            y = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Gemm":
            y = gemm(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "Clip":
            lo = i[1] if len(i) > 1 and i[1] is not None else a.get("min", -float("inf"))
            hi = i[2] if len(i) > 2 and i[2] is not None else a.get("max", float("inf"))
            y = torch.clamp(i[0], float(lo), float(hi))
        elif op == "HardSwish":
            y = F.hardswish(i[0])
        elif op == "HardSigmoid":
            y = torch.clamp(a.get("alpha", 0.2) * i[0] + a.get("beta", 0.5), 0, 1)
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Mul":
            y = i[0] * i[1]
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=tuple(range(2, i[0].dim())), keepdim=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:axis])), -1)
        elif op == "Reshape":
            shape = [int(s) for s in i[1].tolist()]
            shape = [i[0].shape[k] if s == 0 else s for k, s in enumerate(shape)]
            y = i[0].reshape(shape)
        elif op == "Identity":
            y = i[0]
        else:
            raise SystemExit(f"hutchinson_torch.py: op {op} (node {n.name}) is not supported")
        v[n.output[0]] = y
    return v[model.graph.output[0].name]


def main():
    path, xs, ys = sys.argv[1], sys.argv[2], sys.argv[3]
    batch, probes, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(threads)
    model = onnx.load(path)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
               for t in model.graph.initializer}
    layers = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")
              and len(n.input) > 1 and n.input[1] in weights]
    params = []
    for n in layers:
        weights[n.input[1]] = weights[n.input[1]].clone().requires_grad_(True)
        params.append(weights[n.input[1]])
    x_all = torch.from_numpy(np.load(xs))
    y_all = torch.from_numpy(np.load(ys)).long()
    n_samples = x_all.shape[0]
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    traces = [0.0] * len(params)
    for _ in range(probes):
        v = [torch.randint(0, 2, p.shape, generator=gen).float() * 2 - 1 for p in params]
        hv = [torch.zeros_like(p) for p in params]
        for s in range(0, n_samples, batch):
            x, y = x_all[s:s + batch], y_all[s:s + batch]
            loss = F.cross_entropy(run(model, weights, x), y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            hvb = torch.autograd.grad(grads, params, grad_outputs=v)
            for k in range(len(params)):
                hv[k] += hvb[k].detach() * (x.shape[0] / n_samples)
        for k in range(len(params)):
            traces[k] += float((v[k] * hv[k]).sum()) / probes
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds,
                      "traces": {n.name: t for n, t in zip(layers, traces)}}))


if __name__ == "__main__":
    main()
