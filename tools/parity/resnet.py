"""torchvision ResNet-18 / ResNet-50: logits and multi-scale features for the same input."""
import torch
import torchvision

from common import randomize_batchnorm, save_case


def make(out):
    for depth, seed in [(18, 1), (50, 2)]:
        torch.manual_seed(seed)
        model = getattr(torchvision.models, f"resnet{depth}")().eval()
        randomize_batchnorm(model, seed)
        x = torch.randn(2, 3, 96, 128)
        with torch.no_grad():
            stem = model.relu(model.bn1(model.conv1(x)))
            c2 = model.layer1(model.maxpool(stem))
            c3 = model.layer2(c2)
            c4 = model.layer3(c3)
            c5 = model.layer4(c4)
            logits = model(x)
        save_case(out, f"resnet{depth}", model.state_dict(),
                  {"input": x, "logits": logits, "c2": c2, "c3": c3, "c4": c4, "c5": c5})
