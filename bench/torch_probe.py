"""Times the linear probe of probe/linear.ts in PyTorch and prints one JSON
line: seconds to train.

Same problem as bench/probe_compare.ts: standardised features [rows, dim],
a linear layer to `classes` logits, cross-entropy, SGD (momentum 0.9,
weight decay on weights and bias), per-epoch cosine learning rate, batch 256
(the last batch of an epoch smaller), reshuffled every epoch. The features are
Gaussian (numpy, seeded): the timing does not depend on their values.

Usage: python3 torch_probe.py --rows 10000 --dim 4096 --classes 100 --epochs 100
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--wd", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=0)  # 0: every core
    args = parser.parse_args()
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((args.rows, args.dim), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, args.classes, args.rows))
    start = time.perf_counter()
    x = (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-6)
    model = torch.nn.Linear(args.dim, args.classes)
    opt = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.wd
    )
    g = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
        order = torch.randperm(args.rows, generator=g)
        for i in range(0, args.rows, args.batch):
            idx = order[i : i + args.batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
