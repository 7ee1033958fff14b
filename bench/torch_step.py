"""PyTorch twin of bench/resnet_step.ts: times the same VICReg training step.

Same network (models' ResNet = torchvision's structure without fc, CIFAR or
ImageNet stem, zero-init residual; the two blocks are written out below in
torchvision's layout, so the script needs only torch, not a torchvision built
for the same torch), projector (VICReg's: Linear-BN-ReLU hidden
layers with bias, last Linear without), VICReg loss (25, 25, 1) over two views
of `batch` images in training-mode BN, and a plain SGD update. With
`localProjector` in the case, a local projector on every cell of the last
feature map and α × the VICReg loss of the two views' cells paired by grid
index are added, as bench/resnet_step.ts does. Prints one JSON line.

With `--precision bf16` the networks' forward runs under
`torch.autocast(device, dtype=torch.bfloat16)` (mixed precision as the paper
trains with AMP: convolutions and linear layers in bf16, fp32 master weights
and SGD); the loss is computed on the projections cast back to float32.

Usage: python3 bench/torch_step.py '<case JSON>' [--steps N] [--warmup N]
       [--threads N] [--device cpu|cuda] [--precision fp32|bf16]
"""

import contextlib

import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: 3x3 (stride) - BN - ReLU - 3x3 - BN, + shortcut, ReLU."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: stride on the 3x3): 1x1 - 3x3 - 1x1 (x4), + shortcut, ReLU."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# models/resnet.ts's ARCHS: block, blocks per stage, stem width.
ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], 64),
    "resnet34": (BasicBlock, [3, 4, 6, 3], 64),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 64),
    "resnet50x2": (Bottleneck, [3, 4, 6, 3], 128),
    "tiny": (BasicBlock, [1, 1, 1, 1], 16),
}


class Backbone(nn.Module):
    """torchvision's ResNet without fc, any stem width, CIFAR or ImageNet stem."""

    def __init__(self, arch, stem):
        super().__init__()
        block, layers, width = ARCHS[arch]
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = width
        stages = []
        for i, n in enumerate(layers):
            stages.append(self._stage(block, width * 2**i, n, 1 if i == 0 else 2))
        self.layers = nn.Sequential(*stages)
        self.dim = self.inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero_init_residual, as createResNet's default.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _stage(self, block, planes, n, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        """The embedding [N, C] and the last feature map [N, C, h, w]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        fmap = self.layers(x)
        return fmap.mean(dim=(2, 3)), fmap


def projector(dim, widths):
    """VICReg's Projector: (Linear + BN1d + ReLU)*, last Linear without bias."""
    layers, f = [], [dim] + list(widths)
    for i in range(len(f) - 2):
        layers += [nn.Linear(f[i], f[i + 1]), nn.BatchNorm1d(f[i + 1]), nn.ReLU(True)]
    layers.append(nn.Linear(f[-2], f[-1], bias=False))
    return nn.Sequential(*layers)


class Net(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.backbone = Backbone(spec["arch"], spec["stem"])
        self.projector = projector(self.backbone.dim, spec["projector"])
        local = spec.get("localProjector")
        self.local = None if local is None else projector(self.backbone.dim, local)

    def forward(self, x):
        """The global projection, and the cells' local projections or None."""
        emb, fmap = self.backbone(x)
        if self.local is None:
            return self.projector(emb), None
        cells = fmap.permute(0, 2, 3, 1).reshape(-1, fmap.shape[1])
        return self.projector(emb), self.local(cells)


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


def multi_view(zs, global_views=2):
    """VICRegL's global_loss over the views (each global view against every
    other view; variance and covariance per view), with the covariance on
    VICReg's two-branch scale (2/V x the sum over views), as `losses`'
    multiViewLoss; at two views it is vicreg(za, zb)."""
    n, d = zs[0].shape
    inv, pairs = 0.0, 0
    for i in range(global_views):
        for j in range(len(zs)):
            if j != i:
                inv = inv + F.mse_loss(zs[i], zs[j])
                pairs += 1
    var = cov = 0.0
    for z in zs:
        c = z - z.mean(0)
        std = torch.sqrt(c.pow(2).mean(0) + 1e-4)
        var = var + F.relu(1 - std).mean()
        m = (c.T @ c) / (n - 1)
        cov = cov + (m.pow(2).sum() - m.diagonal().pow(2).sum()) / d
    views = len(zs)
    return 25 * inv / pairs + 25 * var / views + 2 * cov / views


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
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
    # Multi-crop cases: local crops of localSize px, global loss only.
    ls = spec.get("localSize", s)
    locals_ = [torch.randn(b, 3, ls, ls, device=device) for _ in range(spec.get("localCrops", 0))]

    alpha = spec.get("localAlpha", 0.2)

    def autocast():
        if args.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def forward(x):
        """The projections (global, local or None), as float32."""
        with autocast():
            z, l = net(x)
        return z.float(), None if l is None else l.float()

    def step():
        opt.zero_grad(set_to_none=True)
        (za, la), (zb, lb) = forward(xa), forward(xb)
        if locals_:
            return step_multi_view(za, zb)
        loss = vicreg(za, zb)
        if la is not None:
            loss = loss + alpha * vicreg(la, lb)
        loss.backward()
        opt.step()
        return loss

    def step_multi_view(za, zb):
        loss = multi_view([za, zb] + [forward(x)[0] for x in locals_])
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
        "precision": args.precision,
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
