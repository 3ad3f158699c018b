#!/usr/bin/env python3
"""Reference for bench/bench_data: lesseg's training data pipeline with PIL + torchvision in Python.

Per sample, as lesseg's FileSegDataset::get + augment (data/transforms.cpp) + image_to_tensor:
decode the RGB image and the label PNG (CamVid void 11 -> 255, values checked), random scale
(bilinear image, nearest mask), pad to the crop (0 / 255) and random crop, horizontal flip,
brightness / contrast / saturation jitter in that fixed order, to a normalized float CHW tensor
and an int64 mask. Decoding and transforms are PIL (torchvision.transforms.functional on PIL
images); without PIL they are torchvision.io.decode_jpeg/decode_png and the same functions on
uint8 tensors.

Rows: one process (torch threads 1), then torch.utils.data.DataLoader with --workers processes.
Prints one JSON line {"backend", "images", "single": {...}, "loader": {...}}. Bench-only.
"""
import argparse
import glob
import json
import os
import random
import resource
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

try:
    from PIL import Image
    BACKEND = "PIL " + Image.__version__
except ImportError:
    Image = None
    BACKEND = "torchvision.io " + torchvision.__version__

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
NUM_CLASSES, VOID, IGNORE = 11, 11, 255  # CamVid (SegNet): 11 classes, 11 = void
LUT = np.arange(256, dtype=np.uint8)
LUT[VOID] = IGNORE


def read_pair(image_path, label_path):
    if Image is not None:
        image = Image.open(image_path).convert("RGB")
        raw = np.asarray(Image.open(label_path))
    else:
        image = torchvision.io.decode_jpeg(torchvision.io.read_file(image_path), torchvision.io.ImageReadMode.RGB)
        raw = torchvision.io.decode_png(torchvision.io.read_file(label_path))[0].numpy()
    mask = LUT[raw]
    if np.any((mask >= NUM_CLASSES) & (mask != IGNORE)):
        raise ValueError(f"{label_path}: label values outside the classes")
    if Image is not None:
        return image, Image.fromarray(mask)
    return image, torch.from_numpy(mask)[None]


def size_of(image):
    if Image is not None:
        return image.height, image.width
    return image.shape[1], image.shape[2]


class Augment:
    def __init__(self, crop, scale, jitter):
        self.crop, self.scale, self.jitter = crop, scale, jitter

    def __call__(self, image, mask, rng):
        h, w = size_of(image)
        s = rng.uniform(*self.scale)
        size = [max(1, round(h * s)), max(1, round(w * s))]
        image = TF.resize(image, size, InterpolationMode.BILINEAR)
        mask = TF.resize(mask, size, InterpolationMode.NEAREST)
        ch, cw = self.crop
        pad_h, pad_w = max(0, ch - size[0]), max(0, cw - size[1])
        if pad_h or pad_w:
            image = TF.pad(image, [0, 0, pad_w, pad_h], fill=0)
            mask = TF.pad(mask, [0, 0, pad_w, pad_h], fill=IGNORE)
        h, w = size_of(image)
        y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
        image, mask = TF.crop(image, y, x, ch, cw), TF.crop(mask, y, x, ch, cw)
        if rng.random() < 0.5:
            image, mask = TF.hflip(image), TF.hflip(mask)
        if self.jitter > 0:
            j = self.jitter
            image = TF.adjust_brightness(image, rng.uniform(1 - j, 1 + j))
            image = TF.adjust_contrast(image, rng.uniform(1 - j, 1 + j))
            image = TF.adjust_saturation(image, rng.uniform(1 - j, 1 + j))
        if Image is not None:
            tensor = TF.to_tensor(image)
            mask = torch.from_numpy(np.array(mask, dtype=np.int64))
        else:
            tensor = image.float() / 255.0
            mask = mask[0].long()
        return TF.normalize(tensor, MEAN, STD), mask


class CamVid(torch.utils.data.Dataset):
    """`length` samples cycling over the pairs, each augmented with the process's `random`."""

    def __init__(self, pairs, augment, length):
        self.pairs, self.augment, self.length = pairs, augment, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.augment(*read_pair(*self.pairs[index % len(self.pairs)]), random)


def peak_rss_kb(who=resource.RUSAGE_SELF):
    return resource.getrusage(who).ru_maxrss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True, help="CamVid root with train/images/*.jpg, train/labels/*.png")
    parser.add_argument("--crop", type=int, nargs=2, default=[360, 480])
    parser.add_argument("--scale", type=float, nargs=2, default=[0.75, 1.5])
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--images", type=int, default=0, help="timed images (0 = one pass)")
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-pil", action="store_true", help="torchvision.io and tensor transforms even with PIL")
    args = parser.parse_args()
    global Image, BACKEND
    if args.no_pil and Image is not None:
        Image, BACKEND = None, "torchvision.io " + torchvision.__version__
    torch.set_num_threads(1)
    images = sorted(glob.glob(os.path.join(args.root, "train", "images", "*.jpg")))
    pairs = [(p, os.path.join(args.root, "train", "labels", os.path.splitext(os.path.basename(p))[0] + ".png"))
             for p in images]
    count = args.images or len(pairs)
    augment = Augment(args.crop, args.scale, args.jitter)
    rng = random.Random(0)

    for i in range(args.warmup):
        augment(*read_pair(*pairs[i % len(pairs)]), rng)
    start = time.perf_counter()
    for i in range(count):
        augment(*read_pair(*pairs[i % len(pairs)]), rng)
    single = {"images_per_s": count / (time.perf_counter() - start), "peak_rss_kb": peak_rss_kb()}

    warmup_batches, batches = max(1, args.warmup // args.batch), max(1, count // args.batch)
    dataset = CamVid(pairs, augment, (warmup_batches + batches) * args.batch)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, num_workers=args.workers,
                                         prefetch_factor=4 if args.workers > 0 else 2)
    it = iter(loader)
    for _ in range(warmup_batches):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    del it
    loaded = {"images_per_s": batches * args.batch / seconds, "peak_rss_kb": peak_rss_kb(),
              "workers": args.workers, "workers_peak_rss_kb": peak_rss_kb(resource.RUSAGE_CHILDREN)}
    print(json.dumps({"backend": BACKEND, "torch": torch.__version__, "torchvision": torchvision.__version__,
                      "pairs": len(pairs), "images": count, "single": single, "loader": loaded}))


if __name__ == "__main__":
    main()
