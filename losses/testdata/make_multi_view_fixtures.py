#!/usr/bin/env python3
"""Records the multi-crop fixture used by losses/multi_view_test.ts.

Run from the repository root:  python3 losses/testdata/make_multi_view_fixtures.py
(needs PyTorch; the fixture records its version).

2 global + 4 local views of N = 6 images, at two crop sizes: the global
views' feature maps are 4x4 cells, the local views' 3x3; embeddings are
[N, 16], local descriptors [N, L, 8]. Inputs come from the integer hash of
make_fixtures.py (murmur3 fmix32), which fixture_inputs.ts reproduces bit for
bit; crop boxes and flips are drawn here and stored.

The references are written from VICRegL's definitions (Bardes, Ponce & LeCun
2022b, facebookresearch/VICRegL main_vicregl.py `global_loss`, `local_loss`),
in float64 with PyTorch autograd, as plain loops over the views:

  global: inv = mean over the ordered pairs (i, j), i < 2, j != i, of
          F.mse_loss(z_i, z_j); var = mean over views of mean relu(1 - std);
          cov = mean over views of off-diagonal C^2 sum / D.
          This project keeps VICReg's two-branch convention for the covariance
          (the sum over the two branches, i.e. 2 x the mean over views), so the
          recorded "covariance" is 2 * cov and the loss is
          25 inv + 25 var + 1 * (2 cov).
  local:  mean over the same ordered pairs of the pair's local loss: for each
          direction (a -> b and b -> a), each cell of a is paired with its
          nearest cell of b (by image location from the crop boxes, or by L2
          distance between descriptors), the 4 pairs with the smallest
          distance per image are kept, all images' kept pairs are pooled into
          one batch, and the two-view VICReg loss is taken on it; the pair's
          terms are the mean of the two directions. (The pooling is this
          project's documented departure from VICRegL, which computes the
          statistics per match slot.)

Matching is a discrete choice: the script asserts that every choice it makes
(each kept cell's nearest neighbour, and the cut between the 4th and 5th
closest cell) wins by a margin far above float32 rounding, so the float32
implementation must make the same choices. Gradients are checked by central
differences on a few coordinates.
"""
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

# The inputs' hash, shared with make_fixtures.py (and fixture_inputs.ts).
from make_fixtures import f32, unit

HERE = os.path.dirname(os.path.abspath(__file__))

N = 6
D = 16  # global embedding width
DL = 8  # local descriptor width
GLOBAL_VIEWS = 2
LOCAL_VIEWS = 4
GRIDS = [(4, 4)] * GLOBAL_VIEWS + [(3, 3)] * LOCAL_VIEWS
TOP_K = 4
MARGIN = 1e-4  # distance margin of every discrete choice


def make_embeddings(v, n, d):
    """z_v[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3) + s_v u(i,j,100+v)), s_v = 0.2 (global) or 0.5."""
    s = 0.2 if v < GLOBAL_VIEWS else 0.5
    return [[f32((0.5 + (j % 7) / 3.0) * unit(i, j, 1) + 0.3 * unit(i, 0, 3) + s * unit(i, j, 100 + v))
             for j in range(d)] for i in range(n)]


def make_map(v, n, l, d):
    """m_v[i][c][k] = f32(u(1000 i + c, k, 200+v) + 0.5 u(i, k, 300))."""
    return [[[f32(unit(1000 * i + c, k, 200 + v) + 0.5 * unit(i, k, 300)) for k in range(d)]
             for c in range(l)] for i in range(n)]


def draw_geometry(rng, local):
    """A crop box [x0, y0, x1, y1] (normalised) and a flip, RandomResizedCrop-like."""
    lo, hi = (0.05, 0.4) if local else (0.4, 1.0)
    while True:
        area = rng.uniform(lo, hi)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = math.sqrt(area * ratio)
        h = math.sqrt(area / ratio)
        if w <= 1 and h <= 1:
            break
    x0 = rng.uniform(0, 1 - w)
    y0 = rng.uniform(0, 1 - h)
    # stored as float32 so that both sides read the same box
    box = [f32(x0), f32(y0), f32(x0 + w), f32(y0 + h)]
    return dict(box=box, flip=rng.random() < 0.5)


def off_diagonal(m):
    n, _ = m.shape
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def vicreg_terms(x, y, unbiased=True):
    """The two-view VICReg terms (main_vicreg.py): inv, var (1/2 each branch), cov (summed)."""
    n, d = x.shape
    inv = F.mse_loss(x, y)
    xc = x - x.mean(dim=0)
    yc = y - y.mean(dim=0)
    std_x = torch.sqrt(xc.var(dim=0, unbiased=unbiased) + 1e-4)
    std_y = torch.sqrt(yc.var(dim=0, unbiased=unbiased) + 1e-4)
    var = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov = (off_diagonal(xc.T @ xc / (n - 1)).pow(2).sum() / d
           + off_diagonal(yc.T @ yc / (n - 1)).pow(2).sum() / d)
    return inv, var, cov


def global_loss(embeddings, unbiased):
    """VICRegL's global_loss over the views, unweighted terms (VICRegL's averaging)."""
    views = len(embeddings)
    inv, pairs = 0.0, 0
    for i in range(GLOBAL_VIEWS):
        for j in range(views):
            if j == i:
                continue
            inv = inv + F.mse_loss(embeddings[i], embeddings[j])
            pairs += 1
    inv = inv / pairs
    var, cov = 0.0, 0.0
    for z in embeddings:
        n, d = z.shape
        zc = z - z.mean(dim=0)
        std = torch.sqrt(zc.var(dim=0, unbiased=unbiased) + 1e-4)
        var = var + torch.mean(F.relu(1 - std))
        cov = cov + off_diagonal(zc.T @ zc / (n - 1)).pow(2).sum() / d
    return inv, var / views, cov / views


def cell_centres(geometry, h, w):
    x0, y0, x1, y1 = geometry["box"]
    out = []
    for r in range(h):
        for c in range(w):
            u = (c + 0.5) / w
            v = (r + 0.5) / h
            out.append((x0 + ((1 - u) if geometry["flip"] else u) * (x1 - x0), y0 + v * (y1 - y0)))
    return torch.tensor(out, dtype=torch.float64)


def choose(dist):
    """Nearest target of each source cell, then the TOP_K closest sources: (sources, targets).

    Asserts that each choice wins by MARGIN."""
    s, t = dist.shape
    best, nn = dist.min(dim=1)
    if t > 1:
        second = dist.sort(dim=1).values[:, 1]
    k = min(TOP_K, s)
    order = torch.argsort(best)
    kept = order[:k]
    if t > 1:
        gaps = (second - best)[kept]
        assert gaps.min().item() > MARGIN, ("nearest neighbour tie", gaps.min().item())
    if k < s:
        gap = best[order[k]] - best[order[k - 1]]
        assert gap.item() > MARGIN, ("top-k tie", gap.item())
    return kept, nn[kept]


def pair_local_loss(ma, mb, ga, gb, grid_a, grid_b, matching):
    """One pair's local loss (both directions' means): inv, var, cov."""
    n = ma.shape[0]
    sides = []
    for (src, tgt, g_src, g_tgt, grid_src, grid_tgt) in (
        (ma, mb, ga, gb, grid_a, grid_b),
        (mb, ma, gb, ga, grid_b, grid_a),
    ):
        rows_s, rows_t = [], []
        for i in range(n):
            if matching == "location":
                p = cell_centres(g_src[i], *grid_src)
                q = cell_centres(g_tgt[i], *grid_tgt)
                dist = torch.cdist(p, q)
            else:
                dist = torch.cdist(src[i].detach(), tgt[i].detach())
            s_idx, t_idx = choose(dist)
            rows_s.append(src[i][s_idx])
            rows_t.append(tgt[i][t_idx])
        sides.append(vicreg_terms(torch.cat(rows_s), torch.cat(rows_t)))
    return tuple((a + b) / 2 for a, b in zip(*sides))


def local_loss(maps, geometries, matching):
    views = len(maps)
    totals = [0.0, 0.0, 0.0]
    pairs = 0
    for i in range(GLOBAL_VIEWS):
        for j in range(views):
            if j == i:
                continue
            terms = pair_local_loss(maps[i], maps[j], geometries[i], geometries[j],
                                    GRIDS[i], GRIDS[j], matching)
            totals = [a + b for a, b in zip(totals, terms)]
            pairs += 1
    return [t / pairs for t in totals]


def leaves(values):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]


def weighted(inv, var, cov):
    return 25 * inv + 25 * var + 1 * cov


def global_case(name, unbiased, raw):
    z = leaves(raw)
    inv, var, cov_mean = global_loss(z, unbiased)
    cov = 2 * cov_mean  # this project's convention: VICReg's sum over two branches
    loss = weighted(inv, var, cov)
    loss.backward()

    def f(values):
        zz = [torch.tensor(v, dtype=torch.float64) for v in values]
        a, b, c = global_loss(zz, unbiased)
        return weighted(a, b, 2 * c).item()

    check_fd(f, raw, z)
    # sanity: two views reduce to the two-view VICReg loss
    two = [torch.tensor(v, dtype=torch.float64) for v in raw[:2]]
    a, b, c = global_loss(two, unbiased)
    p, q, r = vicreg_terms(*two, unbiased=unbiased)
    assert abs(a - p) < 1e-12 and abs(b - q) < 1e-12 and abs(2 * c - r) < 1e-12
    return dict(name=name, variant="vicreg" if unbiased else "paper-code",
                loss=loss.item(), invariance=inv.item(), variance=var.item(), covariance=cov.item(),
                grads=[flat(t.grad.tolist()) for t in z])


def local_case(matching, raw, geometries):
    m = leaves(raw)
    inv, var, cov = local_loss(m, geometries, matching)
    loss = weighted(inv, var, cov)
    loss.backward()

    def f(values):
        mm = [torch.tensor(v, dtype=torch.float64) for v in values]
        return weighted(*local_loss(mm, geometries, matching)).item()

    check_fd(f, raw, m)
    return dict(name=f"local-{matching}", matching=matching, loss=loss.item(), invariance=inv.item(),
                variance=var.item(), covariance=cov.item(), grads=[flat(t.grad.tolist()) for t in m])


def flat(x):
    if isinstance(x, list):
        return [v for item in x for v in flat(item)]
    return [x]


def check_fd(f, raw, leaves_, h=1e-6, count=6):
    """Central differences of the float64 loss at a few coordinates against autograd."""
    rng = random.Random(7)
    for _ in range(count):
        v = rng.randrange(len(raw))
        t = torch.tensor(raw[v], dtype=torch.float64)
        idx = tuple(rng.randrange(s) for s in t.shape)
        up = [torch.tensor(r, dtype=torch.float64) for r in raw]
        down = [torch.tensor(r, dtype=torch.float64) for r in raw]
        up[v][idx] += h
        down[v][idx] -= h
        fd = (f([u.tolist() for u in up]) - f([d.tolist() for d in down])) / (2 * h)
        g = leaves_[v].grad[idx].item()
        assert abs(fd - g) <= 1e-5 * max(1.0, abs(g)), ("finite difference", v, idx, fd, g)


def r(v, digits=12):
    return float(f"{v:.{digits}g}")


def main():
    print(f"torch: {torch.__version__}", file=sys.stderr)
    views = GLOBAL_VIEWS + LOCAL_VIEWS
    embeddings = [make_embeddings(v, N, D) for v in range(views)]
    maps = [make_map(v, N, h * w, DL) for v, (h, w) in enumerate(GRIDS)]
    seed = 0
    while True:
        rng = random.Random(seed)
        geometries = [[draw_geometry(rng, v >= GLOBAL_VIEWS) for _ in range(N)] for v in range(views)]
        try:
            cases = [global_case("global-vicreg", True, embeddings),
                     global_case("global-paper-code", False, embeddings),
                     local_case("location", maps, geometries),
                     local_case("feature", maps, geometries)]
            break
        except AssertionError as e:
            if "tie" not in str(e):
                raise
            seed += 1
    out = dict(
        reference=f"torch {torch.__version__} float64 autograd",
        n=N, d=D, localDim=DL, globalViews=GLOBAL_VIEWS, localViews=LOCAL_VIEWS,
        grids=[dict(h=h, w=w) for h, w in GRIDS], topK=TOP_K, geometrySeed=seed,
        inputs=("embeddings: z_v[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3) + s_v u(i,j,100+v)), "
                "a_j = 0.5 + (j % 7)/3, s_v = 0.2 (global) or 0.5 (local); "
                "maps: m_v[i][c][k] = f32(u(1000 i + c, k, 200+v) + 0.5 u(i, k, 300))"),
        checks=dict(embeddingSum=math.fsum(flat(embeddings)), mapSum=math.fsum(flat(maps)),
                    firstEmbedding=embeddings[0][0][0], lastMap=maps[-1][-1][-1][-1]),
        geometries=geometries,
        cases=[],
    )
    for c in cases:
        c = dict(c)
        for key in ("loss", "invariance", "variance", "covariance"):
            c[key] = r(c[key])
        c["grads"] = [[r(v, 10) for v in g] for g in c["grads"]]
        out["cases"].append(c)
    path = os.path.join(HERE, "multi_view.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, geometry seed {seed})")


if __name__ == "__main__":
    main()
