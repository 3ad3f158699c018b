"""CIFAR ResNet-20 from ../shared/data/weights/resnet20-12fca82f.th (legacy torch.save format) on
a few real 32x32 images (Weizmann horses, downscaled; horse is CIFAR-10 class 7)."""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from common import save_case

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
WEIGHTS = os.path.join(SHARED, "weights", "resnet20-12fca82f.th")


class Block(nn.Module):
    """He et al. 2016 CIFAR block with the parameter-free option-A shortcut."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - cin) // 2 if (stride != 1 or cin != planes) else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class CifarResNet(nn.Module):
    def __init__(self, n=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            stages.append(nn.Sequential(*[Block(cin if i == 0 else planes, planes, stride if i == 0 else 1)
                                          for i in range(n)]))
            cin = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        return self.linear(x.mean((2, 3)))


def cifar_inputs(count=8):
    folder = os.path.join(SHARED, "horses", "images")
    names = sorted(os.listdir(folder))[:count]
    images = []
    for name in names:
        image = torchvision.io.read_image(os.path.join(folder, name), torchvision.io.ImageReadMode.RGB)
        image = F.interpolate(image[None].float() / 255, size=(32, 32), mode="bilinear", antialias=True,
                              align_corners=False)[0]
        images.append(image)
    mean = torch.tensor([0.4914, 0.4822, 0.4465])[:, None, None]
    std = torch.tensor([0.2470, 0.2435, 0.2616])[:, None, None]
    return (torch.stack(images) - mean) / std


def make(out):
    if not os.path.exists(WEIGHTS):
        print(f"skipping cifar_resnet: {WEIGHTS} is missing")
        return
    checkpoint = torch.load(WEIGHTS, map_location="cpu")
    state = {k[len("module."):]: v for k, v in checkpoint["state_dict"].items()}
    model = CifarResNet().eval()
    model.load_state_dict(state, strict=False)  # the 2018 file has no num_batches_tracked
    x = cifar_inputs()
    with torch.no_grad():
        logits = model(x)
    save_case(out, "cifar_resnet20", state, {"input": x, "logits": logits, "classes": logits.argmax(1)})
