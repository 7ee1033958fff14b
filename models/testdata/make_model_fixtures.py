"""Records the PyTorch/torchvision reference fixtures for resnet_test.ts and projector_test.ts.

Run from this folder with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 make_model_fixtures.py

For each case it writes
  NAME.weights.safetensors  the torchvision-style state_dict (PyTorch layouts, with
                            `fc.*` and `num_batches_tracked`, which the import ignores)
  NAME.io.safetensors       `input` (NHWC), `r` (loss weights), `eval.embedding`,
                            `eval.feature_map` (NHWC), `train.embedding`, `after.<buffer>`
                            (running stats after one train-mode forward) and
                            `grad.<param>` (d sum(r * train.embedding) / d param, PyTorch layouts).
The networks are torchvision's ResNet class with its BasicBlock/Bottleneck and
_make_layer, rebuilt with reduced widths (so the fixtures stay small), with random
weights and random BatchNorm statistics. Safetensors files are written by hand from
the format spec (the `safetensors` package is not available here).
"""
import json
import struct

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

torch.manual_seed(0)


def save_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float64:
            t = t.float()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def reduced_resnet(block, layers, width, stem):
    """torchvision's ResNet with every width scaled to `width` (64 in torchvision)."""
    net = ResNet(block, layers, num_classes=3)
    net.inplanes = width
    if stem == "imagenet":
        net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    else:
        net.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, width * 2, layers[1], stride=2)
    net.layer3 = net._make_layer(block, width * 4, layers[2], stride=2)
    net.layer4 = net._make_layer(block, width * 8, layers[3], stride=2)
    net.fc = nn.Linear(width * 8 * block.expansion, 3)
    return net


def randomise(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def trunk(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return x


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def record_resnet(name, net, shape):
    randomise(net)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(*shape)  # NCHW
    # The references are computed in float64 (and stored as float32) so that they
    # measure the float32 error of the implementation under test, not PyTorch's.
    net.double()
    x = x.double()
    net.eval()
    with torch.no_grad():
        fmap = trunk(net, x)
        emb_eval = fmap.mean(dim=(2, 3))
    net.train()
    params = dict(net.named_parameters())
    emb = trunk(net, x).mean(dim=(2, 3))
    r = torch.randn_like(emb)
    (emb * r).sum().backward()
    io = {"input": nhwc(x), "r": r, "eval.embedding": emb_eval,
          "eval.feature_map": nhwc(fmap), "train.embedding": emb}
    for k, v in net.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            io["after." + k] = v
    for k, p in params.items():
        if not k.startswith("fc."):
            io["grad." + k] = p.grad
    save_safetensors(f"{name}.weights.safetensors", state, {"format": "pt"})
    save_safetensors(f"{name}.io.safetensors", io)
    n = sum(p.numel() for k, p in params.items() if not k.startswith("fc."))
    print(name, "params without fc:", n, "embedding", tuple(emb.shape), "feature map", tuple(fmap.shape))


record_resnet("resnet18_w4", reduced_resnet(BasicBlock, [2, 2, 2, 2], 4, "imagenet"), (2, 3, 37, 37))
record_resnet("resnet50_w2", reduced_resnet(Bottleneck, [3, 4, 6, 3], 2, "imagenet"), (2, 3, 33, 33))
record_resnet("tiny_w4_cifar", reduced_resnet(BasicBlock, [1, 1, 1, 1], 4, "cifar"), (3, 3, 8, 8))

# VICReg's Projector for --mlp 16-16-8 on a 12-d embedding.
projector = nn.Sequential(
    nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(True),
    nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(True),
    nn.Linear(16, 8, bias=False),
)
randomise(projector)
state = {k: v.clone() for k, v in projector.state_dict().items()}
x = torch.randn(5, 12)
projector.double()
x = x.double()
projector.eval()
with torch.no_grad():
    y_eval = projector(x)
projector.train()
y = projector(x)
r = torch.randn_like(y)
(y * r).sum().backward()
io = {"input": x, "r": r, "eval.output": y_eval, "train.output": y}
for k, v in projector.state_dict().items():
    if k.endswith("running_mean") or k.endswith("running_var"):
        io["after." + k] = v
for k, p in projector.named_parameters():
    io["grad." + k] = p.grad
save_safetensors("projector.weights.safetensors", state, {"format": "pt"})
save_safetensors("projector.io.safetensors", io)

# Parameter counts of the full-size networks without fc, from torchvision itself.
import torchvision


def count(net):
    return sum(p.numel() for k, p in net.named_parameters() if not k.startswith("fc."))


def count_fc(net):
    return sum(p.numel() for p in net.parameters())


r18, r34, r50 = torchvision.models.resnet18(), torchvision.models.resnet34(), torchvision.models.resnet50()
# VICReg's resnet50x2 (facebookresearch/vicreg resnet.py): width_per_group 64 * widen 2
# for the stem and every stage, i.e. torchvision's ResNet with all widths doubled.
r50x2 = reduced_resnet(Bottleneck, [3, 4, 6, 3], 128, "imagenet")
r50x2.fc = nn.Identity()
counts = {
    "resnet18": {"with_fc": count_fc(r18), "without_fc": count(r18)},
    "resnet34": {"with_fc": count_fc(r34), "without_fc": count(r34)},
    "resnet50": {"with_fc": count_fc(r50), "without_fc": count(r50)},
    "resnet50x2": {"without_fc": count(r50x2),
                   "embedding": r50x2.layer4[-1].conv3.out_channels},
}
with open("parameter_counts.json", "w") as f:
    json.dump(counts, f, indent=1)
print(json.dumps(counts))
