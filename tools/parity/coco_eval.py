"""Class-agnostic COCO instance evaluation in numpy, written from the COCO definitions (cocoapi
cocoeval.py: greedy matching in score order, crowd regions, area ranges, maxDets, 101-point
interpolated precision), on random ground truth and predictions. The goldens: gt.json,
pred.json (a COCO results list) and expected.json (mask / box metrics and the mAR split)."""
import json
import os

import numpy as np

from common import case_dir
from coco_rle import rle

AREAS = {"all": (0, 1e10), "s": (0, 32 ** 2), "m": (32 ** 2, 96 ** 2), "l": (96 ** 2, 1e10)}
IOU_T = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1)
REC_T = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1)


def box_of(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros(4)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=float)


def iou_matrix(dts, gts, kind):
    out = np.zeros((len(dts), len(gts)))
    for i, d in enumerate(dts):
        for j, g in enumerate(gts):
            if kind == "mask":
                inter = np.logical_and(d["m"], g["m"]).sum()
                union = d["m"].sum() if g["crowd"] else np.logical_or(d["m"], g["m"]).sum()
            else:
                a, b = d["box"], g["box"]
                w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
                h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
                inter = w * h if w > 0 and h > 0 else 0.0
                union = a[2] * a[3] if g["crowd"] else a[2] * a[3] + b[2] * b[3] - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def evaluate_image(gts, dts, rng, max_det, kind):
    if not gts and not dts:
        return None
    g_ig = np.array([g["crowd"] or g["area"] < rng[0] or g["area"] > rng[1] for g in gts], dtype=bool)
    g_order = np.argsort(g_ig, kind="mergesort")
    gts = [gts[i] for i in g_order]
    g_ig = g_ig[g_order]
    d_order = np.argsort([-d["score"] for d in dts], kind="mergesort")[:max_det]
    dts = [dts[i] for i in d_order]
    ious = iou_matrix(dts, gts, kind)
    T, D, G = len(IOU_T), len(dts), len(gts)
    dtm, dtig, gtm = np.zeros((T, D)), np.zeros((T, D), dtype=bool), np.zeros((T, G))
    for ti, t in enumerate(IOU_T):
        for di in range(D):
            best, m = min(t, 1 - 1e-10), -1
            for gi in range(G):
                if gtm[ti, gi] > 0 and not gts[gi]["crowd"]:
                    continue
                if m > -1 and not g_ig[m] and g_ig[gi]:
                    break
                if ious[di, gi] < best:
                    continue
                best, m = ious[di, gi], gi
            if m == -1:
                continue
            dtig[ti, di] = g_ig[m]
            dtm[ti, di] = 1
            gtm[ti, m] = 1
    outside = np.array([d["area"] < rng[0] or d["area"] > rng[1] for d in dts], dtype=bool).reshape(1, D)
    dtig = np.logical_or(dtig, np.logical_and(dtm == 0, np.repeat(outside, T, 0)))
    return {"scores": np.array([d["score"] for d in dts]), "dtm": dtm, "dtig": dtig, "npig": int((~g_ig).sum())}


def accumulate(results, max_det):
    results = [r for r in results if r is not None]
    precision = -np.ones((len(IOU_T), len(REC_T)))
    recall = -np.ones(len(IOU_T))
    if not results:
        return precision, recall
    scores = np.concatenate([r["scores"][:max_det] for r in results])
    order = np.argsort(-scores, kind="mergesort")
    dtm = np.concatenate([r["dtm"][:, :max_det] for r in results], axis=1)[:, order]
    dtig = np.concatenate([r["dtig"][:, :max_det] for r in results], axis=1)[:, order]
    npig = sum(r["npig"] for r in results)
    if npig == 0:
        return precision, recall
    tps = np.logical_and(dtm, np.logical_not(dtig))
    fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtig))
    tp_sum = np.cumsum(tps, axis=1).astype(float)
    fp_sum = np.cumsum(fps, axis=1).astype(float)
    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
        nd = len(tp)
        rc = tp / npig
        pr = (tp / (fp + tp + np.spacing(1))).tolist()
        recall[t] = rc[-1] if nd else 0
        q = np.zeros(len(REC_T))
        for i in range(nd - 1, 0, -1):
            if pr[i] > pr[i - 1]:
                pr[i - 1] = pr[i]
        inds = np.searchsorted(rc, REC_T, side="left")
        for ri, pi in enumerate(inds):
            if pi < nd:
                q[ri] = pr[pi]
        precision[t] = q
    return precision, recall


def mean_valid(x):
    x = np.asarray(x)
    return float(np.mean(x[x > -1])) if np.any(x > -1) else -1.0


def evaluate(gt_images, dt_images, kind):
    per_area = {a: [evaluate_image(g, d, r, 100, kind) for g, d in zip(gt_images, dt_images)]
                for a, r in AREAS.items()}
    out = {}
    p, _ = accumulate(per_area["all"], 100)
    out["AP"], out["AP50"], out["AP75"] = mean_valid(p), mean_valid(p[0]), mean_valid(p[5])
    for a in ("s", "m", "l"):
        p, r = accumulate(per_area[a], 100)
        out["AP" + a], out["AR" + a] = mean_valid(p), mean_valid(r)
    for m in (1, 10, 100):
        out["AR%d" % m] = mean_valid(accumulate(per_area["all"], m)[1])
    return out


def mar_split(gt_images, dt_images):
    splits = {"all": [], "multi_instance": [], "single": []}
    for g, d in zip(gt_images, dt_images):
        r = evaluate_image(g, d, AREAS["all"], len(d) + 1, "mask")
        if r is None:
            continue
        cats = [x["cat"] for x in g if not x["crowd"]]
        multi = any(cats.count(c) >= 2 for c in set(cats))
        splits["multi_instance" if multi else "single"].append(r)
        splits["all"].append(r)
    out = {}
    for name, results in splits.items():
        most = max([len(r["scores"]) for r in results] + [1])
        v = mean_valid(accumulate(results, most)[1])
        out[name] = None if v < 0 else v
    return out


def random_mask(rng, h, w):
    mask = np.zeros((h, w), dtype=bool)
    bh, bw = rng.integers(3, h - 2), rng.integers(3, w - 2)
    y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
    if rng.random() < 0.5:
        mask[y:y + bh, x:x + bw] = True
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        mask[((yy - y - bh / 2) / (bh / 2)) ** 2 + ((xx - x - bw / 2) / (bw / 2)) ** 2 <= 1] = True
    return mask


def make(out):
    rng = np.random.default_rng(7)
    images, gt_anns, preds, gt_images, dt_images = [], [], [], [], []
    for i in range(14):
        h, w = int(rng.integers(40, 130)), int(rng.integers(40, 160))
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": h, "width": w})
        gts, dts = [], []
        for _ in range(0 if i == 3 else int(rng.integers(1, 6))):
            m = random_mask(rng, h, w)
            if not m.any():
                continue
            crowd = bool(rng.random() < 0.1)
            area = float(m.sum()) * float(rng.uniform(0.9, 1.1))  # the STORED area decides the range
            cat = int(rng.integers(1, 3))
            gts.append({"m": m, "box": box_of(m), "area": area, "crowd": crowd, "cat": cat})
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": cat, "iscrowd": int(crowd),
                            "area": area, "segmentation": rle(m)})
        for g in ([] if i == 5 else gts):  # image 5: nothing predicted
            if rng.random() < 0.8:  # a shifted copy
                m = np.roll(g["m"], (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
                dts.append(m)
        for _ in range(int(rng.integers(0, 4))):  # false positives
            dts.append(random_mask(rng, h, w))
        dt_list = []
        for m in dts:
            if not m.any():
                continue
            score = float(np.round(rng.random(), 1))  # rounded: ties exercise the stable order
            dt_list.append({"m": m, "box": box_of(m), "area": float(m.sum()), "score": score})
            preds.append({"image_id": i + 1, "category_id": 1, "segmentation": rle(m), "score": score})
        gt_images.append(gts)
        dt_images.append(dt_list)
    gt = {"images": images, "annotations": gt_anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    expected = {"mask": evaluate(gt_images, dt_images, "mask"), "box": evaluate(gt_images, dt_images, "box"),
                "mar": mar_split(gt_images, dt_images)}
    path = case_dir(out, "coco_eval")
    for name, data in (("gt.json", gt), ("pred.json", preds), ("expected.json", expected)):
        with open(os.path.join(path, name), "w") as f:
            json.dump(data, f)
    print("  coco_eval: mask AP %.4f AP50 %.4f box AP %.4f" % (expected["mask"]["AP"], expected["mask"]["AP50"],
                                                              expected["box"]["AP"]))
