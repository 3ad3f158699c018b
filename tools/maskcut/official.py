#!/usr/bin/env python3
"""The official MaskCut algorithm (CutLER maskcut/maskcut.py, maskcut_forward) on given patch
features, for parity tests and the speed benchmark. Written from the facts in specs/maskcut.md:
dense float64 generalized eigensolve scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2]).

Usage: /usr/bin/python3 tools/maskcut/official.py FEATURES.safetensors OUT.safetensors [--tau 0.15] [--N 3]
FEATURES holds "features_<i>" [N, D] float32 and "grid_<i>" [2] int64 (grid_h, grid_w) per image;
OUT gets "masks_<i>" [N_masks, grid_h, grid_w] uint8 (discarded cuts as all-zero masks) and
"seconds_<i>" [1] float64 (the algorithm's time, features already in memory). With --ours FILE
(another implementation's "masks_<i>"), also "valid_<i>" [N] uint8: whether each of its masks is
the official one for one of the two eigenvector signs (the official bipartition rule depends on
the sign the eigensolver returns: a flipped sign changes the corner count; CutLER#71).
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


class State:
    """What maskcut_forward carries from one cut to the next."""

    def __init__(self, dims):
        self.painting = np.zeros(dims)
        self.current = None
        self.outputs = []

    def copy(self):
        other = State(self.painting.shape)
        other.painting = self.painting.copy()
        other.current = None if self.current is None else self.current.copy()
        other.outputs = [o.copy() for o in self.outputs]
        return other


def eigenvector(feats, state, tau, cache=None):
    """The second-smallest generalized eigenvector of the graph of cut len(state.outputs); `cache`
    (a dict) reuses the solve of an identical graph (same covered patches)."""
    key = None
    if cache is not None:
        covered = state.painting + (state.current if state.outputs else 0)
        key = (len(state.outputs), (covered > 0).tobytes())
        if key in cache:
            return cache[key]
    vec = _eigenvector(feats, state, tau)
    if key is not None:
        cache[key] = vec
    return vec


def _eigenvector(feats, state, tau):
    if state.outputs:
        painting = state.painting + state.current
        painting[painting > 0] = 1
        keep = torch.from_numpy(1 - painting).to(feats.dtype).reshape(1, -1)
        feats = feats * keep
    a, d = affinity(feats, tau)
    return second_smallest(a, d)


def step(state, vec, dims):
    """One cut's post-processing on the eigenvector `vec` (the sign SciPy happened to return, or
    its negation): returns the next state and the emitted mask."""
    state = state.copy()
    if state.outputs:
        state.painting = state.painting + state.current
        state.painting[state.painting > 0] = 1
    fg, seed = bipartition_of(vec, dims)
    mask = seed_component(fg, seed, dims)
    if state.outputs:
        ratio = mask.sum() / mask.size
        if iou(state.current, mask) > 0.5 or ratio <= 0.01:
            mask = np.zeros(dims)
    state.current = mask
    masked_out = np.sum(state.outputs, axis=0) if state.outputs else 0
    out = mask - masked_out
    out[out <= 0] = 0
    state.outputs.append(out)
    return state, out.astype(np.uint8)


def maskcut(features, dims, tau=0.15, n=3, cache=None):
    """features [N, D] torch float32 (CLS dropped), dims (h, w) -> list of n grid masks."""
    feats = features.t().contiguous()  # [D, N] as the official hook output
    state = State(dims)
    for _ in range(n):
        state, _ = step(state, eigenvector(feats, state, tau, cache), dims)
    return [o.astype(np.uint8) for o in state.outputs]


def same(a, b):
    if a.sum() == 0 and b.sum() == 0:
        return True
    return iou(a, b) >= 0.99


def follow(features, dims, ours, tau=0.15, cache=None):
    """Whether each of `ours` (the n masks of another implementation) is what the official
    algorithm gives at that cut for one of the two signs an eigensolver may return, the earlier
    cuts taken as the other implementation made them (a sign choice changes what follows)."""
    feats = features.t().contiguous()
    state, valid = State(dims), []
    for mask in ours:
        vec = eigenvector(feats, state, tau, cache)
        matched = None
        for sign in (1, -1):
            nxt, out = step(state, sign * vec, dims)
            if same(out, mask):
                matched = nxt
                break
        if matched is None:
            valid += [0] * (len(ours) - len(valid))
            break
        valid.append(1)
        state = matched
    return valid


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
    parser.add_argument("--ours", default="", help="masks_<i> of another implementation to check with follow()")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tensors = read_safetensors(args.features)
    ours = read_safetensors(args.ours) if args.ours else None
    out = {}
    index = 0
    while f"features_{index}" in tensors:
        dims = tuple(int(v) for v in tensors[f"grid_{index}"])
        cache = {}  # the check below reuses the official run's solves where its graphs are the same
        start = time.perf_counter()
        masks = maskcut(tensors[f"features_{index}"].float(), dims, args.tau, args.N, cache)
        out[f"seconds_{index}"] = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        out[f"masks_{index}"] = torch.from_numpy(np.stack(masks))
        if ours is not None:
            out[f"valid_{index}"] = torch.tensor(follow(tensors[f"features_{index}"].float(), dims,
                                                        ours[f"masks_{index}"].numpy(), args.tau, cache),
                                             dtype=torch.uint8)
        index += 1
    save_safetensors(args.out, out)
    seconds = [float(out[f"seconds_{i}"][0]) for i in range(index)]
    print(json.dumps({"images": index, "seconds_total": sum(seconds), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
