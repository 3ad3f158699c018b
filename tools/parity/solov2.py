"""SOLOv2's ops in numpy, written from their definitions (docs/design/solov2.md; WXinlong/SOLO and
mmdetection's mask_matrix_nms), plus torchvision's sigmoid focal loss, on random inputs:
training targets (centre regions, scale ranges, 1/4-scale masks), Dice, point NMS and Matrix NMS
(gaussian and linear, class-agnostic and two labels). Goldens: OUT/solov2_ops/io.safetensors."""
import numpy as np
import torch
from torchvision.ops import sigmoid_focal_loss

from common import case_dir, save_safetensors

GRIDS = [8, 6, 5, 4, 3]
RANGES = [(1, 24), (12, 48), (24, 96), (48, 192), (96, 512)]
SIGMA = 0.2


def quarter(mask):
    """Bilinear (align_corners False) x1/4: each output samples input 4d + 1.5, the mean of rows /
    columns 4d+1 and 4d+2; thresholded at 0.5."""
    m = mask.astype(np.float64)
    h, w = m.shape
    rows = (m[1::4][: h // 4] + m[2::4][: h // 4]) / 2
    return ((rows[:, 1::4][:, : w // 4] + rows[:, 2::4][:, : w // 4]) / 2 >= 0.5).astype(np.float32)


def cell(v, size, s):
    return int(np.floor((v / size) / (1.0 / s)))


def targets(masks, labels):
    n, h, w = masks.shape
    out = []
    info = []
    for i in range(n):
        ys, xs = np.nonzero(masks[i])
        q = quarter(masks[i])
        if len(xs) == 0 or q.sum() == 0:
            info.append(None)
            continue
        bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        info.append((ys.mean(), xs.mean(), bh, bw, np.sqrt(bh * bw), q))
    for s, (lo, hi) in zip(GRIDS, RANGES):
        lab = np.zeros(s * s, dtype=np.int64)
        owner = -np.ones(s * s, dtype=np.int64)
        for i in range(n):
            if info[i] is None:
                continue
            cy, cx, bh, bw, scale, _ = info[i]
            if scale < lo or scale > hi:
                continue
            hh, hw = 0.5 * bh * SIGMA, 0.5 * bw * SIGMA
            ch, cw = cell(cy, h, s), cell(cx, w, s)
            top = max(0, cell(cy - hh, h, s), ch - 1)
            down = min(s - 1, cell(cy + hh, h, s), ch + 1)
            left = max(0, cell(cx - hw, w, s), cw - 1)
            right = min(s - 1, cell(cx + hw, w, s), cw + 1)
            for r in range(top, down + 1):
                for c in range(left, right + 1):
                    lab[r * s + c] = labels[i] + 1
                    owner[r * s + c] = i
        pos = np.nonzero(owner >= 0)[0]
        tm = np.stack([info[owner[k]][5] for k in pos]) if len(pos) else np.zeros((0, h // 4, w // 4), np.float32)
        out.append((lab, pos, tm))
    return out


def random_masks(rng, n, h, w, scale_max):
    masks = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        bh, bw = rng.integers(2, scale_max, size=2)
        y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
        if i % 3 == 0:  # ellipse
            yy, xx = np.mgrid[0:h, 0:w]
            masks[i] = (((yy - y - bh / 2) / (bh / 2)) ** 2 + ((xx - x - bw / 2) / (bw / 2)) ** 2 <= 1)
        else:
            masks[i, y:y + bh, x:x + bw] = 1
    return masks


def point_nms(p):
    c, h, w = p.shape
    pad = np.full((c, h + 1, w + 1), -np.inf)
    pad[:, 1:, 1:] = p
    hmax = np.maximum(np.maximum(pad[:, 1:, 1:], pad[:, :-1, 1:]), np.maximum(pad[:, 1:, :-1], pad[:, :-1, :-1]))
    return p * (hmax == p)


def matrix_nms(masks, labels, scores, areas, kernel, sigma, filter_thr, nms_pre, max_num):
    order = np.argsort(-scores, kind="stable")[:nms_pre]
    keep, s, l, a = order, scores[order], labels[order], areas[order].astype(np.float64)
    n = len(order)
    f = masks[order].reshape(n, -1).astype(np.float64)
    inter = f @ f.T
    iou = np.triu(inter / (a[None, :] + a[:, None] - inter), 1)
    same = np.triu(l[None, :] == l[:, None], 1)
    decay_iou = iou * same
    comp = decay_iou.max(0)[:, None]  # row i: mask i's own largest overlap with a higher mask
    if kernel == "gaussian":
        decay = (np.exp(-sigma * decay_iou ** 2) / np.exp(-sigma * comp ** 2)).min(0)
    else:
        decay = ((1 - decay_iou) / np.maximum(1 - comp, 1e-6)).min(0)
    s = s * decay
    kept = s >= filter_thr
    keep, s, l = keep[kept], s[kept], l[kept]
    re = np.argsort(-s, kind="stable")[:max_num]
    return s[re], l[re], keep[re]


def make(out):
    rng = np.random.default_rng(7)
    io = {}
    # focal loss (torchvision), plain and weighted
    logits = torch.from_numpy(rng.normal(0, 2, size=(300, 2)).astype(np.float32))
    tgt = torch.from_numpy((rng.random((300, 2)) < 0.1).astype(np.float32))
    wts = torch.from_numpy((rng.random((300, 2)) < 0.7).astype(np.float32))
    io.update(focal_logits=logits, focal_targets=tgt, focal_weights=wts,
              focal_sum=sigmoid_focal_loss(logits, tgt, 0.25, 2.0, reduction="sum").reshape(1),
              focal_weighted=(sigmoid_focal_loss(logits, tgt, 0.25, 2.0, reduction="none") * wts).sum().reshape(1))
    # dice
    ml = rng.normal(0, 3, size=(6, 12, 10)).astype(np.float32)
    mt = (rng.random((6, 12, 10)) < 0.3).astype(np.float32)
    p = 1 / (1 + np.exp(-ml.astype(np.float64)))
    dice = 1 - 2 * (p * mt).reshape(6, -1).sum(1) / ((p * p).reshape(6, -1).sum(1) + 0.001 + (mt * mt).reshape(6, -1).sum(1) + 0.001)
    io.update(dice_logits=torch.from_numpy(ml), dice_targets=torch.from_numpy(mt), dice=torch.from_numpy(dice))
    # point NMS, with ties
    heat = np.round(rng.random((2, 9, 9)), 1).astype(np.float32)
    io.update(point_in=torch.from_numpy(heat), point_out=torch.from_numpy(point_nms(heat).astype(np.float32)))
    # Matrix NMS
    nm = random_masks(rng, 40, 24, 24, 14)
    nm[5] = nm[4]  # an exact duplicate
    areas = nm.reshape(40, -1).sum(1).astype(np.float32)
    sc = rng.random(40).astype(np.float32)
    two = rng.integers(0, 2, size=40)
    io.update(nms_masks=torch.from_numpy(nm), nms_scores=torch.from_numpy(sc), nms_areas=torch.from_numpy(areas),
              nms_labels2=torch.from_numpy(two))
    for name, labels in (("one", np.zeros(40, dtype=np.int64)), ("two", two)):
        for kernel in ("gaussian", "linear"):
            s, l, k = matrix_nms(nm, labels, sc.astype(np.float64), areas, kernel, 2.0, 0.05, 30, 20)
            io[f"nms_{name}_{kernel}_scores"] = torch.from_numpy(s.astype(np.float32))
            io[f"nms_{name}_{kernel}_keep"] = torch.from_numpy(k.astype(np.int64))
    # targets: 64 x 64 input, instances of many sizes, one empty, one vanishing at 1/4 scale
    tm = random_masks(rng, 12, 64, 64, 60)
    tm[0] = 0
    tm[0, 4:60, 2:62] = 1  # large: levels 3 (48-192)
    tm[3] = 0
    tm[7] = 0
    tm[7, 10, 10] = 1
    tl = rng.integers(0, 3, size=12)
    io.update(target_masks=torch.from_numpy(tm), target_labels=torch.from_numpy(tl.astype(np.int64)))
    for level, (lab, pos, masks) in enumerate(targets(tm, tl)):
        io[f"target_labels_{level}"] = torch.from_numpy(lab)
        io[f"target_positive_{level}"] = torch.from_numpy(pos.astype(np.int64))
        io[f"target_masks_{level}"] = torch.from_numpy(masks.astype(np.float32))
    save_safetensors(f"{case_dir(out, 'solov2_ops')}/io.safetensors", io)


if __name__ == "__main__":
    import sys
    make(sys.argv[1])
