"""Records reference outputs for the augment tests.

Run with a Python that has Pillow and NumPy (and torch + torchvision for the
colour/TenCrop fixtures):

    python augment/testdata/make_fixtures.py

References: Pillow's Image.resize(BICUBIC), Image.crop, ImageFilter.GaussianBlur,
torchvision.transforms.functional (tensor ops) and torchvision's TenCrop.
Every image is synthetic (a formula below), so the fixtures are tiny.
"""

import json
import math
import os

import numpy as np
from PIL import Image, ImageFilter
import PIL

HERE = os.path.dirname(os.path.abspath(__file__))


def test_image(w, h):
    """A deterministic RGB test image with smooth areas, edges and extremes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 127.5 * np.sin(x * 0.7) * np.cos(y * 0.3)
    g = (x * 255.0 / (w - 1) + 60.0 * ((x // 5 + y // 4) % 2)) % 256
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 250.0, 10.0 + 3 * y)
    img = np.stack([r, g, b], axis=-1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def to_list(a):
    return a.reshape(-1).tolist()


def dump(name, obj):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print(name, os.path.getsize(path), "bytes")


def resize_fixtures():
    src = test_image(37, 29)
    pil = Image.fromarray(src, "RGB")
    cases = []
    for (w, h) in [(13, 11), (50, 41), (37, 12), (8, 29)]:
        out = np.asarray(pil.resize((w, h), Image.BICUBIC))
        cases.append({"width": w, "height": h, "data": to_list(out)})
    # Crop then resize, as torchvision's resized_crop on a PIL image.
    crops = []
    for (left, top, cw, ch, size) in [(3, 5, 20, 17, 9), (10, 2, 7, 9, 16), (0, 0, 37, 29, 12)]:
        out = np.asarray(pil.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BICUBIC))
        crops.append({"x": left, "y": top, "width": cw, "height": ch, "size": size, "data": to_list(out)})
    # Resize(size) on the shorter side then CenterCrop(size), as torchvision.
    short = []
    for size in [16, 7]:
        w, h = pil.size
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        r = pil.resize((nw, nh), Image.BICUBIC)
        top = int(round((nh - size) / 2.0))
        left = int(round((nw - size) / 2.0))
        out = np.asarray(r.crop((left, top, left + size, top + size)))
        short.append({"size": size, "data": to_list(out)})
    # Pillow's GaussianBlur(radius) (three extended box blurs).
    blurs = []
    small = test_image(19, 15)
    for radius in [0.1, 0.7, 1.3, 2.0]:
        out = np.asarray(Image.fromarray(small, "RGB").filter(ImageFilter.GaussianBlur(radius)))
        blurs.append({"radius": radius, "data": to_list(out)})
    # RandomRotation on a PIL image: rotate(angle, NEAREST), fill 0.
    rot_src = test_image(12, 12)
    rotations = []
    for angle in [7.3, -4.0, 10.0, 90.0]:
        out = np.asarray(Image.fromarray(rot_src, "RGB").rotate(angle, resample=Image.NEAREST))
        rotations.append({"angle": angle, "data": to_list(out)})
    dump("resize.json", {
        "reference": "Pillow " + PIL.__version__,
        "source": {"width": 37, "height": 29, "data": to_list(src)},
        "resize": cases,
        "crop": crops,
        "shorterCenterCrop": short,
        "blurSource": {"width": 19, "height": 15, "data": to_list(small)},
        "blur": blurs,
        "rotationSource": {"width": 12, "height": 12, "data": to_list(rot_src)},
        "rotation": rotations,
    })


def color_fixtures():
    import torch
    import torchvision
    import torchvision.transforms.functional as F
    from torchvision.transforms import TenCrop

    torch.manual_seed(0)
    x = torch.rand(3, 6, 7, dtype=torch.float32)  # CHW in [0, 1]
    x[:, 0, 0] = torch.tensor([0.2, 0.2, 0.2])  # a gray pixel (h undefined)
    x[:, 0, 1] = torch.tensor([1.0, 0.0, 0.0])
    x[:, 0, 2] = torch.tensor([0.0, 0.0, 1.0])
    x[:, 0, 3] = torch.tensor([0.3, 0.9, 0.9])  # max on g and b
    def hwc(t):
        return t.permute(1, 2, 0).contiguous().reshape(-1).tolist()
    ops = []
    for f in [0.2, 0.75, 1.0, 1.6]:
        ops.append({"op": "brightness", "factor": f, "out": hwc(F.adjust_brightness(x, f))})
        ops.append({"op": "contrast", "factor": f, "out": hwc(F.adjust_contrast(x, f))})
        ops.append({"op": "saturation", "factor": f, "out": hwc(F.adjust_saturation(x, f))})
    for f in [-0.2, -0.05, 0.0, 0.13, 0.2, 0.5]:
        ops.append({"op": "hue", "factor": f, "out": hwc(F.adjust_hue(x, f))})
    ops.append({"op": "grayscale", "factor": 0, "out": hwc(F.rgb_to_grayscale(x, 3))})
    ops.append({"op": "solarize", "factor": 0.5, "out": hwc(F.solarize(x, 0.5))})
    # A whole jitter: factors and order as ColorJitter.forward applies them.
    order = [2, 0, 3, 1]
    b, c, s, h = 1.3, 0.6, 1.7, -0.11
    y = x
    for fn in order:
        if fn == 0:
            y = F.adjust_brightness(y, b)
        elif fn == 1:
            y = F.adjust_contrast(y, c)
        elif fn == 2:
            y = F.adjust_saturation(y, s)
        else:
            y = F.adjust_hue(y, h)
    blurs = []
    for (ks, sigma) in [(5, 0.6), (7, 1.3), (11, 2.0)]:
        blurs.append({"kernelSize": ks, "sigma": sigma,
                      "out": hwc(F.gaussian_blur(x, [ks, ks], [sigma, sigma]))})
    jitter = {"order": order, "brightness": b, "contrast": c, "saturation": s, "hue": h, "out": hwc(y)}
    # TenCrop boxes: crop an image whose pixels encode their coordinates.
    boxes = []
    for (w, h, size) in [(110, 110, 96), (9, 7, 4), (10, 13, 5)]:
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        coord = torch.stack([xx, yy, torch.zeros_like(xx)]).float()
        crops = TenCrop(size)(coord)
        out = []
        for crop in crops:
            out.append({"x0": int(crop[0, 0, 0]), "y0": int(crop[1, 0, 0]),
                        "x1": int(crop[0, 0, -1]), "y1": int(crop[1, -1, 0])})
        boxes.append({"width": w, "height": h, "size": size, "crops": out})
    dump("color.json", {
        "reference": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
        "height": 6, "width": 7, "input": hwc(x), "ops": ops, "gaussianBlur": blurs, "jitter": jitter, "tenCrop": boxes,
    })


if __name__ == "__main__":
    resize_fixtures()
    try:
        color_fixtures()
    except ImportError as error:
        print("skipping color.json:", error)
