#!/usr/bin/env python3
"""Writes test goldens from reference implementations (Debian python3-torch/torchvision/numpy).

Run: /usr/bin/python3 tools/make_goldens.py   (test-only; lesseg never needs Python at run time)
- tests/fixtures/models/<arch>_keys.txt: torchvision state_dict names and shapes (resnet18/50, swin_t)
- tests/fixtures/metrics/miou_golden.json: random predictions/targets and numpy mIoU
- tests/fixtures/probe/knn_golden.json: random features and a numpy port of DINO's kNN classifier
"""
import json
import os

import numpy as np
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def write_keys():
    for name in ["resnet18", "resnet50", "swin_t"]:
        model = getattr(torchvision.models, name)()
        lines = [f"{k} {'x'.join(str(d) for d in v.shape)}" for k, v in model.state_dict().items()]
        with open(os.path.join(ROOT, "models", f"{name}_keys.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


def numpy_miou(pred, target, num_classes, ignore):
    valid = target != ignore
    hist = np.bincount(num_classes * target[valid] + pred[valid], minlength=num_classes ** 2)
    hist = hist.reshape(num_classes, num_classes).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
        acc = np.diag(hist) / hist.sum(1)
    return iou, acc, np.diag(hist).sum() / hist.sum()


def write_miou():
    rng = np.random.default_rng(7)
    cases = []
    for num_classes, n in [(5, 2000), (19, 5000), (3, 300)]:
        target = rng.integers(0, num_classes, n)
        target[rng.random(n) < 0.1] = 255
        # Predictions agree with the truth 60% of the time so IoUs are far from chance.
        pred = np.where(rng.random(n) < 0.6, np.where(target == 255, 0, target), rng.integers(0, num_classes, n))
        if num_classes == 19:
            target[target == 18] = 0  # one class absent from the truth...
            pred[pred == 18] = 0      # ...and from the predictions: IoU NaN, skipped by mIoU
        iou, acc, pixel = numpy_miou(pred, target, num_classes, 255)
        cases.append({
            "num_classes": num_classes, "ignore_index": 255,
            "pred": pred.tolist(), "target": target.tolist(),
            "iou": [None if np.isnan(v) else float(v) for v in iou],
            "acc": [None if np.isnan(v) else float(v) for v in acc],
            "miou": float(np.nanmean(iou)), "macc": float(np.nanmean(acc)), "pixel_acc": float(pixel),
        })
    with open(os.path.join(ROOT, "metrics", "miou_golden.json"), "w") as f:
        json.dump(cases, f)


def numpy_knn(bank, bank_labels, queries, num_classes, k, t):
    """dino eval_knn.py knn_classifier in numpy: votes [M, C] (one-hot x exp(sim / T) summed)."""
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    similarity = queries @ bank.T
    indices = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    distances = np.take_along_axis(similarity, indices, axis=1)
    one_hot = np.eye(num_classes)[bank_labels[indices]]  # [M, k, C]
    return (one_hot * np.exp(distances / t)[:, :, None]).sum(1)


def write_knn():
    rng = np.random.default_rng(11)
    cases = []
    for n, m, d, classes, k, t in [(60, 40, 8, 6, 20, 0.07), (30, 25, 4, 3, 5, 0.5)]:
        bank = rng.standard_normal((n, d))
        queries = rng.standard_normal((m, d))
        bank_labels = rng.integers(0, classes, n)
        query_labels = rng.integers(0, classes, m)
        votes = numpy_knn(bank, bank_labels, queries, classes, k, t)
        order = np.argsort(-votes, axis=1, kind="stable")
        correct = order == query_labels[:, None]
        case = {"bank": bank.tolist(), "bank_labels": bank_labels.tolist(), "queries": queries.tolist(),
                "query_labels": query_labels.tolist(), "classes": classes, "k": k, "temperature": t,
                "votes": votes.tolist(), "top1": float(correct[:, :1].sum() / m)}
        if classes >= 5:
            case["top5"] = float(correct[:, :5].sum() / m)
        cases.append(case)
    os.makedirs(os.path.join(ROOT, "probe"), exist_ok=True)
    with open(os.path.join(ROOT, "probe", "knn_golden.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    write_keys()
    write_miou()
    write_knn()
