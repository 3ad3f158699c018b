#!/usr/bin/env python3
"""Reference for bench/bench_vit: the same DINO ViT-S/16 (tools/parity/dino_vit.py) in Python PyTorch.

Prints one JSON line {"threads", "torch", "batches": {B: mean seconds per forward}} (a mean over
timed runs after one warm-up, as Google Benchmark reports on the C++ side). Test/bench-only.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from dino_vit import VisionTransformer  # noqa: E402


def mean_seconds(fn, repeats, min_seconds):
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.mean(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = VisionTransformer(patch=16, dim=384, depth=12, heads=6).eval()
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__, "batches": {}}
    for batch in args.batches:
        x = torch.randn(batch, 3, args.size, args.size)
        with torch.no_grad():
            result["batches"][str(batch)] = mean_seconds(lambda: model(x), args.repeats, args.min_seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
