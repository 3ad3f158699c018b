#!/usr/bin/env python3
"""Reference for bench/bench_ssl: one self-supervised training step in Python PyTorch, written the
way the official code writes it (random crops, no data loading).

--model dino (facebookresearch/dino main_dino.py train_one_epoch): ViT-S/16 + DINO head
(tools/parity/dino_vit.py, the same ViT bench_vit compares against); MultiCropWrapper forward (the
backbone once per crop size, the head once on all crops); the teacher (an EMA copy) on the 2
global crops without grad; DINOLoss with centering; loss.item(), zero_grad, backward, global-norm
gradient clip, optionally cancel_gradients_last_layer (DINO's first epoch), AdamW with biases and
1-D tensors not decayed (utils.get_params_groups), EMA update with the cosine momentum schedule.

--model simclr: torchvision resnet18 with fc = Identity + projection MLP (Linear-BN-ReLU-Linear,
2048 -> 128); both views through the network together, NT-Xent; loss.item(), zero_grad, backward,
SGD momentum 0.9 with the same no-decay group.

Prints one JSON line {"model", "threads", "torch", "params", "seconds_per_step", "steps",
"peak_rss_kb"}. Bench-only.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from dino_vit import DinoHead, SimclrHead, VisionTransformer  # noqa: E402


class MultiCropWrapper(nn.Module):
    """ref: dino utils.MultiCropWrapper: the backbone on each run of equal-size crops, the head once."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops):
        sizes = torch.tensor([c.shape[-1] for c in crops])
        ends = torch.cumsum(torch.unique_consecutive(sizes, return_counts=True)[1], 0)
        start, features = 0, []
        for end in ends.tolist():
            features.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(features))


class DinoLoss(nn.Module):
    """ref: dino main_dino.py DINOLoss (teacher temperature constant here)."""

    def __init__(self, out_dim, ncrops, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.ncrops, self.student_temp, self.center_momentum = ncrops, student_temp, center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_output, teacher_output, teacher_temp):
        student_out = (student_output / self.student_temp).chunk(self.ncrops)
        teacher_out = F.softmax((teacher_output - self.center) / teacher_temp, dim=-1).detach().chunk(2)
        total, terms = 0, 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
                terms += 1
        self.update_center(teacher_output)
        return total / terms

    @torch.no_grad()
    def update_center(self, teacher_output):
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


def nt_xent(a, b, temperature):
    """SimCLR eq. 1: each of the 2N views has its other view as positive, the 2N-2 others as negatives."""
    n = a.shape[0]
    z = F.normalize(torch.cat([a, b]), dim=1)
    logits = (z @ z.t() / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def param_groups(model, weight_decay):
    """ref: dino utils.get_params_groups: biases and 1-D tensors are not decayed."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        (keep if name.endswith(".bias") or p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def ema_momentum(base, it, total):
    """ref: dino utils.cosine_scheduler(base, 1): cosine from base to 1, per iteration."""
    return 1 - (1 - base) * 0.5 * (1 + math.cos(math.pi * min(1.0, it / max(1, total))))


def dino_net(out_dim):
    head = DinoHead(384, out_dim=out_dim)
    head.last_layer.weight_g.requires_grad = False  # norm_last_layer
    return MultiCropWrapper(VisionTransformer(patch=16, dim=384, depth=12, heads=6), head)


def dino_step(args):
    student, teacher = dino_net(args.out_dim), dino_net(args.out_dim)
    teacher.load_state_dict(student.state_dict())  # as main_dino.py builds the teacher
    for p in teacher.parameters():
        p.requires_grad = False
    loss_fn = DinoLoss(args.out_dim, 2 + args.local_crops)
    optimizer = torch.optim.AdamW(param_groups(student, args.weight_decay), lr=args.lr)
    crops = [torch.randn(args.batch, 3, args.global_size, args.global_size) for _ in range(2)]
    crops += [torch.randn(args.batch, 3, args.local_size, args.local_size) for _ in range(args.local_crops)]
    total = args.warmup + args.steps
    it = 0

    def step():
        nonlocal it
        student.train()
        teacher.train()
        with torch.no_grad():
            teacher_output = teacher(crops[:2])
        loss = loss_fn(student(crops), teacher_output, args.teacher_temp)
        loss.item()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), args.clip)
        if args.cancel_last_layer:
            for p in student.head.last_layer.parameters():
                p.grad = None
        optimizer.step()
        with torch.no_grad():
            m = ema_momentum(args.momentum, it, total)
            for q, k in zip(student.parameters(), teacher.parameters()):
                k.data.mul_(m).add_((1 - m) * q.detach().data)
        it += 1

    return student, step


def simclr_step(args):
    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    model = nn.Sequential(backbone, SimclrHead(in_dim=512, hidden=2048, out_dim=128))
    optimizer = torch.optim.SGD(param_groups(model, args.weight_decay), lr=args.lr, momentum=0.9)
    views = [torch.randn(args.batch, 3, args.global_size, args.global_size) for _ in range(2)]

    def step():
        model.train()
        a, b = model(torch.cat(views)).chunk(2)
        loss = nt_xent(a, b, args.temperature)
        loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return model, step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["dino", "simclr"], required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--global-size", type=int, default=224)
    parser.add_argument("--local-size", type=int, default=96)
    parser.add_argument("--local-crops", type=int, default=2)
    parser.add_argument("--out-dim", type=int, default=65536)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.04)
    parser.add_argument("--clip", type=float, default=3.0)
    parser.add_argument("--teacher-temp", type=float, default=0.04)
    parser.add_argument("--momentum", type=float, default=0.996)
    parser.add_argument("--cancel-last-layer", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, step = (dino_step if args.model == "dino" else simclr_step)(args)
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "model": args.model,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": statistics.mean(times),
        "steps": len(times),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
