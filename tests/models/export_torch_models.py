"""Writes small models with PyTorch's own ONNX exporter (Debian python3-torch), so that the tests
load files exactly as PyTorch writes them: opsets 9 to 17, dynamic batch (and height/width),
weights as initializers, Constant nodes for shapes, Gather/Shape/Concat chains from x.view(...).

Run:  /usr/bin/python3 tests/models/export_torch_models.py tests/models
The outputs are checked in (a few KB each); the tests compare mpq with ONNX Runtime on them.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(x))
        x = F.relu(y + self.down(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


class SmallMobile(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.hardswish(self.stem(x))
        x = F.relu6(self.dw(x))
        x = self.bn(self.pw(x))
        x = F.max_pool2d(x, 2, ceil_mode=True)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = torch.flatten(x.mean(dim=(2, 3)), 1)
        return self.fc(x)


class SmallTransformer(nn.Module):
    def __init__(self, d=16, heads=2):
        super().__init__()
        self.embed = nn.Conv2d(1, d, 7, stride=7)
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        return self.head(x.mean(dim=1))


def randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.data.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))


def export(model, name, opset, out_dir, dynamic_hw=False):
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(2, 1, 28, 28)
    axes = {0: "N", 2: "H", 3: "W"} if dynamic_hw else {0: "N"}
    path = os.path.join(out_dir, f"torch_{name}_op{opset}.onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": axes, "logits": {0: "N"}},
                      do_constant_folding=True)
    print(path, os.path.getsize(path))


def main(out_dir):
    torch.manual_seed(0)
    resnet = SmallResNet()
    randomise_bn(resnet)
    mobile = SmallMobile()
    randomise_bn(mobile)
    transformer = SmallTransformer()
    for opset in (9, 11, 13):
        export(resnet, "resnet", opset, out_dir, dynamic_hw=True)
    for opset in (14, 17):  # HardSwish needs 14
        export(mobile, "mobile", opset, out_dir, dynamic_hw=True)
    export(transformer, "transformer", 17, out_dir)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
