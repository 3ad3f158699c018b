"""lesseg's ResUnet (src/lesseg/models/resunet.cpp over resnet.cpp) in Python PyTorch. Bench-only.

The encoder is torchvision's ResNet without its classifier (lesseg builds the backbone with
num_classes 0), so state_dict keys read backbone.conv1.weight, backbone.layer1.0.bn1.running_mean,
... exactly as lesseg's Segmenter registers them; the decoder is decoder.blocks.{i}.{0..5} and
decoder.classifier.
"""
import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def conv_bn_relu_x2(cin, cout):
    # ref: resunet.cpp conv_bn_relu_x2
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResNetBackbone(nn.Module):
    """torchvision ResNet-18/34/50/...; features at strides 2 (stem), 4, 8, 16, 32 (resnet.cpp features)."""

    def __init__(self, depth=18):
        super().__init__()
        net = getattr(torchvision.models, f"resnet{depth}")()
        for name in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]:
            setattr(self, name, getattr(net, name))
        expansion = 4 if depth >= 50 else 1
        self.channels = [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def forward(self, x):
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [stem, c1, c2, c3, self.layer4(c3)]


class UNetDecoder(nn.Module):
    """ref: resunet.cpp UNetDecoderImpl: per stage, resize to the skip, concatenate, two conv-BN-ReLU;
    the last stage has no skip and runs at the input resolution."""

    def __init__(self, encoder_channels, num_classes, channels):
        super().__init__()
        assert len(channels) == len(encoder_channels)
        self.blocks = nn.ModuleList()
        cin = encoder_channels[-1]
        for stage, width in enumerate(channels):
            skip = encoder_channels[-2 - stage] if stage + 1 < len(encoder_channels) else 0
            self.blocks.append(conv_bn_relu_x2(cin + skip, width))
            cin = width
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def forward(self, features, height, width):
        n = len(features)
        x = features[-1]
        for stage, block in enumerate(self.blocks):
            if stage + 1 < n:
                skip = features[n - 2 - stage]
                if x.shape[2:] != skip.shape[2:]:
                    x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
                x = block(torch.cat([x, skip], 1))
            else:
                x = block(F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False))
        return self.classifier(x)


class ResUnet(nn.Module):
    def __init__(self, num_classes, depth=18, channels=(256, 128, 64, 64, 32)):
        super().__init__()
        self.backbone = ResNetBackbone(depth)
        self.decoder = UNetDecoder(self.backbone.channels, num_classes, list(channels))

    def forward(self, images):
        return self.decoder(self.backbone(images), images.shape[2], images.shape[3])
