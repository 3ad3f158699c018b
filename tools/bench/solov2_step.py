#!/usr/bin/env python3
"""Reference for bench/bench_solov2: SOLOv2 training step and inference in Python PyTorch + torchvision.

The model, losses and post-processing are lesseg's (tools/bench/solov2.py). The steps are lesseg's:
- training (engine/trainer.cpp + methods/cutler/cutler.cpp train_step, without copy-paste): train
  mode (BatchNorm frozen with train.freeze_bn), forward, solo_losses (focal + Dice, DropLoss when
  cutler.drop_loss), total = category + mask, loss.item(), zero_grad, backward, gradient clip
  (train.grad_clip, global or per parameter), optimizer step (AdamW or SGD, every parameter decayed);
  random images, random instance masks drawn by the integer generator both sides share, so the
  targets are the same masks bit for bit;
- inference (solo_instances, as predict_instances runs it on an image whose sides are multiples of
  32): eval mode, no grad, batch 1 per image, forward, point NMS, maskness, Matrix NMS, masks
  upsampled to the input. Before it the category bias is set to the logit of `prior` (default 0.5)
  on both sides, so that an untrained model yields candidates and the whole post-processing runs
  (with 0.01, the initial prior, nothing passes score_thr 0.1 and only the forward is timed).

--spec FILE is the JSON bench_solov2 writes (options read from the config, sizes, the state_dict
{name: shape} and parameter count of lesseg's model); without it the defaults are
configs/quick/cutler.yaml's. --threads / --batch / --size / --warmup / --steps / --prior override it.

Prints one JSON line last: {"threads", "torch", "torchvision", "params", "shapes_match", "keys",
"train_seconds_per_step", "train_images_per_s", "infer_seconds_per_image", "infer_images_per_s",
"positives", "dropped_share", "candidates_per_image", "detections_per_image", "steps",
"peak_rss_train_kb", "peak_rss_kb"}. Bench-only.
"""
import argparse
import collections
import json
import struct
import math
import os
import resource
import statistics
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from solov2 import Solov2, lesseg_name, random_instances, solo_instances, solo_losses  # noqa: E402

# configs/quick/cutler.yaml over config_defaults.cpp (the keys bench_solov2 sends).
DEFAULTS = {
    "threads": 1, "batch": 8, "size": [128, 128], "warmup": 3, "steps": 10, "seed": 0, "prior": 0.5,
    "backbone": "resnet18",
    "solo": {"grids": [24, 20, 16, 12, 8], "fpn_channels": 128, "head_channels": 128, "stacked_convs": 2,
             "mask_hidden": 64, "mask_channels": 64, "num_classes": 1, "norm_groups": 32},
    "loss": {"scale_ranges": [[1, 32], [16, 64], [32, 128], [64, 256], [128, 1024]], "sigma": 0.2,
             "focal_alpha": 0.25, "focal_gamma": 2.0, "dice_weight": 3.0, "drop_loss": True, "drop_iou": 0.01},
    "test": {"score_thr": 0.1, "mask_thr": 0.5, "nms_kernel": "gaussian", "nms_sigma": 2.0, "update_thr": 0.05,
             "nms_pre": 500, "max_per_image": 100},
    "optimizer": {"name": "adamw", "lr": 0.001, "betas": [0.9, 0.999], "momentum": 0.9, "weight_decay": 0.0001,
                  "grad_clip": 35.0, "grad_clip_mode": "global", "freeze_bn": False},
}


def merged(base, update):
    out = dict(base)
    for key, value in update.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def compare_state(model, expected, expected_params):
    """Names (FPN names mapped to lesseg's), the multiset of shapes and the parameter count against
    lesseg's model."""
    expected = {name: list(shape) for name, shape in expected.items()}
    ours = {lesseg_name(name): list(t.shape) for name, t in model.state_dict().items()}
    keys = {
        "matched": sum(1 for k in ours if k in expected and expected[k] == ours[k]),
        "missing": sorted(k for k in expected if k not in ours),
        "unexpected": sorted(k for k in ours if k not in expected),
        "shape_mismatch": sorted(k for k in ours if k in expected and expected[k] != ours[k]),
    }
    same_shapes = (collections.Counter(tuple(s) for s in ours.values()) ==
                   collections.Counter(tuple(s) for s in expected.values()))
    params = sum(p.numel() for p in model.parameters())
    return keys, same_shapes and (expected_params is None or params == expected_params)


def read_safetensors(path):
    """{name: tensor} of a safetensors file (8-byte little-endian header length, JSON header, raw data)."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[entry["dtype"]])
        out[name] = flat.reshape(entry["shape"])
    return out


def load_lesseg_state(model, path):
    """Starts the model from lesseg's initial weights (bench_solov2 writes them), names mapped."""
    theirs = read_safetensors(path)
    state = {name: theirs[lesseg_name(name)] for name in model.state_dict()}
    model.load_state_dict(state)


def freeze_batchnorm(model):
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", help="JSON written by bench_solov2 (options, sizes, lesseg's state shapes)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--size", type=int, nargs=2)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--prior", type=float)
    args = parser.parse_args()
    spec = merged(DEFAULTS, {})
    if args.spec:
        with open(args.spec) as f:
            spec = merged(DEFAULTS, json.load(f))
    for key in ("threads", "batch", "size", "warmup", "steps", "prior"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    torch.set_num_threads(spec["threads"])
    backbone = spec["backbone"]
    if not backbone.startswith("resnet") or spec.get("output_stride", 32) != 32:
        raise SystemExit(f"solov2_step.py: only plain ResNet backbones (output stride 32), got {backbone}")
    solo, loss, test, optim = spec["solo"], spec["loss"], spec["test"], spec["optimizer"]
    batch, (h, w) = spec["batch"], spec["size"]

    torch.manual_seed(spec["seed"])
    model = Solov2(int(backbone[len("resnet"):]), solo["grids"], solo["fpn_channels"], solo["head_channels"],
                   solo["stacked_convs"], solo["mask_hidden"], solo["mask_channels"], solo["num_classes"],
                   solo["norm_groups"])
    if spec.get("init"):
        load_lesseg_state(model, spec["init"])
    if optim["name"] == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=optim["lr"], betas=tuple(optim["betas"]),
                                      weight_decay=optim["weight_decay"])
    elif optim["name"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=optim["lr"], momentum=optim["momentum"],
                                    weight_decay=optim["weight_decay"])
    else:
        raise SystemExit(f"solov2_step.py: unknown optimizer {optim['name']}")
    torch.manual_seed(spec["seed"] + 1)
    images = torch.randn(batch, 3, h, w)
    gt_masks = random_instances(batch, h, w, spec["seed"])
    loss_args = dict(grids=solo["grids"], scale_ranges=loss["scale_ranges"], sigma=loss["sigma"],
                     focal_alpha=loss["focal_alpha"], focal_gamma=loss["focal_gamma"],
                     dice_weight=loss["dice_weight"], drop_loss=loss["drop_loss"], drop_iou=loss["drop_iou"])
    counts = {}

    def train_step():
        model.train()
        if optim["freeze_bn"]:
            freeze_batchnorm(model)
        gt_labels = [torch.zeros(m.shape[0], dtype=torch.long) for m in gt_masks]
        losses = solo_losses(model(images), gt_masks, gt_labels, **loss_args)
        counts["positives"], counts["dropped"], counts["cells"] = losses["positives"], losses["dropped"], losses["cells"]
        total = losses["category"] + losses["mask"]
        total.item()
        optimizer.zero_grad()
        total.backward()
        if optim["grad_clip"] > 0:
            if optim["grad_clip_mode"] == "per_parameter":  # ref: optim.cpp clip_gradients
                with torch.no_grad():
                    for p in model.parameters():
                        if p.grad is not None:
                            p.grad.mul_((optim["grad_clip"] / (p.grad.norm(2) + 1e-6)).clamp_max(1.0))
            else:
                torch.nn.utils.clip_grad_norm_(model.parameters(), optim["grad_clip"])
        optimizer.step()

    for _ in range(spec["warmup"]):
        train_step()
    train_times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        train_step()
        train_times.append(time.perf_counter() - t0)
    peak_rss_train_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # Inference: each image alone, as predict_instances; the category prior set first (see above).
    model.eval()
    prior = spec["prior"]
    if 0 < prior < 1:
        with torch.no_grad():
            model.category_pred.bias.fill_(math.log(prior / (1 - prior)))
    found = {"candidates": 0, "detections": 0, "images": 0}

    def infer_pass(record):
        with torch.no_grad():
            for i in range(batch):
                out = model(images[i:i + 1])
                result = solo_instances(out, 0, h, w, h, w, test["score_thr"], test["mask_thr"], test["nms_kernel"],
                                        test["nms_sigma"], test["update_thr"], test["nms_pre"],
                                        test["max_per_image"])
                if record:
                    found["candidates"] += result["candidates"]
                    found["detections"] += result["scores"].numel()
                    found["images"] += 1

    for _ in range(spec["warmup"]):
        infer_pass(False)
    infer_times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        infer_pass(True)
        infer_times.append((time.perf_counter() - t0) / batch)

    train_seconds = statistics.mean(train_times)
    infer_seconds = statistics.mean(infer_times)
    result = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds_per_step": train_seconds,
        "train_images_per_s": batch / train_seconds,
        "infer_seconds_per_image": infer_seconds,
        "infer_images_per_s": 1.0 / infer_seconds,
        "positives": counts["positives"],
        "dropped_share": counts["dropped"] / counts["cells"] if counts["cells"] else 0.0,
        "candidates_per_image": found["candidates"] / max(1, found["images"]),
        "detections_per_image": found["detections"] / max(1, found["images"]),
        "steps": len(train_times),
        "peak_rss_train_kb": peak_rss_train_kb,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "shapes_match": None,  # not compared without lesseg's shapes
    }
    if "state_shapes" in spec:
        result["keys"], result["shapes_match"] = compare_state(model, spec["state_shapes"], spec.get("params"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
