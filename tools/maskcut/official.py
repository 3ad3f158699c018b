#!/usr/bin/env python3
"""The official MaskCut algorithm (CutLER maskcut/maskcut.py, maskcut_forward) on given patch
features, for parity tests and the speed benchmark. Written from the facts in specs/maskcut.md:
dense float64 generalized eigensolve scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2]).

Usage: /usr/bin/python3 tools/maskcut/official.py FEATURES.safetensors OUT.safetensors [--tau 0.15] [--N 3]
FEATURES holds "features_<i>" [N, D] float32 and "grid_<i>" [2] int64 (grid_h, grid_w) per image;
OUT gets "masks_<i>" [N_masks, grid_h, grid_w] uint8 (discarded cuts as all-zero masks) and
"seconds_<i>" [1] float64 (the algorithm's time, features already in memory).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.linalg
import scipy.ndimage
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from common import save_safetensors  # noqa: E402


def affinity(feats, tau, eps=1e-5):
    """feats [D, N] -> binary affinity A (float64) and D = diag(row sums)."""
    feats = F.normalize(feats, p=2, dim=0)
    a = (feats.transpose(0, 1) @ feats).cpu().numpy()
    a = a > tau
    a = np.where(a.astype(float) == 0, eps, a)
    return a, np.diag(np.sum(a, axis=1))


def second_smallest(a, d):
    _, vectors = scipy.linalg.eigh(d - a, d, subset_by_index=[1, 2])
    return np.copy(vectors[:, 0])


def bipartition_of(vec, dims):
    fg = vec > np.sum(vec) / len(vec)
    seed = np.argmax(np.abs(vec))
    grid = fg.reshape(dims)
    corners = int(grid[0][0]) + int(grid[0][-1]) + int(grid[-1][0]) + int(grid[-1][-1])
    reverse = corners >= 3 or fg[seed] != 1
    if reverse:
        vec = vec * -1
        fg = np.logical_not(fg)
    seed = np.argmax(vec)
    return fg.reshape(dims).astype(float), seed


def seed_component(fg, seed, dims):
    objects, _ = scipy.ndimage.label(fg)  # 4-connectivity
    label = objects[np.unravel_index(seed, dims)]
    return (objects == label).astype(float)


def iou(m1, m2):
    m1, m2 = m1 > 0.5, m2 > 0.5
    union = np.sum(m1 | m2)
    return np.sum(m1 & m2) / union if union else float("nan")


def maskcut(features, dims, tau=0.15, n=3):
    """features [N, D] torch float32 (CLS dropped), dims (h, w) -> list of n grid masks."""
    feats = features.t().contiguous()  # [D, N] as the official hook output
    painting = np.zeros(dims)
    current = None
    outputs = []
    for i in range(n):
        if i > 0:
            painting = painting + current
            painting[painting > 0] = 1
            keep = torch.from_numpy(1 - painting).to(feats.dtype).reshape(1, -1)
            feats = feats * keep
        a, d = affinity(feats, tau)
        fg, seed = bipartition_of(second_smallest(a, d), dims)
        mask = seed_component(fg, seed, dims)
        if i >= 1:
            ratio = mask.sum() / mask.size
            if iou(current, mask) > 0.5 or ratio <= 0.01:
                mask = np.zeros(dims)
        current = mask
        masked_out = np.sum(outputs, axis=0) if outputs else 0
        out = mask - masked_out
        out[out <= 0] = 0
        outputs.append(out)
    return [o.astype(np.uint8) for o in outputs]


def read_safetensors(path):
    import struct
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8}
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[begin:end])
        out[name] = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"]) if raw else \
            torch.zeros(info["shape"], dtype=dtypes[info["dtype"]])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("features")
    parser.add_argument("out")
    parser.add_argument("--tau", type=float, default=0.15)
    parser.add_argument("--N", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tensors = read_safetensors(args.features)
    out = {}
    index = 0
    while f"features_{index}" in tensors:
        dims = tuple(int(v) for v in tensors[f"grid_{index}"])
        start = time.perf_counter()
        masks = maskcut(tensors[f"features_{index}"].float(), dims, args.tau, args.N)
        out[f"seconds_{index}"] = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        out[f"masks_{index}"] = torch.from_numpy(np.stack(masks))
        index += 1
    save_safetensors(args.out, out)
    seconds = [float(out[f"seconds_{i}"][0]) for i in range(index)]
    print(json.dumps({"images": index, "seconds_total": sum(seconds), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
