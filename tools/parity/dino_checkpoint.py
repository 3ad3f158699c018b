"""A DINO training checkpoint as facebookresearch/dino's main_dino.py writes it (student with
`module.backbone.` / `module.head.` names from DistributedDataParallel, teacher with `backbone.` /
`head.`, optimizer state, epoch, an argparse.Namespace of arguments, the loss's center), holding real
ViT-S/16 weights; plus the same file with every storage tagged cuda:0 (no GPU needed)."""
import argparse
import os
import sys

import torch

from common import case_dir, save_safetensors
from dino_vit import DinoHead, VisionTransformer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_pth_fixtures import rewrite_zip  # noqa: E402


def network(seed):
    torch.manual_seed(seed)
    return VisionTransformer(patch=16, dim=384, depth=12, heads=6).eval(), DinoHead(384, 1024, hidden=512, bottleneck=128)


def make(out):
    path = case_dir(out, "dino_checkpoint")
    student, student_head = network(31)
    teacher, teacher_head = network(32)
    optimizer = torch.optim.SGD(list(student.parameters())[:4], lr=0.1, momentum=0.9)
    list(student.parameters())[0].sum().backward()
    optimizer.step()
    checkpoint = {
        "student": {**{"module.backbone." + k: v for k, v in student.state_dict().items()},
                    **{"module.head." + k: v for k, v in student_head.state_dict().items()}},
        "teacher": {**{"backbone." + k: v for k, v in teacher.state_dict().items()},
                    **{"head." + k: v for k, v in teacher_head.state_dict().items()}},
        "optimizer": optimizer.state_dict(),
        "epoch": 100,
        "args": argparse.Namespace(arch="vit_small", patch_size=16, out_dim=65536, lr=0.0005, teacher_temp=0.04),
        "dino_loss": {"center": torch.zeros(1, 1024)},
    }
    torch.save(checkpoint, os.path.join(path, "checkpoint.pth"))
    cpu, gpu = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"

    def to_cuda(pkl):
        assert cpu in pkl
        return pkl.replace(cpu, gpu)
    rewrite_zip(os.path.join(path, "checkpoint.pth"), os.path.join(path, "checkpoint_cuda.pth"), edit_pkl=to_cuda)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        save_safetensors(os.path.join(path, "io.safetensors"),
                         {"input": x, "teacher_cls": teacher(x), "student_cls": student(x)})
