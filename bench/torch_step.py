"""PyTorch twin of bench/resnet_step.ts: times the same VICReg training step.

Same network (CIFAR-style ResNet, BasicBlock, 3x3 stem, no max-pool,
1x1-conv + BN shortcuts, global average pool), projector (Linear-BN-ReLU
hidden layers, last Linear, no biases), VICReg loss (25, 25, 1) over two views
of `batch` images, and a plain SGD update. Prints one JSON line.

Usage: python3 bench/torch_step.py '<case JSON>' [--steps N] [--warmup N]
       [--threads N] [--device cpu|cuda]
"""

import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class Net(nn.Module):
    def __init__(self, spec):
        super().__init__()
        widths, blocks = spec["widths"], spec["blocks"]
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        layers, cin = [], widths[0]
        for stage, cout in enumerate(widths):
            for i in range(blocks[stage]):
                layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        proj = []
        for i, d in enumerate(spec["projector"]):
            proj.append(nn.Linear(cin, d, bias=False))
            if i < len(spec["projector"]) - 1:
                proj += [nn.BatchNorm1d(d), nn.ReLU()]
            cin = d
        self.projector = nn.Sequential(*proj)

    def forward(self, x):
        h = self.layers(self.stem(x))
        return self.projector(h.mean(dim=(2, 3)))


def vicreg(za, zb):
    n, d = za.shape
    inv = F.mse_loss(za, zb)
    var = cov = 0.0
    for z in (za, zb):
        c = z - z.mean(0)
        std = torch.sqrt(c.pow(2).mean(0) + 1e-4)
        var = var + F.relu(1 - std).mean() / 2
        m = (c.T @ c) / (n - 1)
        cov = cov + (m.pow(2).sum() - m.diagonal().pow(2).sum()) / d
    return 25 * inv + 25 * var + cov


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    spec = json.loads(args.case)
    # Debian's build defaults to one thread; compare on every core we have.
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = Net(spec).to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    s, b = spec["imageSize"], spec["batch"]
    # NCHW here; the same images as NHWC on the TF.js side.
    xa = torch.randn(b, 3, s, s, device=device)
    xb = torch.randn(b, 3, s, s, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = vicreg(net(xa), net(xb))
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step().item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / args.steps
    print(json.dumps({
        "ms_per_step": round(ms, 1),
        "images_per_s": round(b * 1000 / ms, 2),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
