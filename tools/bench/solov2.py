"""lesseg's SOLOv2 (src/lesseg/models/solov2.cpp, solov2_ops.cpp) in Python PyTorch + torchvision.
Bench-only (the reference of bench/bench_solov2).

The network: torchvision ResNet without its classifier (resunet.ResNetBackbone, the features at
strides 4, 8, 16, 32), torchvision.ops.FeaturePyramidNetwork with LastLevelMaxPool (P2..P6: lateral
1x1 and output 3x3 convs with biases, nearest top-down upsampling, P6 = P5 subsampled by 2, as
lesseg's Fpn), the kernel / category branches (conv-GN-ReLU stacks, CoordConv on the kernel branch)
on an S x S grid per level and the unified mask branch, module by module as solov2.cpp builds them,
so every state_dict name reads as lesseg's except the FPN's (torchvision's inner_blocks.{i}.0 /
layer_blocks.{i}.0 are lesseg's lateral.{i} / output.{i}; lesseg_name() maps them).

The training targets, losses (focal on all cells / (positives + 1), Dice x weight on the positive
cells, DropLoss on grid cells) and the inference (point NMS, maskness, Matrix NMS, x4 upsampling)
follow solov2_ops.cpp operation by operation, so that the benchmark times the same work;
tools/parity/solov2.py checks lesseg's versions against numpy written from the definitions.
"""
import math
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork, sigmoid_focal_loss
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resunet import ResNetBackbone  # noqa: E402

# Strides the instance head's levels sit at (P2 halved, P6 resized to P5): solo_level_strides().
LEVEL_STRIDES = (8, 8, 16, 32, 32)


def resize_bilinear(x, height, width):
    # ref: lesseg/nn/functional.cpp resize_bilinear
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def conv_gn_relu(cin, cout, groups):
    """ref: solov2.cpp append_conv_gn_relu: 3x3 conv (no bias) + GroupNorm + ReLU (mmdet's ConvModule)."""
    groups = math.gcd(min(groups, cout), cout)
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True)]


def coordinates_like(x):
    """Two channels x and y, each a linspace over [-1, 1] across the map (CoordConv), in that order."""
    b, _, h, w = x.shape
    xs = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, -1).expand(b, 1, h, w)
    ys = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, -1, 1).expand(b, 1, h, w)
    return torch.cat([xs, ys], 1)


class Solov2(nn.Module):
    """ref: solov2.cpp Solov2Impl. forward(images [B, 3, H, W], H and W multiples of 32) returns
    (category: per level [B, C, S, S] logits, kernels: per level [B, E, S, S], mask_features [B, E, H/4, W/4])."""

    def __init__(self, depth=18, grids=(40, 36, 24, 16, 12), fpn_channels=256, head_channels=512,
                 stacked_convs=4, mask_hidden=128, mask_channels=256, num_classes=1, norm_groups=32):
        super().__init__()
        assert len(grids) == 5 and stacked_convs >= 1
        self.grids = list(grids)
        self.backbone = ResNetBackbone(depth)
        self.fpn = FeaturePyramidNetwork(self.backbone.channels[1:], fpn_channels, extra_blocks=LastLevelMaxPool())
        for name in ("inner_blocks", "layer_blocks"):  # ref: solov2.cpp FpnImpl (mmdet's FPN init)
            for block in getattr(self.fpn, name):
                nn.init.xavier_uniform_(block[0].weight)
                nn.init.zeros_(block[0].bias)
        g = norm_groups
        kernel, category = [], []
        for i in range(stacked_convs):
            cin = fpn_channels if i == 0 else head_channels
            kernel += conv_gn_relu(cin + 2 if i == 0 else cin, head_channels, g)
            category += conv_gn_relu(cin, head_channels, g)
        self.kernel_convs = nn.Sequential(*kernel)
        self.category_convs = nn.Sequential(*category)
        self.kernel_pred = nn.Conv2d(head_channels, mask_channels, 3, padding=1)
        self.category_pred = nn.Conv2d(head_channels, num_classes, 3, padding=1)
        # Unified mask features: P2 one conv; P3..P5 1..3 x (conv, x2 upsampling); coordinates at P5.
        self.mask_levels = nn.ModuleList()
        for level in range(4):
            convs = nn.ModuleList()
            for j in range(max(1, level)):
                cin = fpn_channels + (2 if level == 3 else 0) if j == 0 else mask_hidden
                convs.append(nn.Sequential(*conv_gn_relu(cin, mask_hidden, g)))
            self.mask_levels.append(convs)
        self.mask_pred = nn.Sequential(
            nn.Conv2d(mask_hidden, mask_channels, 1, bias=False),
            nn.GroupNorm(math.gcd(min(g, mask_channels), mask_channels), mask_channels), nn.ReLU(inplace=True))
        # ref: SOLO init_weights: head convs normal(0, 0.01), biases 0; the category bias at the prior 0.01
        for module in (self.kernel_convs, self.category_convs, self.kernel_pred, self.category_pred,
                       self.mask_levels, self.mask_pred):
            for m in module.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        nn.init.constant_(self.category_pred.bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, images):
        assert images.dim() == 4 and images.shape[2] % 32 == 0 and images.shape[3] % 32 == 0
        features = self.backbone(images)[1:]  # strides 4, 8, 16, 32
        pyramid = list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features))).values())
        category, kernels = self.heads(pyramid)
        return category, kernels, self.mask_features(pyramid)

    def heads(self, pyramid):
        category, kernels = [], []
        for level in range(5):
            x = pyramid[level]  # ref: SOLO split_feats: P2 halved, P6 resized to P5's size
            if level == 0:
                x = resize_bilinear(x, pyramid[1].shape[2], pyramid[1].shape[3])
            if level == 4:
                x = resize_bilinear(x, pyramid[3].shape[2], pyramid[3].shape[3])
            s = self.grids[level]
            kernel_in = resize_bilinear(torch.cat([x, coordinates_like(x)], 1), s, s)
            category_in = kernel_in[:, :-2]
            kernels.append(self.kernel_pred(self.kernel_convs(kernel_in)))
            category.append(self.category_pred(self.category_convs(category_in)))
        return category, kernels

    def mask_features(self, pyramid):
        total = None
        for level in range(4):
            x = pyramid[level]
            if level == 3:
                x = torch.cat([x, coordinates_like(x)], 1)
            for block in self.mask_levels[level]:
                x = block(x)
                if level > 0:
                    x = resize_bilinear(x, x.shape[2] * 2, x.shape[3] * 2)
            total = x if total is None else total + x
        return self.mask_pred(total)


def lesseg_name(name):
    """The lesseg state_dict name of a parameter or buffer of Solov2 (only the FPN's differ)."""
    for ours, theirs in (("fpn.inner_blocks.", "fpn.lateral."), ("fpn.layer_blocks.", "fpn.output.")):
        if name.startswith(ours):
            index, rest = name[len(ours):].split(".", 1)
            assert rest.startswith("0.")
            return theirs + index + "." + rest[2:]
    return name


# ---------------------------------------------------------------------------------------------
# Training targets and losses (ref: solov2_ops.cpp solo_targets, solo_losses)


def quarter_scale(masks):
    """[N, H, W] 0/1 -> [N, H/4, W/4] float 0/1: bilinear (align_corners False) thresholded at 0.5."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, h // 4, w // 4)
    m = resize_bilinear(masks.float().unsqueeze(1), h // 4, w // 4).squeeze(1)
    return m.ge(0.5).float()


def cell_of(v, size, grid):
    return int(math.floor((v / size) / (1.0 / grid)))


def solo_targets(gt_masks, gt_labels, grids, scale_ranges, sigma):
    """Per level (labels [S*S] int64 0 = background, positive [P] ascending, masks [P, H/4, W/4]):
    an instance whose sqrt(box area) lies in the level's range labels the cells of its centre region
    (mass centre +- sigma / 2 x box, at most 3 x 3 cells); the later instance wins a shared cell."""
    n, height, width = gt_masks.shape
    masks = gt_masks.ne(0)
    labels = gt_labels.long()
    quarter = quarter_scale(masks)
    info = [None] * n
    for i in range(n):
        points = masks[i].nonzero()  # [K, 2] (y, x)
        if points.shape[0] == 0 or quarter[i].sum().item() == 0:
            continue
        pf = points.double()
        cy, cx = pf[:, 0].mean().item(), pf[:, 1].mean().item()
        box_h = (points[:, 0].max() - points[:, 0].min()).item() + 1
        box_w = (points[:, 1].max() - points[:, 1].min()).item() + 1
        info[i] = (cy, cx, box_h, box_w, math.sqrt(box_h * box_w))
    out = []
    for s, (low, high) in zip(grids, scale_ranges):
        cell_labels = [0] * (s * s)
        owner = [-1] * (s * s)
        for i in range(n):
            if info[i] is None:
                continue
            cy, cx, box_h, box_w, scale = info[i]
            if scale < low or scale > high:
                continue
            half_h, half_w = 0.5 * box_h * sigma, 0.5 * box_w * sigma
            ch, cw = cell_of(cy, height, s), cell_of(cx, width, s)
            top = max(0, cell_of(cy - half_h, height, s), ch - 1)
            down = min(s - 1, cell_of(cy + half_h, height, s), ch + 1)
            left = max(0, cell_of(cx - half_w, width, s), cw - 1)
            right = min(s - 1, cell_of(cx + half_w, width, s), cw + 1)
            for r in range(top, down + 1):
                for c in range(left, right + 1):
                    cell_labels[r * s + c] = labels[i].item() + 1
                    owner[r * s + c] = i
        positive = [k for k in range(s * s) if owner[k] >= 0]
        source = [owner[k] for k in positive]
        level_masks = (quarter.index_select(0, torch.tensor(source, dtype=torch.long)) if positive
                       else torch.zeros(0, height // 4, width // 4))
        out.append((torch.tensor(cell_labels, dtype=torch.long), torch.tensor(positive, dtype=torch.long),
                    level_masks))
    return out


def apply_kernels(kernels, features):
    """Each cell's mask logits: kernels [E, K] applied to features [E, h, w] -> [K, h, w]."""
    e, h, w = features.shape
    return torch.matmul(kernels.t(), features.reshape(e, h * w)).view(kernels.shape[1], h, w)


@torch.no_grad()
def drop_weights(kernels, features, gt_quarter, labels, drop_iou):
    """DropLoss: 1 for positives and for background cells whose binary mask overlaps a ground truth by
    IoU > drop_iou, else 0 (ref: solov2_ops.cpp drop_weights)."""
    cells, pixels = kernels.shape[1], features.shape[1] * features.shape[2]
    gt = gt_quarter.reshape(gt_quarter.shape[0], pixels)
    gt = gt.index_select(0, gt.sum(1).gt(0).nonzero().squeeze(1))
    if gt.shape[0] == 0:
        return torch.ones(cells)
    gt_area = gt.sum(1)
    best = torch.zeros(cells)
    chunk = 512
    for start in range(0, cells, chunk):
        end = min(cells, start + chunk)
        pred = apply_kernels(kernels[:, start:end], features).reshape(end - start, pixels).gt(0).float()
        inter = torch.matmul(pred, gt.t())
        union = pred.sum(1, keepdim=True) + gt_area.unsqueeze(0) - inter
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))
        best[start:end] = iou.max(1)[0]
    return (best.gt(drop_iou) | labels.gt(0)).float()


def dice_loss(mask_logits, targets):
    """1 - 2 sum(p q) / (sum p^2 + 0.001 + sum q^2 + 0.001) per mask (SOLO's V-Net form)."""
    p = torch.sigmoid(mask_logits).flatten(1)
    q = targets.flatten(1).to(p.dtype)
    a = (p * q).sum(1)
    b = (p * p).sum(1) + 0.001
    c = (q * q).sum(1) + 0.001
    return 1 - 2 * a / (b + c)


def solo_losses(out, gt_masks, gt_labels, grids, scale_ranges, sigma=0.2, focal_alpha=0.25, focal_gamma=2.0,
                dice_weight=3.0, drop_loss=False, drop_iou=0.01):
    """{category, mask, positives, dropped, cells}: the focal loss (torchvision) summed over all cells /
    (positives + 1), dice_weight x the mean Dice over positive cells."""
    category_out, kernels_out, mask_features = out
    logits, targets, weights, mask_logits, mask_targets = [], [], [], [], []
    positives = dropped = cells = 0
    for b in range(mask_features.shape[0]):
        level_targets = solo_targets(gt_masks[b], gt_labels[b], grids, scale_ranges, sigma)
        gt_quarter = quarter_scale(gt_masks[b].ne(0)) if drop_loss else None
        features = mask_features[b]
        for level, (labels, positive, masks) in enumerate(level_targets):
            category = category_out[level][b]  # [C, S, S]
            classes = category.shape[0]
            cell_logits = category.flatten(1).t()  # [S * S, C]
            one_hot = torch.zeros(cell_logits.shape[0], classes + 1)
            one_hot.scatter_(1, labels.unsqueeze(1), 1.0)
            logits.append(cell_logits)
            targets.append(one_hot[:, 1:])
            kernels = kernels_out[level][b].flatten(1)  # [E, S * S]
            if drop_loss:
                w = drop_weights(kernels, features, gt_quarter, labels, drop_iou)
                dropped += int(w.numel() - w.sum().item())
                weights.append(w.unsqueeze(1).expand(-1, classes))
            positives += positive.numel()
            cells += labels.numel()
            if positive.numel() == 0:
                continue
            mask_logits.append(apply_kernels(kernels.index_select(1, positive), features))
            mask_targets.append(masks)
    focal = sigmoid_focal_loss(torch.cat(logits), torch.cat(targets), focal_alpha, focal_gamma, reduction="none")
    if weights:
        focal = focal * torch.cat(weights)
    category_loss = focal.sum() / float(positives + 1)
    if mask_logits:
        mask_loss = dice_loss(torch.cat(mask_logits), torch.cat(mask_targets)).mean() * dice_weight
    else:
        mask_loss = mask_features.sum() * 0
    return {"category": category_loss, "mask": mask_loss, "positives": positives, "dropped": dropped,
            "cells": cells}


# ---------------------------------------------------------------------------------------------
# Inference (ref: solov2_ops.cpp point_nms, matrix_nms, solo_instances)


def point_nms(probabilities):
    """Keeps a cell where it is the maximum of itself and its top, left and top-left neighbours."""
    x = probabilities.unsqueeze(0)
    hmax = F.max_pool2d(x, (2, 2), stride=1, padding=1)[:, :, :x.shape[2], :x.shape[3]]
    return (x * (hmax == x).to(x.dtype)).squeeze(0)


def matrix_nms(masks, labels, scores, areas, kernel="gaussian", sigma=2.0, filter_thr=0.05, nms_pre=500,
               max_num=100):
    """mmdetection's mask_matrix_nms: returns (scores, labels, keep) sorted by decayed score."""
    empty = (torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    if scores.numel() == 0:
        return empty
    order = torch.sort(scores, stable=True, descending=True)[1]
    if 0 < nms_pre < order.numel():
        order = order[:nms_pre]
    keep = order
    s, l, a = scores[order], labels[order], areas[order].float()
    n = order.numel()
    flat = masks[order].reshape(n, -1).float()
    inter = torch.matmul(flat, flat.t())
    area_rows = a.expand(n, n)
    iou = (inter / (area_rows + area_rows.t() - inter)).triu(1)
    label_rows = l.expand(n, n)
    same_label = (label_rows == label_rows.t()).triu(1).float()
    decay_iou = iou * same_label
    compensate = decay_iou.max(0)[0].expand(n, n).t()
    if kernel == "gaussian":
        decay = (torch.exp(-sigma * decay_iou.pow(2)) / torch.exp(-sigma * compensate.pow(2))).min(0)[0]
    elif kernel == "linear":
        decay = ((1 - decay_iou) / (1 - compensate).clamp_min(1e-6)).min(0)[0]
    else:
        raise ValueError(f"matrix NMS kernel must be gaussian or linear, got {kernel!r}")
    s = s * decay.to(s.dtype)
    if filter_thr > 0:
        kept = s.ge(filter_thr).nonzero().squeeze(1)
        if kept.numel() == 0:
            return empty
        keep, s, l = keep[kept], s[kept], l[kept]
    resort = torch.sort(s, stable=True, descending=True)[1]
    if 0 < max_num < resort.numel():
        resort = resort[:max_num]
    return s[resort], l[resort], keep[resort]


@torch.no_grad()
def solo_instances(out, b, valid_h, valid_w, out_h, out_w, score_thr=0.1, mask_thr=0.5, nms_kernel="gaussian",
                   nms_sigma=2.0, update_thr=0.05, nms_pre=500, max_per_image=100):
    """Image b's instances (masks [K, out_h, out_w] bool, scores [K] descending, labels [K]) and the
    number of candidate cells above score_thr: category x maskness scores, Matrix NMS, masks upsampled
    x4, cropped to valid_h x valid_w, resized to out_h x out_w (ref: SOLO get_seg_single)."""
    category_out, kernels_out, mask_features = out
    features = mask_features[b]
    probabilities, kernels, strides = [], [], []
    for level, (category, kernel) in enumerate(zip(category_out, kernels_out)):
        p = point_nms(torch.sigmoid(category[b]))  # [C, S, S]
        probabilities.append(p.flatten(1).t())  # [S * S, C]
        kernels.append(kernel[b].flatten(1))  # [E, S * S]
        strides.append(torch.full((p.shape[1] * p.shape[2],), float(LEVEL_STRIDES[level])))
    probs = torch.cat(probabilities)
    all_kernels = torch.cat(kernels, 1)
    all_strides = torch.cat(strides)

    def none(candidates):
        return {"masks": torch.zeros(0, out_h, out_w, dtype=torch.bool), "scores": torch.zeros(0),
                "labels": torch.zeros(0, dtype=torch.long), "candidates": candidates}

    hits = probs.gt(score_thr).nonzero()  # [n, 2] (cell, class)
    if hits.shape[0] == 0:
        return none(0)
    cells, labels = hits[:, 0], hits[:, 1]
    scores = probs[cells, labels]
    soft = torch.sigmoid(apply_kernels(all_kernels.index_select(1, cells), features))
    binary = soft.gt(mask_thr)
    area = binary.sum((1, 2)).float()
    big = area.gt(all_strides.index_select(0, cells)).nonzero().squeeze(1)
    if big.numel() == 0:
        return none(hits.shape[0])
    soft, binary, area, labels = soft[big], binary[big], area[big], labels[big]
    maskness = (soft * binary.to(soft.dtype)).sum((1, 2)) / area
    scores = scores[big] * maskness
    kept_scores, kept_labels, keep = matrix_nms(binary, labels, scores, area, nms_kernel, nms_sigma, update_thr,
                                                nms_pre, max_per_image)
    if kept_scores.numel() == 0:
        return none(hits.shape[0])
    chosen = soft[keep].unsqueeze(0)
    masks = []  # in chunks: a few full-size float masks at a time
    for start in range(0, chosen.shape[1], 8):
        part = chosen[:, start:start + 8]
        full = resize_bilinear(part, features.shape[1] * 4, features.shape[2] * 4)[:, :, :valid_h, :valid_w]
        masks.append(resize_bilinear(full, out_h, out_w).squeeze(0).gt(mask_thr))
    return {"masks": torch.cat(masks), "scores": kept_scores.float(), "labels": kept_labels,
            "candidates": hits.shape[0]}


# ---------------------------------------------------------------------------------------------
# The benchmark's instances, the same on both sides (bench_solov2.cpp random_instances)

_M64 = (1 << 64) - 1


class Lcg:
    """Knuth's MMIX linear congruential generator; next() returns the state's top 31 bits."""

    def __init__(self, seed):
        self.state = seed & _M64

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & _M64
        return self.state >> 33

    def uniform(self, low, high):
        """An integer in [low, high]."""
        return low + self.next() % (high - low + 1)


def random_instances(batch, height, width, seed=0):
    """Per image [N, H, W] uint8 masks, N 1..3: boxes with sides in [min(H, W) / 12, min(H, W) / 2],
    filled (a rectangle) or holding their inscribed ellipse, all from one integer generator, so that
    C++ and Python draw the same masks bit for bit."""
    rng = Lcg(seed)
    side = min(height, width)
    low, high = max(4, side // 12), max(4, side // 2)
    out = []
    for _ in range(batch):
        n = rng.uniform(1, 3)
        masks = torch.zeros(n, height, width, dtype=torch.uint8)
        for k in range(n):
            h = rng.uniform(low, high)
            w = rng.uniform(low, high)
            y0 = rng.uniform(0, height - h)
            x0 = rng.uniform(0, width - w)
            if rng.next() % 2:  # the ellipse inscribed in the box, in integers
                yy = torch.arange(h).view(-1, 1)
                xx = torch.arange(w).view(1, -1)
                inside = (2 * yy + 1 - h) ** 2 * (w * w) + (2 * xx + 1 - w) ** 2 * (h * h) <= h * h * w * w
                masks[k, y0:y0 + h, x0:x0 + w] = inside.to(torch.uint8)
            else:
                masks[k, y0:y0 + h, x0:x0 + w] = 1
        out.append(masks)
    return out
