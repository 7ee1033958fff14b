"""Times torchvision's per-image two-view VICReg TrainTransform (PIL path)
and prints one JSON line: images (pairs of views) per second.

Per view, as augment/'s TrainTransform defaults: RandomResizedCrop(size,
scale (0.2, 1), bicubic), flip p 0.5, ColorJitter(0.8, 0.8, 0.8, 0.2) p 0.8,
grayscale p 0.2, Pillow GaussianBlur(sigma ~ U(0.1, 2)) p 1.0 / 0.1, solarize
p 0 / 0.2, ToTensor, Normalize (ImageNet). The sources are the same synthetic
uint8 images as bench/augment_compare.ts's ((i * 7 + k * 13) % 256), and a
batch is stacked to two [N, 3, size, size] tensors, as a DataLoader would.

Usage: python3 torch_augment.py --batch 64 --side 128 --size 96 --iters 3
"""
import argparse
import json
import random
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms


class GaussianBlur:
    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        if random.random() < self.p:
            sigma = random.random() * 1.9 + 0.1
            return img.filter(ImageFilter.GaussianBlur(sigma))
        return img


class Solarization:
    def __init__(self, p):
        self.p = p

    def __call__(self, img):
        if random.random() < self.p:
            return ImageOps.solarize(img)
        return img


def make(size, blur_p, sol_p):
    return transforms.Compose([
        transforms.RandomResizedCrop(
            size, scale=(0.2, 1.0),
            interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(p=0.5),
        transforms.RandomApply(
            [transforms.ColorJitter(brightness=0.8, contrast=0.8,
                                    saturation=0.8, hue=0.2)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        GaussianBlur(p=blur_p),
        Solarization(p=sol_p),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406],
                             std=[0.229, 0.224, 0.225]),
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    random.seed(0)
    torch.manual_seed(0)
    t1, t2 = make(a.size, 1.0, 0.0), make(a.size, 0.1, 0.2)
    # Same synthetic content as the Deno side: (i * 7 + k * 13) % 256.
    n = a.side * a.side * 3
    base = np.arange(n, dtype=np.int64) * 7
    images = [
        Image.fromarray(((base + k * 13) % 256).astype(np.uint8).reshape(
            a.side, a.side, 3))
        for k in range(a.batch)
    ]

    def step():
        v1 = torch.stack([t1(im) for im in images])
        v2 = torch.stack([t2(im) for im in images])
        return v1, v2

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    ms = (time.perf_counter() - t0) * 1000 / a.iters
    print(json.dumps({
        "ms_per_batch": round(ms, 1),
        "images_per_s": round(a.batch * 1000 / ms, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
