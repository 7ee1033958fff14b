"""PyTorch's own profile (torch.profiler) of bench/torch_step.py's step.

The same network, loss, update, views and thread count as torch_step.py (it
imports them from there), profiled over `--steps` steps after `--warmup`
ones. Prints one JSON line: the unprofiled and profiled ms per step, the self
CPU time per step of each category of op (the categories bench/profile.ts
uses for ours), and torch.profiler's own table (top ops by self CPU time).

Usage: python3 bench/torch_profile.py '<case JSON>' [--steps N] [--warmup N]
       [--threads N] [--rows N]
"""

import argparse
import json
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import Net, vicreg  # noqa: E402

# Self CPU time by op name, in bench/profile.ts's categories. Autograd's
# `evaluate_function` wrappers' self time is the autograd engine's own.
CATEGORIES = [
    ("conv forward", ("aten::mkldnn_convolution", "aten::_convolution",
                      "aten::convolution", "aten::conv2d", "aten::_mkldnn_convolution")),
    ("conv backward (input + weight)", ("aten::convolution_backward",
                                        "aten::mkldnn_convolution_backward")),
    ("batch norm", ("aten::native_batch_norm", "aten::native_batch_norm_backward",
                    "aten::batch_norm", "aten::_batch_norm_impl_index",
                    "aten::_native_batch_norm_legit", "aten::_batch_norm_with_update",
                    "aten::batch_norm_backward", "aten::_batch_norm_with_update_functional",
                    "aten::_native_batch_norm_legit_functional")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::matmul", "aten::bmm", "aten::linear")),
    ("pooling", ("aten::max_pool2d", "aten::max_pool2d_with_indices",
                 "aten::max_pool2d_with_indices_backward", "aten::adaptive_avg_pool2d")),
    ("reductions", ("aten::sum", "aten::mean", "aten::var", "aten::std")),
    ("optimizer", ("Optimizer.step#SGD.step", "Optimizer.zero_grad#SGD.zero_grad",
                   "aten::_foreach_add_")),
]


COPIES = {
    "aten::" + n for n in (
        "copy_ empty empty_like empty_strided new_empty_strided view reshape "
        "_reshape_alias permute transpose t expand as_strided as_strided_ zeros "
        "zeros_like zero_ ones_like fill_ clone contiguous detach detach_ select "
        "slice diagonal unsqueeze squeeze flatten resize_ to _to_copy alias "
        "lift_fresh result_type item _local_scalar_dense"
    ).split()
}


def category(name):
    if name.startswith("autograd::engine::evaluate_function") or (
        not name.startswith("aten::") and "Backward" in name
    ):
        return "autograd engine"
    for label, names in CATEGORIES:
        if name in names:
            return label
    if name in COPIES:
        return "copies, views, allocation"
    if name.startswith("aten::"):
        return "element-wise"
    return "other"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    spec = json.loads(args.case)
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(0)
    net = Net(spec).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    s, b = spec["imageSize"], spec["batch"]
    xa = torch.randn(b, 3, s, s)
    xb = torch.randn(b, 3, s, s)
    alpha = spec.get("localAlpha", 0.2)

    def step():
        opt.zero_grad(set_to_none=True)
        (za, la), (zb, lb) = net(xa), net(xb)
        loss = vicreg(za, zb)
        if la is not None:
            loss = loss + alpha * vicreg(la, lb)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain = (time.perf_counter() - t0) * 1000 / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        profiled = (time.perf_counter() - t0) * 1000 / args.steps
    averages = prof.key_averages()
    totals = {}
    for event in averages:
        label = category(event.key)
        totals[label] = totals.get(label, 0.0) + event.self_cpu_time_total / 1000 / args.steps
    table = averages.table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(json.dumps({
        "ms_per_step": round(plain, 1),
        "profiled_ms_per_step": round(profiled, 1),
        "self_ms_per_step": {k: round(v, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "table": table,
    }))


if __name__ == "__main__":
    main()
