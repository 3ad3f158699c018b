"""SwinUnet reference written from the facts of HuCaoFighting/Swin-Unet
(swin_transformer_unet_skip_expand_decoder_sys.py), built on torchvision's Swin pieces so its key
names are lesseg's: backbone.* = torchvision SwinTransformer (no head), decoder.* = the decoder.

A reduced width keeps the golden small (same architecture): embed 24, depths 2,2,2,2, heads 1,2,4,8,
window 4, decoder depths 2,2,2,1. Inputs 64x96 (a multiple of 32) and 72x100 (padded to 96x128 and
cropped back).
"""
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer, SwinTransformerBlock

from common import save_case
from swin import randomize

EMBED, DEPTHS, HEADS, WINDOW, DECODER_DEPTHS = 24, [2, 2, 2, 2], [1, 2, 4, 8], 4, [2, 2, 2, 1]
norm_layer = partial(nn.LayerNorm, eps=1e-5)


class PatchExpand(nn.Module):
    """Linear(dim, s*s*out), then 'b h w (p1 p2 c) -> b (h p1) (w p2) c' (einops), then LayerNorm."""

    def __init__(self, dim, scale, out_dim):
        super().__init__()
        self.scale, self.out_dim = scale, out_dim
        self.expand = nn.Linear(dim, scale * scale * out_dim, bias=False)
        self.norm = norm_layer(out_dim)

    def forward(self, x):
        b, h, w, _ = x.shape
        s, c = self.scale, self.out_dim
        y = self.expand(x)
        out = y.new_empty(b, h * s, w * s, c)
        for p1 in range(s):  # channel group (p1, p2) goes to sub-pixel (p1, p2)
            for p2 in range(s):
                group = p1 * s + p2
                out[:, p1::s, p2::s, :] = y[..., group * c:(group + 1) * c]
        return self.norm(out)


class UpStage(nn.Module):
    def __init__(self, dim, depth, heads, upsample):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, heads, [WINDOW, WINDOW], [0, 0] if j % 2 == 0 else [WINDOW // 2] * 2,
                                 norm_layer=norm_layer) for j in range(depth)])
        if upsample:
            self.upsample = PatchExpand(dim, 2, dim // 2)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.upsample(x) if hasattr(self, "upsample") else x


class Decoder(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        n = len(DEPTHS)
        self.layers_up = nn.ModuleList()
        self.concat_back_dim = nn.ModuleList()
        for i in range(n):
            k = n - 1 - i
            dim = EMBED * 2 ** k
            self.layers_up.append(UpStage(dim, DECODER_DEPTHS[k], HEADS[k], k > 0))
            self.concat_back_dim.append(nn.Linear(2 * dim, dim) if i > 0 else nn.Identity())
        self.norm_up = norm_layer(EMBED)
        self.up = PatchExpand(EMBED, 4, EMBED)
        self.output = nn.Conv2d(EMBED, num_classes, 1, bias=False)

    def forward(self, bottleneck, skips):
        x = bottleneck
        for i, layer in enumerate(self.layers_up):
            if i > 0:
                x = self.concat_back_dim[i](torch.cat([x, skips[len(skips) - i]], -1))
            x = layer(x)
        x = self.up(self.norm_up(x))
        return self.output(x.permute(0, 3, 1, 2))


class SwinUnet(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.backbone = SwinTransformer([4, 4], EMBED, DEPTHS, HEADS, [WINDOW, WINDOW], stochastic_depth_prob=0.0)
        del self.backbone.head
        self.decoder = Decoder(num_classes)

    def forward(self, images):
        h, w = images.shape[-2:]
        m = 4 * 2 ** (len(DEPTHS) - 1)
        x = F.pad(images, (0, (m - w % m) % m, 0, (m - h % m) % m))
        features = self.backbone.features
        x = features[0](x)
        skips = []  # each stage's input: patch embedding, then the patch-merging outputs
        for s in range(len(DEPTHS)):
            if s > 0:
                x = features[2 * s](x)
            if s + 1 < len(DEPTHS):
                skips.append(x)
            x = features[2 * s + 1](x)
        return self.decoder(self.backbone.norm(x), skips)[..., :h, :w]


def make(out):
    torch.manual_seed(5)
    model = SwinUnet(num_classes=5).eval()
    randomize(model, 5)
    io = {}
    for suffix, shape in [("", (2, 3, 64, 96)), ("_padded", (1, 3, 72, 100))]:
        x = torch.randn(*shape)
        with torch.no_grad():
            io["input" + suffix] = x
            io["logits" + suffix] = model(x)
    save_case(out, "swinunet_small", model.state_dict(), io)
