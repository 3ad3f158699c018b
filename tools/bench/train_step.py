#!/usr/bin/env python3
"""Reference for bench/bench_train: one supervised training step of the same ResUnet in Python PyTorch.

The step is lesseg's (engine/trainer.cpp + methods/supervised): model.train(), forward, cross-entropy
with ignore_index, loss.item(), zero_grad, backward, AdamW step; random images and labels, no data
loading. With --keys FILE (JSON {name: shape} written by bench_train from lesseg's model), checks that
the state_dict has the same names and shapes.

Prints one JSON line {"threads", "torch", "params", "keys", "seconds_per_step", "steps", "peak_rss_kb"}.
Bench-only.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resunet import ResUnet  # noqa: E402


def compare_keys(model, expected_file):
    with open(expected_file) as f:
        expected = {name: list(shape) for name, shape in json.load(f).items()}
    ours = {name: list(t.shape) for name, t in model.state_dict().items()}
    return {
        "matched": sum(1 for k in ours if k in expected and expected[k] == ours[k]),
        "missing": sorted(k for k in expected if k not in ours),
        "unexpected": sorted(k for k in ours if k not in expected),
        "shape_mismatch": sorted(k for k in ours if k in expected and expected[k] != ours[k]),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=[96, 96])
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--channels", type=int, nargs="+", default=[128, 64, 32, 32, 16])
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--ignore-index", type=int, default=255)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--keys", help="JSON {name: shape} of lesseg's model to compare with")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = ResUnet(args.classes, args.depth, args.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    h, w = args.size
    images = torch.randn(args.batch, 3, h, w)
    labels = torch.randint(0, args.classes, (args.batch, h, w))
    labels[torch.rand(args.batch, h, w) < 0.05] = args.ignore_index

    def step():
        model.train()
        logits = model(images)
        loss = F.cross_entropy(logits, labels, ignore_index=args.ignore_index)
        loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)

    result = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": statistics.mean(times),
        "steps": len(times),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.keys:
        result["keys"] = compare_keys(model, args.keys)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
