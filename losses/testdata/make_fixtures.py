#!/usr/bin/env python3
"""Records the VICReg reference fixtures used by losses/vicreg_test.ts.

Run from the repository root:  /usr/bin/python3 losses/testdata/make_fixtures.py

Inputs come from an integer hash (murmur3 fmix32) that losses/testdata/fixture_inputs.ts
reproduces bit for bit, so the large (256, 512) case stores only outputs.

References are computed in float64 twice, independently:
  * with PyTorch autograd on the formula of facebookresearch/vicreg
    main_vicreg.py (F.mse_loss, x - x.mean(0), sqrt(var + 1e-4), off_diagonal
    via the flatten/view trick), when `import torch` works;
  * with pure Python: the forward pass and the hand-derived gradients
      dinv/dx = 2(x - y)/(N D)
      dvar/dx_ij = -[gamma - s_j > 0] xc_ij / (2 D m s_j)    (m = N-1 or N; both branches ½)
      dcov/dx = 4 xc Coff / (Dc (N - 1))                      (Coff = C, zero diagonal)
and the hand gradients are checked by central differences on the (4, 3) case.
The two must agree to 1e-9; the fixture records the PyTorch values when
available (the JSON's "reference" field says which).
"""
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import torch
    import torch.nn.functional as F

    HAVE_TORCH = True
except ImportError:  # pragma: no cover
    HAVE_TORCH = False

MASK = 0xFFFFFFFF


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def imul(a, b):
    return (a * b) & MASK


def fmix32(h):
    h &= MASK
    h ^= h >> 16
    h = imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def unit(i, j, s):
    """Uniform in [-1, 1): the hash of (i, j, s) as a float64."""
    h = fmix32(imul(i, 0x9E3779B1) ^ imul(j, 0x85EBCA77) ^ imul(s, 0xC2B2AE3D))
    return h / 4294967296.0 * 2.0 - 1.0


def make_inputs(n, d):
    """x[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3)), y = f32(x + 0.2 u(i,j,2))."""
    x = [[0.0] * d for _ in range(n)]
    y = [[0.0] * d for _ in range(n)]
    for i in range(n):
        common = 0.3 * unit(i, 0, 3)
        for j in range(d):
            a = 0.5 + (j % 7) / 3.0
            x[i][j] = f32(a * unit(i, j, 1) + common)
            y[i][j] = f32(x[i][j] + 0.2 * unit(i, j, 2))
    return x, y


def py_branch(z, n, d, var_div, cov_div, gamma, eps):
    """Returns (hinge, offdiag_sum / cov_div, grad_hinge, grad_off) in float64."""
    cols = [[z[i][j] for i in range(n)] for j in range(d)]
    xc = []
    for j in range(d):
        mu = math.fsum(cols[j]) / n
        xc.append([v - mu for v in cols[j]])
    sumsq = [math.fsum(v * v for v in c) for c in xc]
    std = [math.sqrt(s / var_div + eps) for s in sumsq]
    hinge = math.fsum(max(gamma - s, 0.0) for s in std) / d
    # cov[p][q], zero diagonal
    cov = [[0.0] * d for _ in range(d)]
    for p in range(d):
        cp = xc[p]
        for q in range(p + 1, d):
            v = math.fsum(map(float.__mul__, cp, xc[q])) / (n - 1)
            cov[p][q] = v
            cov[q][p] = v
    off = math.fsum(v * v for row in cov for v in row) / cov_div
    g_hinge = [[0.0] * d for _ in range(n)]
    for j in range(d):
        if gamma - std[j] > 0:
            k = -1.0 / (d * var_div * std[j])
            for i in range(n):
                g_hinge[i][j] = k * xc[j][i]
    rows = [[xc[j][i] for j in range(d)] for i in range(n)]
    g_off = [[0.0] * d for _ in range(n)]
    k = 4.0 / (cov_div * (n - 1))
    for i in range(n):
        r = rows[i]
        g_off[i] = [k * math.fsum(map(float.__mul__, r, cov[q])) for q in range(d)]
    return hinge, off, g_hinge, g_off


def py_vicreg(x, y, o):
    n, d = len(x), len(x[0])
    var_div = n if o["variant"] == "paper-code" else n - 1
    cov_div = o["covDivisor"] or d
    inv = math.fsum((x[i][j] - y[i][j]) ** 2 for i in range(n) for j in range(d)) / (n * d)
    hx, cx, ghx, gcx = py_branch(x, n, d, var_div, cov_div, o["gamma"], o["eps"])
    hy, cy, ghy, gcy = py_branch(y, n, d, var_div, cov_div, o["gamma"], o["eps"])
    var = hx / 2 + hy / 2
    cov = cx + cy
    a, b, c = o["simCoeff"], o["stdCoeff"], o["covCoeff"]
    loss = a * inv + b * var + c * cov
    gx = [[a * 2 * (x[i][j] - y[i][j]) / (n * d) + b * ghx[i][j] / 2 + c * gcx[i][j]
           for j in range(d)] for i in range(n)]
    gy = [[a * 2 * (y[i][j] - x[i][j]) / (n * d) + b * ghy[i][j] / 2 + c * gcy[i][j]
           for j in range(d)] for i in range(n)]
    return dict(loss=loss, invariance=inv, variance=var, covariance=cov, gradX=gx, gradY=gy)


def off_diagonal(m):
    n, _ = m.shape
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def torch_vicreg(x, y, o):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    n, d = xt.shape
    unbiased = o["variant"] != "paper-code"
    cov_div = o["covDivisor"] or d
    repr_loss = F.mse_loss(xt, yt)
    xc = xt - xt.mean(dim=0)
    yc = yt - yt.mean(dim=0)
    std_x = torch.sqrt(xc.var(dim=0, unbiased=unbiased) + o["eps"])
    std_y = torch.sqrt(yc.var(dim=0, unbiased=unbiased) + o["eps"])
    std_loss = (torch.mean(F.relu(o["gamma"] - std_x)) / 2
                + torch.mean(F.relu(o["gamma"] - std_y)) / 2)
    cov_x = (xc.T @ xc) / (n - 1)
    cov_y = (yc.T @ yc) / (n - 1)
    cov_loss = (off_diagonal(cov_x).pow(2).sum().div(cov_div)
                + off_diagonal(cov_y).pow(2).sum().div(cov_div))
    loss = o["simCoeff"] * repr_loss + o["stdCoeff"] * std_loss + o["covCoeff"] * cov_loss
    loss.backward()
    return dict(loss=loss.item(), invariance=repr_loss.item(), variance=std_loss.item(),
                covariance=cov_loss.item(), gradX=xt.grad.tolist(), gradY=yt.grad.tolist())


def flat(m):
    return [v for row in m for v in row]


def max_abs_diff(a, b):
    return max(abs(p - q) for p, q in zip(a, b))


def finite_difference_check(x, y, o, h=1e-6):
    """Central differences of the pure-Python loss against its hand gradients."""
    ref = py_vicreg(x, y, o)
    for key, z in (("gradX", x), ("gradY", y)):
        for i in range(len(z)):
            for j in range(len(z[0])):
                keep = z[i][j]
                z[i][j] = keep + h
                up = py_vicreg(x, y, o)["loss"]
                z[i][j] = keep - h
                down = py_vicreg(x, y, o)["loss"]
                z[i][j] = keep
                fd = (up - down) / (2 * h)
                assert abs(fd - ref[key][i][j]) <= 1e-6 * max(1.0, abs(fd)), (key, i, j, fd, ref[key][i][j])


def reference(x, y, o):
    py = py_vicreg(x, y, o)
    if len(x) * len(x[0]) <= 64:
        finite_difference_check(x, y, o)
    if not HAVE_TORCH:
        return py
    pt = torch_vicreg(x, y, o)
    for key in ("loss", "invariance", "variance", "covariance"):
        assert abs(pt[key] - py[key]) <= 1e-9 * max(1.0, abs(pt[key])), (key, pt[key], py[key])
    for key in ("gradX", "gradY"):
        a, b = flat(pt[key]), flat(py[key])
        scale = max(abs(v) for v in a)
        assert max_abs_diff(a, b) <= 1e-9 * scale, key
    return pt


def base_options(**kw):
    o = dict(simCoeff=25.0, stdCoeff=25.0, covCoeff=1.0, eps=1e-4, gamma=1.0,
             variant="vicreg", covDivisor=None)
    o.update(kw)
    return o


CASES = [
    ("vicreg", base_options()),
    ("paper-code", base_options(variant="paper-code")),
    ("paper-code-local", base_options(variant="paper-code", covDivisor=1024)),
]


def r(v, digits=12):
    return float(f"{v:.{digits}g}")


def record(n, d, full):
    x, y = make_inputs(n, d)
    out = dict(
        n=n, d=d,
        reference="torch float64 autograd" if HAVE_TORCH else "pure-Python float64, hand gradients",
        inputs="x[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3)), y = f32(x + 0.2 u(i,j,2)), a_j = 0.5 + (j % 7)/3",
        cases=[],
    )
    if full:
        out["x"] = [r(v, 9) for v in flat(x)]
        out["y"] = [r(v, 9) for v in flat(y)]
    stride = 97
    for name, o in CASES:
        ref = reference(x, y, o)
        case = dict(
            name=name,
            options={k: v for k, v in o.items() if v is not None},
            loss=r(ref["loss"]), invariance=r(ref["invariance"]),
            variance=r(ref["variance"]), covariance=r(ref["covariance"]),
        )
        for key in ("gradX", "gradY"):
            g = flat(ref[key])
            if full:
                case[key] = [r(v, 10) for v in g]
            else:
                case[key + "Stride"] = stride
                case[key + "Strided"] = [r(v, 10) for v in g[::stride]]
                case[key + "Sum"] = r(math.fsum(g))
                case[key + "AbsSum"] = r(math.fsum(abs(v) for v in g))
                case[key + "Norm"] = r(math.sqrt(math.fsum(v * v for v in g)))
        out["cases"].append(case)
    path = os.path.join(HERE, f"vicreg_{n}x{d}.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, reference: {out['reference']})")


if __name__ == "__main__":
    print(f"torch: {torch.__version__ if HAVE_TORCH else 'not available'}", file=sys.stderr)
    record(4, 3, True)
    record(64, 32, True)
    record(256, 512, False)
