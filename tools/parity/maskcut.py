"""MaskCut goldens: the official algorithm (tools/maskcut/official.py, dense SciPy eigh) on patch
features with known structure (blobs of shared features over a background) and on raw pixel
patches of real images; lesseg's Lanczos MaskCut must give the same masks."""
import os
import sys

import numpy as np
import torch
from PIL import Image

from common import case_dir, save_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "maskcut"))
import official  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")


def blobs(h, w, dim, objects, noise, background, seed):
    """Features [h*w, dim]: a background vector (or random vectors: a sparse graph) and objects,
    each an ellipse sharing one vector (two may share it: touching same-class instances)."""
    g = torch.Generator().manual_seed(seed)
    if background == "random":
        feats = torch.randn(h, w, dim, generator=g)
    else:
        feats = torch.randn(dim, generator=g).expand(h, w, dim).clone()
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    vectors = {}
    for cy, cx, ry, rx, kind in objects:
        if kind not in vectors:
            vectors[kind] = torch.randn(dim, generator=g) * 2
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
        feats[inside] = vectors[kind]
    feats = feats + noise * torch.randn(h, w, dim, generator=g)
    return feats.reshape(h * w, dim)


def pixel_patches(path, h, w, patch=8):
    """Raw ImageNet-normalized 8x8 RGB patches of a real image resized to (h*8, w*8): [h*w, 192]."""
    image = Image.open(path).convert("RGB").resize((w * patch, h * patch), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image).copy()).float() / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    x = x.reshape(h, patch, w, patch, 3).permute(0, 2, 1, 3, 4).reshape(h * w, -1)
    return x - x.mean(0, keepdim=True)  # centred, so that cosine separates colours


def cases():
    out = [
        ("three_objects", 20, 28, blobs(20, 28, 32, [(6, 7, 4, 5, 0), (13, 20, 5, 6, 1), (15, 6, 3, 4, 2)],
                                        0.6, "constant", 1)),
        ("touching_same_class", 24, 24, blobs(24, 24, 48, [(12, 6, 5, 5, 0), (12, 16, 5, 5, 0), (4, 20, 3, 3, 1)],
                                              0.8, "constant", 2)),
        ("sparse_background", 30, 36, blobs(30, 36, 128, [(8, 9, 6, 7, 0), (20, 26, 7, 8, 1), (24, 8, 4, 5, 2)],
                                            0.5, "random", 3)),
        ("noisy_wide", 16, 40, blobs(16, 40, 32, [(8, 10, 5, 7, 0), (8, 30, 6, 6, 1)], 1.2, "constant", 4)),
    ]
    fruits = os.path.join(SHARED, "fruits", "images")
    horses = os.path.join(SHARED, "horses", "images")
    for folder, h, w in ((fruits, 30, 40), (horses, 32, 32)):
        if os.path.isdir(folder):
            name = sorted(os.listdir(folder))[0]
            out.append((os.path.basename(os.path.dirname(folder)) + "_pixels", h, w,
                        pixel_patches(os.path.join(folder, name), h, w)))
    return out


def make(out):
    tensors = {}
    for i, (name, h, w, feats) in enumerate(cases()):
        feats = feats.float().contiguous()
        masks = official.maskcut(feats, (h, w), tau=0.15, n=3)
        tensors[f"features_{i}"] = feats
        tensors[f"grid_{i}"] = torch.tensor([h, w], dtype=torch.int64)
        tensors[f"masks_{i}"] = torch.from_numpy(np.stack(masks))
        print(f"  maskcut case {i} {name}: grid {h}x{w}, mask areas {[int(m.sum()) for m in masks]}")
    save_safetensors(os.path.join(case_dir(out, "maskcut"), "io.safetensors"), tensors)
